//! The daemon on real sockets (loopback, unprivileged ports, no SA database): every datagram
//! it does not answer is counted under its reason in the metrics registry that `/metrics` and
//! `rampart ctl stats` show (`rampart_ike_dropped_datagrams_total{reason}`), and a higher
//! major version is answered with INVALID_MAJOR_VERSION from the port it came to.

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_ike::message::{Message, NotifyType};
use rampart_ike_daemon::Options;
use rampart_telemetry::Metrics;

/// A 28-byte IKE header with no payload.
fn header(spi_i: u64, spi_r: u64, version: u8, exchange: u8, flags: u8, id: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&spi_i.to_be_bytes());
    h.extend_from_slice(&spi_r.to_be_bytes());
    h.extend_from_slice(&[0, version, exchange, flags]);
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&28u32.to_be_bytes());
    h
}

#[test]
fn every_unanswered_datagram_is_counted_by_reason() {
    let dir = std::env::temp_dir().join(format!("rampart-drops-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = 20_000 + (std::process::id() % 20_000) as u16 * 2;
    let config = format!(
        r#"[daemon]
database = ""
control_socket = "{dir}/ike.sock"
listen = "127.0.0.1"
port = {port}
port_nat_t = {nat}
dh_workers = 1
dh_precompute = 0
usage_interval = "100ms"

[connections.gw]
local_addrs = "127.0.0.1"
proposals = "aes256gcm16-prfsha256-ecp256"
local = {{ auth = "psk", id = "gw.test" }}
remote = {{ auth = "psk", id = "peer.test" }}

[connections.gw.children.net]
local_ts = "198.18.2.0/24"
remote_ts = "198.18.1.0/24"
esp_proposals = "aes256gcm16"

[secrets.ike-gw]
secret = "drops-test-psk-0123456789"
"#,
        dir = dir.display(),
        nat = port + 1
    );
    let path = dir.join("rampart.toml");
    std::fs::write(&path, config).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let metrics = Arc::new(Metrics::new());
    let daemon = rampart_ike_daemon::spawn_with(&path, Options { metrics: metrics.clone(), loader: None })
        .unwrap_or_else(|e| panic!("daemon: {e}"));

    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let (ike, nat_t) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", port + 1));
    // Unparseable; an IKE_SA_INIT without payloads; an unknown SPI; a runt and ESP on 4500.
    peer.send_to(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], &ike).unwrap();
    peer.send_to(&header(7, 0, 0x20, 34, 0x08, 0), &ike).unwrap();
    peer.send_to(&header(7, 9, 0x20, 37, 0x08, 1), &ike).unwrap();
    peer.send_to(&[0, 0, 1], &nat_t).unwrap();
    peer.send_to(&[0, 0, 0, 9, 0, 0, 0, 1, 0xaa, 0xbb], &nat_t).unwrap();
    // IKE version 3: answered, with the header's version 2.0, to where it came from.
    peer.send_to(&header(7, 0, 0x30, 34, 0x08, 0), &ike).unwrap();
    let mut buf = [0u8; 512];
    let (n, from) = peer.recv_from(&mut buf).expect("INVALID_MAJOR_VERSION");
    assert_eq!(from.to_string(), ike);
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!((m.header.major, m.header.spi_i), (2, 7));
    assert!(m.notify(NotifyType::INVALID_MAJOR_VERSION).is_some());

    let want = [
        ("unparseable", 1.0),
        ("malformed_ike_sa_init", 1.0),
        ("unknown_spi", 1.0),
        ("runt", 1.0),
        ("esp_on_ike_socket", 1.0),
        ("bad_icv", 0.0),
        ("blocked_peer", 0.0),
        ("out_of_window", 0.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    let key = |r: &str| format!("rampart_ike_dropped_datagrams_total{{reason=\"{r}\"}}");
    loop {
        let flat = metrics.snapshot().flat();
        let got: Vec<(&str, f64)> =
            want.iter().map(|(r, _)| (*r, flat.get(&key(r)).copied().unwrap_or(-1.0))).collect();
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "counted {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same numbers over the control socket (`rampart ctl stats`).
    let r = rampart_ike_daemon::control::call(
        &dir.join("ike.sock"),
        &rampart_ike_daemon::control::Request::Stats,
        Duration::from_secs(5),
    )
    .unwrap();
    let result = r.result.unwrap();
    assert_eq!(result["metrics"][key("unknown_spi")], 1);
    assert!(result["table"].as_str().unwrap().contains("rampart_ike_dropped_datagrams_total"));
    daemon.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connection with `local_addrs = "%any"` and no `daemon.listen`: the daemon listens on every
/// address of the host (the loopback among them), as swanctl.conf's `%any` means.
#[test]
fn local_addrs_any_listens_on_the_hosts_addresses() {
    let dir = std::env::temp_dir().join(format!("rampart-any-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = 21_000 + (std::process::id() % 19_000) as u16 * 2;
    let config = format!(
        r#"[daemon]
database = ""
control_socket = "{dir}/ike.sock"
port = {port}
port_nat_t = {nat}
dh_workers = 1
dh_precompute = 0

[connections.roadwarriors]
local_addrs = "%any"
proposals = "aes256gcm16-prfsha256-ecp256"
local = {{ auth = "psk", id = "hub.test" }}
remote = {{ auth = "psk" }}

[connections.roadwarriors.children.net]
local_ts = "198.18.2.0/24"
remote_ts = "%any4"
esp_proposals = "aes256gcm16"

[secrets.ike-rw]
secret = "any-test-psk-0123456789"
"#,
        dir = dir.display(),
        nat = port + 1
    );
    let path = dir.join("rampart.toml");
    std::fs::write(&path, config).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = rampart_ike_daemon::spawn(&path).unwrap_or_else(|e| panic!("daemon: {e}"));
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    peer.send_to(&header(9, 0, 0x30, 34, 0x08, 0), format!("127.0.0.1:{port}")).unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = peer.recv_from(&mut buf).expect("an answer from the loopback address");
    assert_eq!(from.to_string(), format!("127.0.0.1:{port}"));
    assert!(Message::parse(&buf[..n]).unwrap().notify(NotifyType::INVALID_MAJOR_VERSION).is_some());
    daemon.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
