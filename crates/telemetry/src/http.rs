//! A small HTTP/1.1 server for the metrics, on one thread with `std::net` (no async runtime):
//!
//! | path | body |
//! | --- | --- |
//! | `/metrics` | Prometheus text format 0.0.4 |
//! | `/stats` | the table of `rampart ctl stats` (non-zero rows) |
//! | `/stats.json` | the JSON dump |
//!
//! Requests are served one at a time with short timeouts and a size limit, so a slow or
//! hostile client costs at most a few seconds of scrape delay and no memory. It serves
//! nothing else and writes nothing anywhere. Bind it to loopback (the default,
//! [`DEFAULT_ADDR`]) or a management address.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::registry::Metrics;

/// Where `/metrics` listens unless configured otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9184";
/// Largest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Per-connection read and write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A running metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `metrics` on a thread of its own.
    pub fn start(addr: impl ToSocketAddrs, metrics: Arc<Metrics>) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("rampart-metrics".into()).spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        if let Err(e) = serve(stream, &metrics) {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint: accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
        tracing::info!(%addr, "metrics endpoint listening");
        Ok(MetricsServer { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread and waits for it.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_thread();
        }
    }
}

/// Reads one request head; returns (method, target).
fn read_request(stream: &mut TcpStream) -> io::Result<(String, String)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        if buf.len() >= MAX_REQUEST {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    Ok((method, target))
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8], head_only: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn serve(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let (method, target) = read_request(&mut stream)?;
    if method.is_empty() {
        return Ok(());
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"GET only\n", false);
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {
            let body = metrics.render_prometheus();
            respond(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes(), head_only)
        }
        "/stats" => {
            let body = metrics.snapshot().to_table(true);
            respond(&mut stream, "200 OK", "text/plain; charset=utf-8", body.as_bytes(), head_only)
        }
        "/stats.json" => {
            let body = serde_json::to_vec_pretty(&metrics.snapshot().to_json()).unwrap_or_default();
            respond(&mut stream, "200 OK", "application/json", &body, head_only)
        }
        "/" => respond(
            &mut stream,
            "200 OK",
            "text/plain; charset=utf-8",
            b"Rampart metrics: /metrics (Prometheus), /stats (table), /stats.json\n",
            head_only,
        ),
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found\n", head_only),
    }
}

/// Fetches `path` from a metrics endpoint (for `rampart ctl stats`): the body of a 200 answer.
pub fn fetch(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut resp = Vec::new();
    s.take(64 * 1024 * 1024).read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP header in the answer"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(io::Error::other(format!("{addr}{path}: {status}")));
    }
    Ok(body.to_owned())
}
