//! DESIGN.md rule 5: no key is ever printed, at any log level. SAs and IKE state are built
//! through the real code paths (an ESP `SaConfig` with known key bytes, `SaCrypto` and the
//! inbound/outbound runtimes, a full IKEv2 PSK handshake between two `rampart_ike` endpoints, a
//! daemon configuration with a secrets section, key derivation with a known SKEYSEED, a DH key
//! share from a known private value), logged with `?` at trace level in every output format,
//! and the captured output is searched for every secret in hex, base64, `Debug` arrays and
//! plain text, including any 8-byte piece of one.
//!
//! The detector is checked first against a type that does leak, so that this test can fail.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_crypto::{Backend, SaCrypto, Suite};
use rampart_esp::{Direction, InboundSa, Lifetimes, Mode, OutboundSa, SaConfig, TrafficSelector};
use rampart_ike::crypto::{DhGroup, KeyShare, Prf, SeededRandom};
use rampart_ike::keys::{IkeSaKeys, child_keymat};
use rampart_ike::message::Identification;
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::{ChildConfig, ConnectionConfig, Endpoint, EndpointConfig, Event, Psk};
use rampart_telemetry::log::{LogFormat, LogOptions, build};
use zeroize::Zeroizing;

// ---- Capture ---------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Runs `f` under a trace-level subscriber of `format`; returns what was logged.
fn capture(format: LogFormat, f: impl FnOnce()) -> String {
    let buf = Capture::default();
    let opts = LogOptions { filter: Some("trace".into()), env_filter: None, format, journal_stream: false };
    let (sub, _handle) = build(&opts, buf.clone()).unwrap();
    tracing::subscriber::with_default(sub, f);
    String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
}

// ---- Detector --------------------------------------------------------------------------------

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every way a piece of `secret` could show up in text.
fn forms(secret: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let hex: Vec<String> = secret.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("hex".into(), hex.concat()));
    out.push(("HEX".into(), hex.concat().to_uppercase()));
    out.push(("hex with colons".into(), hex.join(":")));
    out.push(("hex with spaces".into(), hex.join(" ")));
    out.push(("Debug array".into(), format!("{secret:?}").trim_matches(['[', ']']).to_string()));
    out.push(("Debug hex array".into(), format!("{secret:x?}").trim_matches(['[', ']']).to_string()));
    out.push((
        "Debug 0x array".into(),
        format!("{secret:#04x?}").replace(['\n', ' '], "").trim_matches(['[', ']', ',']).to_string(),
    ));
    if let Ok(s) = std::str::from_utf8(secret) {
        out.push(("text".into(), s.to_string()));
        out.push(("Debug text".into(), format!("{s:?}").trim_matches('"').to_string()));
    }
    out
}

/// Base64 forms of `secret`: encoded alone, and at each alignment inside a longer buffer
/// (dropping the groups that mix in neighbouring bytes).
fn base64_forms(secret: &[u8]) -> Vec<(String, String)> {
    let mut out = vec![("base64".to_string(), base64(secret).trim_end_matches('=').to_string())];
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(secret);
        let b = base64(&padded);
        let b = b.trim_end_matches('=');
        if b.len() >= 16 {
            out.push((format!("base64 (shift {shift})"), b[4..b.len() - 4].to_string()));
        }
    }
    out
}

