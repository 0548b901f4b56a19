//! The scapy ESP/AH oracle (`tests/oracle/esp_oracle.py`) as the tests talk to it: JSON lines
//! over a pipe to a python3 child, killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// The oracle process.
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    pub fn start() -> Oracle {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracle/esp_oracle.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed (scripts/setup.sh)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Oracle { child, stdin, stdout }
    }

    pub fn ask(&mut self, req: &Value) -> Result<Vec<u8>, String> {
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the oracle died: is scapy installed? (scripts/setup.sh)");
        let ans: Value = serde_json::from_str(&line).unwrap();
        if ans["ok"].as_bool() == Some(true) {
            Ok(hex_decode(ans["packet"].as_str().unwrap()))
        } else {
            Err(ans["error"].as_str().unwrap_or("?").to_string())
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
