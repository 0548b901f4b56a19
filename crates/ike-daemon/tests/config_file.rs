//! The configuration file: swanctl.conf keys in TOML, checked values, derived defaults,
//! secrets (matching by identity, file permissions), and refusals that name file, line and
//! reason.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_ike::config::{AuthMethod, StartAction};
use rampart_ike::message::Identification;
use rampart_ike_daemon::config_file::{ChildAction, Config, parse_ts};
use rampart_sa::{Mode, TrafficSelector};

const GOOD: &str = r#"
[daemon]
database = "/dev/shm/test.sadb"
control_socket = "/tmp/ike-test.sock"
dh_workers = 2
cookie_threshold = 100

[connections.gw]
version = 2
local_addrs = "192.0.2.1"
remote_addrs = ["192.0.2.2"]
proposals = "aes256-sha256-ecp256, aes256-sha256-x25519"
dpd_delay = "30s"
dpd_timeout = 90
rekey_time = "4h"
mobike = "no"

[connections.gw.local]
auth = "psk"
id = "gw-a.sw.test"

[connections.gw.remote]
auth = "psk"
id = "gw-b.sw.test"

[connections.gw.children.net]
local_ts = "198.18.1.0/24"
remote_ts = ["198.18.2.0/24", "198.18.3.1-198.18.3.9[tcp/443]"]
esp_proposals = "aes256gcm16, chacha20poly1305"
start_action = "trap"
dpd_action = "restart"
rekey_time = "1h"
rekey_bytes = "1g"

[connections.hub]
local_addrs = "2001:db8::1"
proposals = "aes256gcm16-prfsha384-ecp384"
local = { auth = "psk", id = "hub.example" }
remote = { auth = "psk" }
children.branches = { local_ts = "2001:db8:1::/48", remote_ts = "%any6", mode = "transport", life_time = "2h" }

[secrets.ike-gw]
id-a = "gw-a.sw.test"
id-b = "gw-b.sw.test"
secret = "sw-test-psk-0123456789abcdef"

[secrets.ike-any]
secret = "0x00112233445566778899aabbccddeeff"
"#;

fn parse(text: &str) -> Result<Config, String> {
    Config::from_text(Path::new("rampart.toml"), text, None).map_err(|e| e.to_string())
}

fn ts(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
}