/// Names of the forms in which any 8-byte piece (or the whole, if shorter) of any secret
/// appears in `log`.
fn leaks(log: &str, secrets: &[(&str, Vec<u8>)]) -> Vec<String> {
    let squashed = log.replace("\\n", "").replace(['\n', ' '], "");
    let mut found = Vec::new();
    for (what, s) in secrets {
        assert!(s.len() >= 4, "{what}: too short to search for");
        let pieces = s.windows(s.len().min(8)).flat_map(forms);
        let b64 = s.windows(s.len().min(12)).flat_map(base64_forms);
        {
            for (form, text) in pieces.chain(b64) {
                let hay = if form == "Debug 0x array" { &squashed } else { log };
                if text.len() >= 8 && hay.contains(&text) {
                    found.push(format!("{what} as {form}: {text}"));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

const FORMATS: [LogFormat; 3] = [LogFormat::Plain, LogFormat::Journald, LogFormat::Json];

#[test]
fn the_detector_finds_a_leak_in_every_form() {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct LeakyKey {
        key: Vec<u8>,
    }
    let key: Vec<u8> = (0x50..0x70).collect();
    let secrets = vec![("leaky key", key.clone())];
    for format in FORMATS {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let cases: Vec<(&str, String)> = vec![
            ("Debug array", capture(format, || tracing::trace!(k = ?LeakyKey { key: key.clone() }, "sa"))),
            ("hex", capture(format, || tracing::trace!(k = %hex, "sa"))),
            ("HEX", capture(format, || tracing::trace!("key {}", hex.to_uppercase()))),
            ("base64", capture(format, || tracing::trace!(k = %base64(&key[3..]), "sa"))),
            ("Debug hex array", capture(format, || tracing::trace!("{:x?}", &key[5..20]))),
            ("Debug 0x array", capture(format, || tracing::trace!("{:#04x?}", &key[..9]))),
        ];
        for (form, log) in cases {
            let found = leaks(&log, &secrets);
            assert!(found.iter().any(|f| f.contains(form)), "{format:?}: {form} not detected in {log:?}: {found:?}");
        }
        // A part of a key is found too.
        let log = capture(format, || tracing::trace!(tail = ?&key[20..30], "sa"));
        assert!(!leaks(&log, &secrets).is_empty(), "{format:?}: partial key not detected in {log}");
        // And text that shares no 8-byte piece is not.
        let log = capture(format, || tracing::trace!(other = ?&key[..7], "sa"));
        assert!(leaks(&log, &secrets).is_empty(), "{format:?}: false positive in {log}");
    }
}

// ---- The real code paths ---------------------------------------------------------------------

fn ts(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn esp_config(spi: u32, direction: Direction, suite: &str, enc: &[u8], integ: &[u8]) -> SaConfig {
    SaConfig {
        protocol: rampart_esp::Protocol::Esp,
        spi,
        direction,
        suite: Suite::from_swanctl(suite).unwrap(),
        encryption_key: Zeroizing::new(enc.to_vec()),
        integrity_key: Zeroizing::new(integ.to_vec()),
        mode: Mode::Tunnel,
        local: ip("192.0.2.1"),
        remote: ip("192.0.2.2"),
        encap: None,
        esn: true,
        replay_window: 1024,
        local_ts: vec![ts("198.18.1.0/24")],
        remote_ts: vec![ts("198.18.2.0/24")],
        lifetimes: Lifetimes::default(),
    }
}

const PSK: &[u8] = b"Xq7psk-zu9Wv2-Lp0t4-Rr8mKd";

fn connection(local: &str, remote: &str, lid: &str, rid: &str, lts: &str, rts: &str) -> ConnectionConfig {
    let mut c = ConnectionConfig::psk("gw", Identification::fqdn(lid), Some(Identification::fqdn(rid)), PSK);
    c.local_addrs = vec![ip(local)];
    c.remote_addrs = vec![ip(remote)];
    c.proposals = parse_ike_proposals("aes256-sha256-ecp256").unwrap();
    c.children =
        vec![ChildConfig::new("net", vec![ts(lts)], vec![ts(rts)], parse_esp_proposals("aes256gcm16").unwrap())];
    c
}

/// Two endpoints negotiate an IKE SA and a CHILD_SA, everything logged at trace level; returns
/// the keys they derived.
fn ike_handshake_logged() -> Vec<(&'static str, Vec<u8>)> {
    let now = Instant::now();
    let a_conf = connection("192.0.2.1", "192.0.2.2", "a.test", "b.test", "198.18.1.0/24", "198.18.2.0/24");
    let b_conf = connection("192.0.2.2", "192.0.2.1", "b.test", "a.test", "198.18.2.0/24", "198.18.1.0/24");
    tracing::trace!(config = ?a_conf, "connection loaded");
    let mut a = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(11)));
    a.add_connection(a_conf);
    let mut b = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(12)));
    b.add_connection(b_conf);
    let id = a.initiate(now, "gw", None).unwrap();
    tracing::trace!(ike = %id, endpoint = ?a, "initiating");
    let mut events = Vec::new();
    for _ in 0..50 {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            tracing::trace!(transmit = ?t, "a sends");
            b.handle(now, t.to, t.from, &t.bytes);
            moved = true;
        }
        while let Some(t) = b.poll_transmit() {
            tracing::trace!(transmit = ?t, "b sends");
            a.handle(now, t.to, t.from, &t.bytes);
            moved = true;
        }
        for e in [&mut a, &mut b] {
            while let Some(ev) = e.poll_event() {
                tracing::trace!(event = ?ev, "event");
                events.push(ev);
            }
        }
        if !moved {
            break;
        }
    }
    tracing::trace!(sas = ?a.ike_sas(), "a state");
    tracing::trace!(sas = ?b.ike_sas(), "b state");
    tracing::debug!(endpoint = ?b, "b");
    let mut keys = Vec::new();
    for ev in &events {
        if let Event::InstallChildSa { inbound, outbound, .. } = ev {
            keys.push(("negotiated inbound ESP key", inbound.encryption_key.to_vec()));
            keys.push(("negotiated outbound ESP key", outbound.encryption_key.to_vec()));
            tracing::trace!(inbound = ?inbound, outbound = ?outbound, "install");
        }
    }
    assert_eq!(keys.len(), 4, "the handshake did not install a CHILD_SA on both sides: {events:?}");
    keys
}

/// Everything that holds a key, logged; returns the secrets to look for.
fn log_everything() -> Vec<(&'static str, Vec<u8>)> {
    let mut secrets: Vec<(&'static str, Vec<u8>)> = Vec::new();

    // ESP SAs with known keys: an AEAD suite and a cipher + integrity suite.
    let gcm_key: Vec<u8> = (0xa0..0xc4).collect(); // 32-byte key and 4-byte salt
    let cbc_key: Vec<u8> = (0x11..0x21).collect();
    let hmac_key: Vec<u8> = (0x31..0x51).collect();
    secrets.push(("AES-GCM key and salt", gcm_key.clone()));
    secrets.push(("AES-GCM salt", gcm_key[32..].to_vec()));
    secrets.push(("AES-CBC key", cbc_key.clone()));
    secrets.push(("HMAC key", hmac_key.clone()));
    for (cfg, backend) in [
        (esp_config(0x1001, Direction::Inbound, "aes256gcm16", &gcm_key, &[]), None),
        (esp_config(0x1002, Direction::Outbound, "aes128-sha256", &cbc_key, &hmac_key), None),
    ]
    .into_iter()
    .map(|(c, b): (SaConfig, Option<Backend>)| {
        let b = b.unwrap_or_else(|| Backend::fastest(c.suite));
        (c, b)
    }) {
        tracing::trace!(sa = ?cfg, "SA config");
        tracing::info!("{cfg:?}");
        let crypto = SaCrypto::new(cfg.suite, &cfg.encryption_key, &cfg.integrity_key, backend).unwrap();
        tracing::trace!(crypto = ?crypto, "expanded keys");
        let mut inbound_cfg = cfg.clone();
        inbound_cfg.direction = Direction::Inbound;
        let inbound = InboundSa::new(&inbound_cfg, backend).unwrap();
        tracing::trace!(sa = ?inbound, "inbound runtime");
        let mut outbound_cfg = cfg.clone();
        outbound_cfg.direction = Direction::Outbound;
        let outbound = OutboundSa::new(&outbound_cfg, backend).unwrap();
        tracing::trace!(sa = ?outbound, "outbound runtime");
        tracing::trace!("{:#?}", cfg);
    }

    // IKE: a pre-shared key, its Debug, a real handshake and the keys it derived.
    let psk = Psk::new(PSK);
    tracing::trace!(psk = ?psk, "psk");
    secrets.push(("pre-shared key", PSK.to_vec()));
    secrets.extend(ike_handshake_logged());

    // Key derivation with a known SKEYSEED.
    let skeyseed: Vec<u8> = (0x61..0x81).collect();
    secrets.push(("SKEYSEED", skeyseed.clone()));
    let keys = IkeSaKeys::derive(
        Prf::HmacSha256,
        rampart_ike::crypto::Encr::AesGcm16 { key_bits: 256 },
        None,
        &skeyseed,
        (&[1u8; 32], &[2u8; 32]),
        (0x1122334455667788, 0x99aabbccddeeff00),
    );
    tracing::trace!(keys = ?keys, "IKE SA keys");
    for (what, k) in [
        ("SK_d", &keys.sk_d),
        ("SK_ei", &keys.sk_ei),
        ("SK_er", &keys.sk_er),
        ("SK_pi", &keys.sk_pi),
        ("SK_pr", &keys.sk_pr),
    ] {
        secrets.push((what, k.to_vec()));
    }
    let keymat = child_keymat(Prf::HmacSha256, &keys.sk_d, None, &[3u8; 32], &[4u8; 32], 72);
    secrets.push(("KEYMAT", keymat.to_vec()));

    // A Diffie-Hellman key share from a known private value, and the shared secret.
    let private: Vec<u8> = (0x71..0x91).collect();
    let share = KeyShare::from_private(DhGroup::Curve25519, &private).unwrap();
    let peer = KeyShare::from_private(DhGroup::Curve25519, &[0x42; 32]).unwrap();
    let shared = share.agree(peer.public()).unwrap();
    tracing::trace!(share = ?share, "key share");
    secrets.push(("DH private value", private));
    secrets.push(("DH shared secret", shared.to_vec()));

    // The daemon's configuration with its secrets section.
    let conf_text = r#"
[daemon]
database = "/dev/shm/rampart-telemetry-test.sadb"
control_socket = "/run/rampart/test.sock"

[connections.gw]
local_addrs = "192.0.2.1"
remote_addrs = "192.0.2.2"
proposals = "aes256-sha256-ecp256"
local = { auth = "psk", id = "a.test" }
remote = { auth = "psk", id = "b.test" }

[connections.gw.children.net]
local_ts = "198.18.1.0/24"
remote_ts = "198.18.2.0/24"
esp_proposals = "aes256gcm16"

[secrets.ike-gw]
id-a = "a.test"
id-b = "b.test"
secret = "Jh5cfg-Tn2Yw8-Qd3Vk6-Bz1Ps4"
"#;
    match rampart_ike_daemon::config_file::Config::from_text(Path::new("/etc/rampart/rampart.toml"), conf_text, None) {
        Ok(cfg) => tracing::trace!(config = ?cfg, "configuration"),
        Err(e) => panic!("the test configuration no longer parses: {e}"),
    }
    secrets.push(("configured secret", b"Jh5cfg-Tn2Yw8-Qd3Vk6-Bz1Ps4".to_vec()));
    let _ = SocketAddr::from(([127, 0, 0, 1], 500));
    secrets
}

#[test]
fn no_key_material_at_trace_level_in_any_format() {
    for format in FORMATS {
        let mut secrets = Vec::new();
        let log = capture(format, || secrets = log_everything());
        // The Debug output really went through (else the test would prove nothing).
        for needle in ["SaConfig", "SaCrypto", "InstallChildSa", "IkeSaKeys", "Psk", "0x00001001"] {
            assert!(log.contains(needle), "{format:?}: {needle} was not logged:\n{log}");
        }
        assert!(log.len() > 5_000, "{format:?}: only {} bytes logged", log.len());
        let found = leaks(&log, &secrets);
        assert!(found.is_empty(), "{format:?}: key material in the log:\n{}", found.join("\n"));
    }
    let _ = Duration::ZERO;
}

/// What a responder refused, logged as the IKE daemon logs it (`diagnostic_log`): a peer with
/// the wrong pre-shared key gets AUTHENTICATION_FAILED and the log says precisely why, a
/// datagram cut short is dropped as unparseable with the parse error, a tampered one as a bad
/// ICV; every line carries the peer's address, and neither side's key shows in any form.
#[test]
fn refusals_are_logged_with_the_peer_address_and_without_keys() {
    const OTHER_PSK: &[u8] = b"Mw3other-Hs8Qe1-Tz5Gc7";
    for format in FORMATS {
        let log = capture(format, || {
            let now = Instant::now();
            let a_conf = connection("192.0.2.1", "192.0.2.2", "a.test", "b.test", "198.18.1.0/24", "198.18.2.0/24");
            let mut b_conf = connection("192.0.2.2", "192.0.2.1", "b.test", "a.test", "198.18.2.0/24", "198.18.1.0/24");
            b_conf.psk = Some(Psk::new(OTHER_PSK));
            let mut a = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(21)));
            a.add_connection(a_conf);
            let mut b = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(22)));
            b.add_connection(b_conf);
            a.initiate(now, "gw", None).unwrap();
            for _ in 0..10 {
                while let Some(t) = a.poll_transmit() {
                    if t.bytes.len() > 40 {
                        b.handle(now, t.to, t.from, &t.bytes[..40]);
                        let mut bad = t.bytes.clone();
                        let n = bad.len();
                        bad[n - 1] ^= 1;
                        b.handle(now, t.to, t.from, &bad);
                    }
                    b.handle(now, t.to, t.from, &t.bytes);
                }
                while let Some(t) = b.poll_transmit() {
                    a.handle(now, t.to, t.from, &t.bytes);
                }
            }
            while let Some(d) = b.poll_diagnostic() {
                rampart_ike_daemon::diagnostic_log::log(&d);
            }
        });
        for needle in ["AUTHENTICATION_FAILED", "AUTH did not verify", "unparseable", "bad_icv", "header says"] {
            assert!(log.contains(needle), "{format:?}: no {needle} in\n{log}");
        }
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 3, "{format:?}:\n{log}");
        for l in &lines {
            assert!(l.contains("192.0.2.1:500"), "{format:?}: a line without the peer's address: {l}");
        }
        let found = leaks(&log, &[("A's pre-shared key", PSK.to_vec()), ("B's pre-shared key", OTHER_PSK.to_vec())]);
        assert!(found.is_empty(), "{format:?}: key material in the log:\n{}", found.join("\n"));
    }
}
