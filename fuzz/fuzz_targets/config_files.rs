//! Rampart's configuration readers on arbitrary text: the data plane's file (`rampart
//! dataplane`), the IKE daemon's file with its separate secrets file (`rampart ike`; the input
//! holds both, split at the first NUL byte); `rampart run`'s file is read table by table by
//! these same two readers. Either a configuration comes back or an error that names the file
//! and a line and column inside the text (or line 0, the file as a whole) with a reason. Never
//! a panic. The files a configuration names (certificates, keys, the swanctl folders) are read
//! like any file; texts naming the kernel's special folders are skipped (a read of /dev/zero
//! never ends, which is not the reader's fault).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rampart_config::ConfError;

fn check(e: &ConfError, files: &[(&Path, &str)]) {
    let Some((_, text)) = files.iter().find(|(p, _)| *p == e.file) else {
        panic!("error names a file it was not given: {e}");
    };
    assert!(!e.reason.is_empty(), "error without a reason: {e}");
    let lines = text.split('\n').count();
    assert!(e.line <= lines, "line {} of a {lines}-line text: {e}", e.line);
    assert_eq!(e.line == 0, e.column == 0, "line and column disagree: {e}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if ["/dev", "/proc", "/sys"].iter().any(|special| text.contains(special)) {
        return;
    }
    let (main, secrets) = text.split_once('\0').unwrap_or((text, ""));
    let main_path = Path::new("/nonexistent/rampart-fuzz/rampart.toml");
    let secrets_path = Path::new("/nonexistent/rampart-fuzz/secrets.toml");
    if let Err(e) = rampart_dataplane::Config::parse(main, main_path) {
        check(&e, &[(main_path, main)]);
    }
    if let Err(e) = rampart_ike_daemon::config_file::Config::from_text(main_path, main, Some((secrets_path, secrets))) {
        check(&e, &[(main_path, main), (secrets_path, secrets)]);
    }
});