#[test]
fn swanctl_keys_become_the_connection() {
    let cfg = parse(GOOD).expect("good config");
    assert_eq!(cfg.daemon.dh_workers, 2);
    assert_eq!(cfg.daemon.endpoint.cookie_threshold, 100);
    assert_eq!(cfg.daemon.listen, vec!["192.0.2.1".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
    assert_eq!(cfg.connections.len(), 2);
    let gw = &cfg.connections[0];
    assert_eq!(gw.name, "gw");
    assert_eq!(gw.remote_addrs, vec!["192.0.2.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(gw.proposals.len(), 2);
    assert_eq!(gw.dpd_delay, Duration::from_secs(30));
    assert_eq!(gw.dpd_timeout, Duration::from_secs(90));
    assert_eq!(gw.rekey_time, Duration::from_secs(4 * 3600));
    assert_eq!(gw.over_time, Duration::from_secs(1440), "10 % of rekey_time");
    assert_eq!(gw.local.id, Some(Identification::fqdn("gw-a.sw.test")));
    assert_eq!(gw.remote.id, Some(Identification::fqdn("gw-b.sw.test")));
    assert_eq!(gw.psk.as_ref().map(|p| p.0.to_vec()), Some(b"sw-test-psk-0123456789abcdef".to_vec()));
    let net = &gw.children[0];
    assert_eq!(net.local_ts, vec![ts("198.18.1.0/24")]);
    assert_eq!(net.remote_ts.len(), 2);
    assert_eq!((net.remote_ts[1].protocol, net.remote_ts[1].start_port, net.remote_ts[1].end_port), (6, 443, 443));
    assert_eq!(net.remote_ts[1].end, "198.18.3.9".parse::<IpAddr>().unwrap());
    assert_eq!(net.esp_proposals.len(), 2);
    assert_eq!(net.start_action, StartAction::Trap);
    assert_eq!(net.rekey_time, Duration::from_secs(3600));
    assert_eq!(net.life_time, Duration::from_secs(3960), "life defaults to rekey * 1.1");
    assert_eq!(net.rand_time, Duration::from_secs(360), "rand defaults to life - rekey");
    assert_eq!(net.rekey_bytes, 1 << 30);
    assert_eq!(net.life_bytes, (1u64 << 30) + (1 << 30) / 10);
    assert_eq!(cfg.child_actions("gw", "net").dpd_action, ChildAction::Restart);
    assert_eq!(cfg.child_actions("gw", "net").close_action, ChildAction::Clear);
    let hub = &cfg.connections[1];
    assert_eq!(hub.remote.id, None, "remote id defaults to %any");
    assert_eq!(hub.psk.as_ref().map(|p| p.0.to_vec()), Some((0u8..16).map(|i| i * 0x11).collect::<Vec<_>>()));
    let br = &hub.children[0];
    assert_eq!(br.mode, Mode::Transport);
    assert_eq!(br.remote_ts, vec![TrafficSelector::any(true)]);
    assert_eq!((br.rekey_time, br.life_time), (Duration::from_secs(3600), Duration::from_secs(7200)));
    // The ignored swanctl key is reported with its line.
    assert!(
        cfg.warnings.iter().any(|w| w.starts_with("rampart.toml:16:") && w.contains("'mobike'")),
        "{:?}",
        cfg.warnings
    );
}

/// The config with one line replaced (1-based), and the error it gives.
fn error_with(line: usize, new: &str) -> String {
    let mut lines: Vec<&str> = GOOD.lines().collect();
    lines[line - 1] = new;
    parse(&lines.join("\n")).expect_err("must be refused")
}

#[test]
fn refusals_name_file_line_and_reason() {
    let cases: &[(usize, &str, &str)] = &[
        (12, r#"proposals = "3des-sha256-modp2048""#, "rampart.toml:12:13: connections.gw.proposals: algorithm '3des'"),
        (12, r#"proposals = "aes256-md5-modp2048""#, "rampart.toml:12:13: connections.gw.proposals: algorithm 'md5'"),
        (12, r#"proposals = "aes256-sha256-modp1024""#, "rampart.toml:12:13: connections.gw.proposals: algorithm"),
        (12, r#"proposals = """#, "rampart.toml:12:13: connections.gw.proposals is empty"),
        (16, r#"mobiike = "no""#, "rampart.toml:16:1: connections.gw: unknown key 'mobiike'"),
        (10, r#"local_addrs = "gw-a.example""#, "rampart.toml:10:15: local_addrs: 'gw-a.example' is not an IP address"),
        (13, r#"dpd_delay = "30 seconds""#, "rampart.toml:13:13: 'dpd_delay' must be a duration"),
        (14, r#"dpd_timeout = true"#, "rampart.toml:14:15: 'dpd_timeout' must be a duration"),
        (19, r#"auth = "pubkey""#, "rampart.toml:18:17: connections.gw.local.auth = pubkey needs local.certs"),
        (
            27,
            r#"local_ts = "198.18.1.0/33""#,
            "rampart.toml:27:12: connections.gw.children.net.local_ts: '198.18.1.0/33'",
        ),
        (29, r#"esp_proposals = "aes128-sha1""#, "rampart.toml:29:17: connections.gw.children.net.esp_proposals"),
        (29, r#"esp_proposals = "null""#, "rampart.toml:29:17: connections.gw.children.net.esp_proposals"),
        (
            30,
            r#"start_action = "sometimes""#,
            "rampart.toml:30:16: connections.gw.children.net.start_action = sometimes",
        ),
        (8, r#"[connections."gw a"]"#, "rampart.toml:8:14: connection name 'gw a'"),
        (2, r#"[daemons]"#, "rampart.toml:2:2: top level: unknown key 'daemons'"),
        (5, r#"dh_workers = 0"#, "rampart.toml:5:14: 'dh_workers' must be between 1 and 64"),
        (11, r#"remote_addrs = [1]"#, "rampart.toml:11:17: 'remote_addrs' must list strings"),
        (10, r#"local_addrs = "192.0.2.1"#, "rampart.toml:10:"),
        (9, r#"version = 1"#, "rampart.toml:9:11: connections.gw.version: Rampart speaks IKEv2 only"),
    ];
    // life_time below rekey_time.
    let t = GOOD.replace("rekey_time = \"1h\"", "rekey_time = \"1h\"\nlife_time = \"30m\"");
    let e = parse(&t).expect_err("life below rekey");
    assert!(e.starts_with("rampart.toml:33:13: connections.gw.children.net.life_time must be longer"), "{e}");
    // No secret for the identities (the catch-all gone, the specific one for other peers).
    let t = GOOD
        .replace("gw-a.sw.test\"\nid-b = \"gw-b.sw.test", "x.test\"\nid-b = \"y.test")
        .replace("[secrets.ike-any]\nsecret = \"0x00112233445566778899aabbccddeeff\"", "");
    let e = parse(&t).expect_err("no secret");
    assert!(e.starts_with("rampart.toml:8:14: connections.gw authenticates with psk but no secrets.ike"), "{e}");
    for (line, text, want) in cases {
        let got = error_with(*line, text);
        assert!(got.starts_with(want), "line {line} `{text}`:\n got  {got}\n want {want}");
    }
}

#[test]
fn errors_never_show_the_secret() {
    let t = GOOD.replace("\"sw-test-psk-0123456789abcdef\"", "\"sw-test-psk-0123456789abcdef\" junk");
    let e = parse(&t).expect_err("bad toml");
    assert!(!e.contains("sw-test-psk"), "{e}");
    let t = GOOD.replace("0x00112233445566778899aabbccddeeff", "0xnothex-sw-test");
    let e = parse(&t).expect_err("bad hex");
    assert!(e.contains("secrets.ike-any.secret: bad 0x hex") && !e.contains("nothex"), "{e}");
}

#[test]
fn secrets_match_by_identity() {
    // With two secrets, the one naming both identities wins over the one naming none.
    let cfg = parse(GOOD).unwrap();
    assert_eq!(cfg.connections[0].psk.as_ref().unwrap().0.len(), 28);
    // Without the specific one, the catch-all is used.
    let t = GOOD.replace("[secrets.ike-gw]\nid-a = \"gw-a.sw.test\"\nid-b = \"gw-b.sw.test\"\nsecret = \"sw-test-psk-0123456789abcdef\"\n", "");
    let cfg = parse(&t).unwrap();
    assert_eq!(cfg.connections[0].psk.as_ref().unwrap().0.len(), 16);
    // A base64 secret.
    let t = GOOD.replace("0x00112233445566778899aabbccddeeff", "0sAAECAwQFBgcICQoLDA0ODw==");
    let cfg = parse(&t).unwrap();
    assert_eq!(cfg.connections[1].psk.as_ref().unwrap().0.to_vec(), (0u8..16).collect::<Vec<_>>());
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rampart-conf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn files_holding_secrets_must_not_be_world_readable() {
    let d = temp_dir("perm");
    let main = d.join("rampart.toml");
    std::fs::write(&main, GOOD).unwrap();
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::load(&main).expect_err("world-readable secrets").to_string();
    assert!(e.contains("holds secrets but is accessible to every user (mode 0644)"), "{e}");
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o640)).unwrap();
    Config::load(&main).expect("0640 is fine");
    // Secrets in their own file: the main file may be world-readable, the secrets file not.
    let split = GOOD.find("[secrets.ike-gw]").unwrap();
    let (conns, secrets) = GOOD.split_at(split);
    let conns = conns.replace("cookie_threshold = 100", "cookie_threshold = 100\nsecrets_file = \"secrets.toml\"");
    std::fs::write(&main, conns).unwrap();
    std::fs::set_permissions(&main, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sf = d.join("secrets.toml");
    std::fs::write(&sf, secrets).unwrap();
    std::fs::set_permissions(&sf, std::fs::Permissions::from_mode(0o604)).unwrap();
    let e = Config::load(&main).expect_err("world-readable secrets file").to_string();
    assert!(e.starts_with(&format!("{}: holds secrets", sf.display())), "{e}");
    std::fs::set_permissions(&sf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = Config::load(&main).expect("separate secrets file");
    assert!(cfg.connections[0].psk.is_some());
    // An error inside the secrets file names that file.
    std::fs::write(&sf, secrets.replace("id-a =", "ida =")).unwrap();
    let e = Config::load(&main).expect_err("bad key in secrets").to_string();
    assert!(e.starts_with(&format!("{}:2:1: secrets.ike-gw: unknown key 'ida'", sf.display())), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fingerprints_follow_meaning_not_formatting() {
    let a = parse(GOOD).unwrap();
    let reformatted = GOOD
        .replace("remote_addrs = [\"192.0.2.2\"]", "remote_addrs = \"192.0.2.2\"")
        .replace("dpd_timeout = 90", "dpd_timeout = \"90s\"");
    let b = parse(&reformatted).unwrap();
    assert_eq!(a.fingerprint("gw"), b.fingerprint("gw"));
    let other_psk = GOOD.replace("sw-test-psk-0123456789abcdef", "sw-test-psk-0123456789abcdeX");
    let c = parse(&other_psk).unwrap();
    assert_ne!(a.fingerprint("gw"), c.fingerprint("gw"), "a new secret is a change");
    assert_eq!(a.fingerprint("hub"), c.fingerprint("hub"));
    let other_dpd = GOOD.replace("dpd_action = \"restart\"", "dpd_action = \"clear\"");
    assert_ne!(a.fingerprint("gw"), parse(&other_dpd).unwrap().fingerprint("gw"));
}

#[test]
fn traffic_selector_syntax() {
    let d = Some("192.0.2.9".parse().unwrap());
    assert_eq!(parse_ts("10.1.0.0/16", None).unwrap(), vec![ts("10.1.0.0/16")]);
    assert_eq!(parse_ts("dynamic", d).unwrap(), vec![ts("192.0.2.9/32")]);
    assert!(parse_ts("dynamic", None).is_err());
    assert_eq!(parse_ts("%any", None).unwrap().len(), 2);
    let t = parse_ts("10.0.0.0/8[udp/1000-2000]", None).unwrap();
    assert_eq!((t[0].protocol, t[0].start_port, t[0].end_port), (17, 1000, 2000));
    let t = parse_ts("10.0.0.1[icmp]", None).unwrap();
    assert_eq!((t[0].protocol, t[0].start_port, t[0].end_port), (1, 0, 65535));
    assert!(parse_ts("10.0.0.9-10.0.0.1", None).is_err());
    assert!(parse_ts("10.0.0.0/8[tcp/no-such-service]", None).is_err());
    assert!(parse_ts("10.0.0.0/8[tcp/80", None).is_err());
    assert!(parse_ts("10.0.0.1-::1", None).is_err());
}

#[test]
fn the_deploy_examples_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let hub = Config::from_text(
        &dir.join("hub.toml"),
        &read("hub.toml"),
        Some((&dir.join("hub-secrets.toml"), &read("hub-secrets.toml"))),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hub.connections.len(), 3);
    assert!(hub.connections.iter().all(|c| c.psk.is_some()));
    assert_eq!(hub.daemon.listen.len(), 2);
    // branch.toml holds its secret: loaded from a copy with the mode an operator gives it.
    let tmp = temp_dir("examples");
    let copy = tmp.join("branch.toml");
    std::fs::write(&copy, read("branch.toml")).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o640)).unwrap();
    let branch = Config::load(&copy).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(branch.connections[0].children[0].start_action, StartAction::Start);
    assert_eq!(branch.child_actions("hub", "lan").dpd_action, ChildAction::Restart);
    assert_eq!(branch.daemon.listen, vec!["198.51.100.10".parse::<IpAddr>().unwrap()]);
}

#[test]
fn what_is_missing_is_reported_where_it_belongs() {
    // A child without selectors on a connection without addresses: at the child's name.
    let t = GOOD.replace(
        "children.branches = { local_ts = \"2001:db8:1::/48\", remote_ts = \"%any6\", mode = \"transport\", life_time = \"2h\" }",
        "children.branches = { remote_ts = \"%any6\" }",
    );
    let t =
        t.replace("local_addrs = \"2001:db8::1\"\n", "").replace("[daemon]\n", "[daemon]\nlisten = \"2001:db8::1\"\n");
    let e = parse(&t).expect_err("no dynamic address");
    assert!(e.contains("connections.hub.children.branches.local_ts: defaults to 'dynamic'"), "{e}");
    let line = t.lines().position(|l| l.starts_with("children.branches")).unwrap() + 1;
    assert!(e.starts_with(&format!("rampart.toml:{line}:10:")), "{e}");
}

#[test]
fn the_reader_takes_a_table_of_a_parsed_document() {
    // What `rampart run` does: parse once, hand over the tables.
    let mut doc = rampart_config::Doc::new(Path::new("run.toml"), GOOD);
    let root = doc.parse().unwrap();
    let cfg = Config::from_table(&mut doc, root.get_ref()).unwrap();
    assert_eq!(cfg.connections.len(), 2);
    assert!(cfg.warnings.iter().any(|w| w.starts_with("run.toml:16:") && w.contains("'mobike'")), "{:?}", cfg.warnings);
    assert!(doc.warnings.is_empty(), "the warnings went to the configuration");
}

/// What strongSwan users write, taken as swanctl.conf means it.
#[test]
fn strongswan_spellings_are_accepted() {
    // start_action = trap|start: a trap policy and an initiation.
    for words in ["trap|start", "start|trap"] {
        let cfg = parse(&GOOD.replace("start_action = \"trap\"", &format!("start_action = \"{words}\""))).unwrap();
        let a = cfg.connections[0].children[0].start_action;
        assert_eq!(a, StartAction::TrapAndStart, "{words}");
        assert!(a.traps() && a.starts());
    }
    let e = error_with(30, r#"start_action = "trap|none""#);
    assert!(e.contains("use none, trap, start or trap|start"), "{e}");
    // local_addrs = %any, or none at all, and no daemon.listen: every address of the host.
    for hub in ["local_addrs = \"%any\"\n", ""] {
        let cfg = parse(&GOOD.replace("local_addrs = \"2001:db8::1\"\n", hub)).unwrap();
        assert!(cfg.daemon.listen_any, "{hub:?}");
        assert_eq!(cfg.daemon.listen, vec!["192.0.2.1".parse::<IpAddr>().unwrap()], "and gw's address");
        assert!(cfg.connections[1].local_addrs.is_empty());
    }
    assert!(!parse(GOOD).unwrap().daemon.listen_any);
    // Ports by name, number or range, protocols by name or number; ICMP type (and code).
    let port = |s: &str| parse_ts(s, None).map(|t| (t[0].protocol, t[0].start_port, t[0].end_port));
    assert_eq!(port("10.0.0.0/8[tcp/https]"), Ok((6, 443, 443)));
    assert_eq!(port("10.0.0.0/8[udp/domain]"), Ok((17, 53, 53)));
    assert_eq!(port("10.0.0.0/8[6/443]"), Ok((6, 443, 443)));
    assert_eq!(port("10.0.0.0/8[tcp/1024-65535]"), Ok((6, 1024, 65535)));
    assert_eq!(port("10.0.0.0/8[tcp/http-https]"), Ok((6, 80, 443)));
    assert_eq!(port("10.0.0.0/8[udp/%any]"), Ok((17, 0, 65535)));
    assert_eq!(port("10.0.0.0/8[%any/53]"), Ok((0, 53, 53)));
    assert_eq!(port("10.0.0.0/8[esp]"), Ok((50, 0, 65535)));
    assert_eq!(port("10.0.0.0/8[icmp/8]"), Ok((1, 0x0800, 0x08ff)));
    assert_eq!(port("2001:db8::/32[ipv6-icmp/1/4]"), Ok((58, 0x0104, 0x0104)));
    assert!(port("10.0.0.0/8[tcp/%opaque]").unwrap_err().contains("opaque"));
    assert!(port("10.0.0.0/8[tcp/443-80]").is_err());
    let cfg = parse(&GOOD.replace("remote_ts = [\"198.18.2.0/24\", ", "remote_ts = [\"198.18.2.0/24[udp/domain]\", "))
        .unwrap();
    assert_eq!(cfg.connections[0].children[0].remote_ts[0].start_port, 53);
    // The new groups and AES-192 in IKE and ESP proposals.
    let cfg = parse(
        &GOOD
            .replace(
                "proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"",
                "proposals = \"aes192-sha256-modp3072, aes256-sha384-ecp521, aes256-sha512-modp4096\"",
            )
            .replace("esp_proposals = \"aes256gcm16, chacha20poly1305\"", "esp_proposals = \"aes192-sha256-ecp521\""),
    )
    .unwrap();
    let groups: Vec<u16> = cfg.connections[0].proposals.iter().flat_map(|p| p.dh.iter().map(|g| g.id())).collect();
    assert_eq!(groups, vec![15, 21, 16]);
    assert_eq!(cfg.connections[0].children[0].esp_proposals[0].to_string(), "aes192-sha256-ecp521-noesn");
    // Refused with the keyword and the reason, at the value.
    for (text, want) in [
        (r#"esp_proposals = "aes192gcm16""#, "algorithm 'aes192gcm16' is not supported: AES-GCM with a 192-bit key"),
        (
            r#"esp_proposals = "aes128gcm12""#,
            "algorithm 'aes128gcm12' is not supported: AES-GCM with an 8 or 12-byte ICV",
        ),
        (r#"esp_proposals = "aes128gcm8""#, "algorithm 'aes128gcm8' is not supported"),
        (r#"esp_proposals = "aes128-sha256_96""#, "algorithm 'sha256_96' is not supported: HMAC-SHA-256 truncated"),
        (
            r#"esp_proposals = "aes128-sha256-curve448""#,
            "algorithm 'curve448' is not supported: Curve448 needs an X448",
        ),
        (r#"esp_proposals = "aes128-sha256-foo""#, "unknown algorithm keyword 'foo'"),
    ] {
        let e = error_with(29, text);
        assert!(
            e.starts_with("rampart.toml:29:17: connections.gw.children.net.esp_proposals") && e.contains(want),
            "{text}: {e}"
        );
    }
    // Thresholds: 0 switches each off, cookie_threshold_ip is read.
    let cfg = parse(
        &GOOD.replace("cookie_threshold = 100", "cookie_threshold = 0\ncookie_threshold_ip = 7\nblock_threshold = 0"),
    )
    .unwrap();
    let e = &cfg.daemon.endpoint;
    assert_eq!((e.cookie_threshold, e.cookie_threshold_ip, e.block_threshold), (0, 7, 0));
    let d = parse(GOOD).unwrap().daemon.endpoint;
    assert_eq!((d.cookie_threshold_ip, d.block_threshold), (3, 250), "the defaults");
}

/// The swanctl folders with the core's test PKI (`crates/ike/tests/data/pki`).
fn pki_dir(tag: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ike/tests/data/pki");
    let d = std::env::temp_dir().join(format!("rampart-certs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    for (from, to) in [
        ("p256.pem", "x509/p256.pem"),
        ("inter.pem", "x509/inter.pem"),
        ("root.pem", "x509ca/root.pem"),
        ("inter.crl.pem", "x509crl/inter.crl.pem"),
        ("p256.key", "ecdsa/p256.key"),
        ("rsa3072.key", "rsa/rsa3072.key"),
    ] {
        let dst = d.join(to);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src.join(from), &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    d
}

const CERT_HUB: &str = r#"
[connections.hub]
local_addrs = "192.0.2.1"
unique = "replace"
local = { auth = "pubkey", certs = "p256.pem", id = "gw-p256.example.net" }
remote = { auth = "pubkey", id = "*.branch.example.net", cacerts = "root.pem" }
children.net = { local_ts = "10.0.0.0/16", remote_ts = "10.128.0.0/9" }

[connections.mixed]
local_addrs = "192.0.2.1"
local = { auth = "psk", id = "hub.example.net" }
remote = { auth = "pubkey", id = "C=DE, O=Rampart Test, CN=*" }
children.net = { local_ts = "10.0.0.0/16", remote_ts = "10.128.0.0/9" }

[secrets.ike-hub]
id = "hub.example.net"
secret = "a-long-enough-secret-0123456789"
"#;

#[test]
fn certificates_keys_cas_and_crls_come_from_the_swanctl_folders() {
    use std::os::unix::fs::PermissionsExt;
    let d = pki_dir("ok");
    let path = d.join("rampart.toml");
    std::fs::write(&path, CERT_HUB).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let hub = &cfg.connections[0];
    assert_eq!(hub.local.auth, AuthMethod::Pubkey);
    assert_eq!(hub.local.certs.len(), 2, "our certificate and the intermediate found in x509/");
    assert_eq!(hub.local.certs[1].subject_text, "C=DE, O=Rampart Test, CN=Rampart Test Intermediate");
    assert!(hub.local.key.as_ref().is_some_and(|k| k.matches(&hub.local.certs[0])));
    assert_eq!(hub.remote.cacerts.len(), 1);
    assert_eq!(hub.trust.cas.len(), 1);
    assert_eq!(hub.trust.crls.len(), 1);
    assert_eq!(hub.unique, rampart_ike::config::Unique::Replace);
    assert!(hub.remote.id.as_ref().unwrap().is_pattern());
    let mixed = &cfg.connections[1];
    assert_eq!((mixed.local.auth, mixed.remote.auth), (AuthMethod::Psk, AuthMethod::Pubkey));
    assert!(mixed.psk.is_some());
    assert_eq!(cfg.credentials.keys.len(), 2);
    // A new CRL changes the credentials only: a reload keeps the SAs and takes the new CRL.
    std::fs::remove_file(d.join("x509crl/inter.crl.pem")).unwrap();
    let again = Config::load(&path).unwrap();
    assert_eq!(again.fingerprint("hub"), cfg.fingerprint("hub"));
    assert_ne!(again.credential_fingerprint("hub"), cfg.credential_fingerprint("hub"));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn certificate_mistakes_are_refused_with_the_file_and_reason() {
    use std::os::unix::fs::PermissionsExt;
    let d = pki_dir("bad");
    let path = d.join("rampart.toml");
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Config::load(&path).map(|_| ()).unwrap_err().to_string()
    };
    let e = load(&CERT_HUB.replace("certs = \"p256.pem\"", "certs = \"missing.pem\""));
    assert!(e.contains("local.certs") && e.contains("missing.pem") && e.contains("cannot read"), "{e}");
    let e = load(&CERT_HUB.replace("id = \"gw-p256.example.net\"", "id = \"other.example.net\""));
    assert!(e.contains("'other.example.net' is not in the certificate"), "{e}");
    let e = load(&CERT_HUB.replace("certs = \"p256.pem\"", "certs = \"inter.pem\""));
    assert!(e.contains("no private key for"), "{e}");
    let e = load(&CERT_HUB.replace("cacerts = \"root.pem\"", "certs = \"root.pem\""));
    assert!(e.contains("remote.certs: certs belongs in the local round"), "{e}");
    // A private key every user may read.
    std::fs::set_permissions(d.join("ecdsa/p256.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load(CERT_HUB);
    assert!(e.contains("p256.key") && e.contains("accessible to every user"), "{e}");
    std::fs::set_permissions(d.join("ecdsa/p256.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // A file in x509ca that is no CA; a key that is no key (and never shown).
    std::fs::copy(d.join("x509/p256.pem"), d.join("x509ca/leaf.pem")).unwrap();
    let e = load(CERT_HUB);
    assert!(e.contains("leaf.pem") && e.contains("is not a CA certificate"), "{e}");
    std::fs::remove_file(d.join("x509ca/leaf.pem")).unwrap();
    std::fs::write(
        d.join("ecdsa/junk.key"),
        "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(d.join("ecdsa/junk.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = load(CERT_HUB);
    assert!(e.contains("junk.key") && e.contains("private key"), "{e}");
    assert!(!e.contains("c2VjcmV0"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `ah_proposals` in a child (swanctl.conf spelling): the child negotiates AH with them; both
/// `esp_proposals` and `ah_proposals` in one child are refused at the second with the reason;
/// refused algorithms name the keyword and why, at the value.
#[test]
fn ah_proposals_make_an_ah_child_and_esp_with_ah_is_refused() {
    let esp = "esp_proposals = \"aes256gcm16, chacha20poly1305\"";
    let cfg = parse(&GOOD.replace(esp, "ah_proposals = \"sha256, aes256gmac-ecp256-esn\"")).unwrap();
    let child = &cfg.connections[0].children[0];
    assert_eq!(child.proposals().protocol(), rampart_sa::Protocol::Ah);
    assert!(child.esp_proposals.is_empty());
    assert_eq!(child.proposals().describe(), "AH:sha256-noesn, aes256gmac-ecp256-esn");
    let cfg = parse(&GOOD.replace(esp, "ah_proposals = [\"default\"]")).unwrap();
    assert_eq!(cfg.connections[0].children[0].proposals().describe(), "AH:sha256-sha384-sha512-noesn");
    // A child without either keeps ESP and its defaults.
    assert_eq!(cfg.connections[1].children[0].proposals().protocol(), rampart_sa::Protocol::Esp);

    // Both: refused at the second key (line 30 here), whichever comes first.
    for (first, second) in [(esp, "ah_proposals = \"sha256\""), ("ah_proposals = \"sha256\"", esp)] {
        let t = GOOD.replace(esp, &format!("{first}\n{second}"));
        let e = parse(&t).expect_err("ESP and AH in one child");
        assert!(
            e.starts_with("rampart.toml:30:1: connections.gw.children.net: esp_proposals and ah_proposals both given: AH+ESP bundles in one CHILD_SA are not implemented"),
            "{e}"
        );
    }
    for (text, want) in [
        (r#"ah_proposals = "md5""#, "algorithm 'md5' is refused: MD5 is broken (RFC 8221 section 6)"),
        (r#"ah_proposals = "sha1""#, "algorithm 'sha1' is refused: Rampart offers only SHA-2 integrity (RFC 8221"),
        (r#"ah_proposals = "aes256-sha256""#, "'aes256' is an encryption algorithm, and AH has none"),
        (r#"ah_proposals = "aes192gmac""#, "AES-GMAC has no 192-bit key size"),
        (r#"ah_proposals = "ecp256""#, "proposal has no integrity algorithm"),
    ] {
        let e = error_with(29, text);
        assert!(
            e.starts_with("rampart.toml:29:16: connections.gw.children.net.ah_proposals") && e.contains(want),
            "{text}: {e}"
        );
    }
    let e = error_with(29, r#"ah_proposals = """#);
    assert!(e.starts_with("rampart.toml:29:16: connections.gw.children.net.ah_proposals is empty"), "{e}");
}

/// `fragmentation` (yes, accept, no; IKEv1's force taken as yes) and `fragment_size` (0 or 576
/// to 65535) read as strongSwan spells them; other values refused with what is allowed.
#[test]
fn fragmentation_and_fragment_size() {
    use rampart_ike::config::Fragmentation;
    let with = |conn: &str, daemon: &str| {
        parse(
            &GOOD
                .replace("mobike = \"no\"\n", &format!("mobike = \"no\"\n{conn}\n"))
                .replace("cookie_threshold = 100\n", &format!("cookie_threshold = 100\n{daemon}\n")),
        )
    };
    let cfg = parse(GOOD).unwrap();
    assert_eq!(cfg.connections[0].fragmentation, Fragmentation::Yes, "the default");
    assert_eq!(cfg.daemon.endpoint.fragment_size, 1280, "the default");
    for (word, want) in [
        ("yes", Fragmentation::Yes),
        ("accept", Fragmentation::Accept),
        ("no", Fragmentation::No),
        ("force", Fragmentation::Yes),
    ] {
        let cfg = with(&format!("fragmentation = \"{word}\""), "").unwrap();
        assert_eq!(cfg.connections[0].fragmentation, want, "{word}");
    }
    let e = with("fragmentation = \"sometimes\"", "").unwrap_err();
    assert!(e.contains("use yes, accept or no"), "{e}");
    for (n, ok) in [(0, true), (576, true), (1400, true), (65535, true), (575, false), (65536, false), (-1, false)] {
        let r = with("", &format!("fragment_size = {n}"));
        match r {
            Ok(cfg) => {
                assert!(ok, "{n} taken");
                assert_eq!(cfg.daemon.endpoint.fragment_size, n as usize);
            }
            Err(e) => {
                assert!(!ok, "{n}: {e}");
                assert!(
                    e.contains("'fragment_size' must be 0 (576 for IPv4, 1280 for IPv6) or 576 to 65535 bytes"),
                    "{e}"
                );
            }
        }
    }
}
