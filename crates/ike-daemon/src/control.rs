//! The control socket: a unix stream socket speaking one JSON object per line, the way
//! `rampart ctl` (or any script with `socat`) drives the daemon.
//!
//! ```text
//! -> {"cmd":"list-sas"}
//! <- {"ok":true,"result":[{"ike":1,"connection":"gw","state":"established",...}]}
//! -> {"cmd":"initiate","name":"net"}          (a connection or a child)
//! -> {"cmd":"terminate","name":"gw"}          (a connection or a child)
//! -> {"cmd":"reload"}
//! -> {"cmd":"stats"}
//! <- {"ok":false,"error":"no connection or child named 'x'"}
//! ```
//!
//! A thread accepts connections and hands each request to the event loop (which alone touches
//! the endpoint and the database), then writes the answer back. The socket is created with mode
//! 0660 (it controls tunnels: the daemon's user and group only; keep its directory closed too,
//! as the systemd unit's 0750 `/run/rampart` does). No answer ever carries a key.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::{Deserialize, Serialize};

use crate::waker::Waker;

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Snapshots of every IKE SA with its CHILD_SAs.
    ListSas,
    /// Start a connection (IKE SA with its first child) or one child (on an established IKE SA
    /// of its connection when there is one).
    Initiate {
        /// Connection or child name.
        name: String,
    },
    /// Delete every IKE SA of a connection, or every CHILD_SA of a child.
    Terminate {
        /// Connection or child name.
        name: String,
    },
    /// Read the configuration file again and apply the difference.
    Reload,
    /// The counters.
    Stats,
    /// The certificates, CAs, CRLs and keys the daemon loaded (no key material).
    ListCerts,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success.
    pub fn ok(result: serde_json::Value) -> Response {
        Response { ok: true, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(e: impl Into<String>) -> Response {
        Response { ok: false, result: None, error: Some(e.into()) }
    }
}

/// A request on its way to the event loop, with where the answer goes.
#[derive(Debug)]
pub struct Pending {
    /// The request.
    pub request: Request,
    /// The answer's way back.
    pub reply: Sender<Response>,
}

/// The listening socket and its thread.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlServer {
    /// Listens on `path` (a stale socket file is replaced; one another daemon still answers
    /// on is an error). Requests go to `to_loop`, each followed by a wake-up.
    pub fn start(path: &Path, to_loop: Sender<Pending>, waker: Arc<Waker>) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another daemon answers on this control socket"));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new().name("ike-control".into()).spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (tx, w) = (to_loop.clone(), waker.clone());
                        let _ = std::thread::Builder::new()
                            .name("ike-control-conn".into())
                            .spawn(move || serve(stream, &tx, &w));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
        Ok(ControlServer { path: path.to_path_buf(), stop, thread: Some(thread) })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, to_loop: &Sender<Pending>, waker: &Waker) {
    let _ = stream.set_nonblocking(false);
    let Ok(mut out) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        match limited.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = match read_request(&line) {
            Err(refusal) => refusal,
            Ok(request) => {
                let (tx, rx) = bounded(1);
                if to_loop.send(Pending { request, reply: tx }).is_err() {
                    return;
                }
                waker.wake();
                rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| Response::err("the daemon did not answer"))
            }
        };
        let Ok(mut text) = serde_json::to_vec(&response) else { return };
        text.push(b'\n');
        if out.write_all(&text).is_err() {
            return;
        }
        if line.len() > MAX_LINE {
            return;
        }
    }
}

/// The request in one line read from a client (at most `MAX_LINE + 1` bytes, its newline
/// included), or the answer that refuses it: too long, or not a request.
pub fn read_request(line: &[u8]) -> Result<Request, Response> {
    if line.len() > MAX_LINE {
        return Err(Response::err("request too long"));
    }
    serde_json::from_slice::<Request>(line).map_err(|e| Response::err(format!("bad request: {e}")))
}

/// Sends one request to the daemon listening on `path` and waits for the answer.
pub fn call(path: &Path, request: &Request, timeout: Duration) -> io::Result<Response> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    let mut text = serde_json::to_vec(request).map_err(io::Error::other)?;
    text.push(b'\n');
    s.write_all(&text)?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(io::Error::other)
}

/// The receiving end the event loop drains.
pub type Inbox = Receiver<Pending>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_spelling() {
        assert_eq!(serde_json::to_string(&Request::ListSas).unwrap(), r#"{"cmd":"list-sas"}"#);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"initiate","name":"net"}"#).unwrap(),
            Request::Initiate { name: "net".into() }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"initiate"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format-disk"}"#).is_err());
        assert_eq!(serde_json::to_string(&Response::err("x")).unwrap(), r#"{"ok":false,"error":"x"}"#);
    }
}
