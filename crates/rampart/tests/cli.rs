//! `rampart sa` and `rampart policy` through the built binary, on database files in /dev/shm:
//! what the commands write is read back through `rampart_sadb::Reader`, `list` output is pasted
//! back into `add`, and every refusal names the bad word.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use rampart_esp::Direction;
use rampart_sadb::{PolicyDir, Reader, SpdAction, SpdLookup};

struct Db(PathBuf);

impl Db {
    fn new(name: &str) -> Db {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = PathBuf::from(format!("/dev/shm/rampart-cli-test-{}-{name}-{n}.sadb", std::process::id()));
        let _ = std::fs::remove_file(&p);
        Db(p)
    }

    /// Runs `rampart GROUP --db PATH --sa-capacity 64 --policy-capacity 64 ARGS...`.
    fn run(&self, group: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .arg(group)
            .args(["--db", self.0.to_str().unwrap(), "--sa-capacity", "64", "--policy-capacity", "64"])
            .args(args)
            .env_remove("RAMPART_DB")
            .output()
            .expect("run rampart")
    }

    fn ok(&self, group: &str, args: &[&str]) -> String {
        let out = self.run(group, args);
        assert!(out.status.success(), "rampart {group} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its message.
    fn err(&self, group: &str, args: &[&str]) -> String {
        let out = self.run(group, args);
        assert!(!out.status.success(), "rampart {group} {args:?} succeeded");
        assert!(out.stdout.is_empty());
        String::from_utf8(out.stderr).unwrap()
    }

    fn reader(&self) -> Reader {
        Reader::attach(&self.0).unwrap()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Splits a line as a shell would for our output: words, with '...' and "..." quoting.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn hex(byte: u8, n: usize) -> String {
    format!("0x{}", format!("{byte:02x}").repeat(n))
}

fn sa_lines() -> Vec<String> {
    vec![
        format!(
            "src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x1000 dir out mode tunnel reqid 7 aead rfc4106(gcm(aes)) {} 128 \
             encap espinudp 4500 4501 0.0.0.0 replay-window 1024 flag esn sel src 198.18.1.0/24 dst 198.18.2.0/24 \
             limit byte-soft 1000000 limit time-hard 3600",
            hex(0x11, 20)
        ),
        format!(
            "src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x2000 dir in mode tunnel aead rfc7539esp(chacha20,poly1305) {} 128 \
             sel src 198.18.2.0/24 dst 198.18.1.0/24 proto tcp sport 1000-2000 dport 443",
            hex(0x22, 36)
        ),
        format!(
            "src 192.0.2.1 dst 192.0.2.3 proto esp spi 0x3000 dir out enc cbc(aes) {} auth-trunc hmac(sha256) {} 128",
            hex(0x33, 32),
            hex(0x44, 32)
        ),
        format!(
            "src 2001:db8::1 dst 2001:db8::2 proto esp spi 0x4000 dir out mode transport enc cbc(aes) {} \
             auth-trunc hmac(sha384) {} 192 replay-window 64 sel src 2001:db8:1::/48 dst 2001:db8:2::/48 proto ipv6-icmp type 128",
            hex(0x55, 16),
            hex(0x66, 48)
        ),
        format!(
            "src 192.0.2.9 dst 192.0.2.1 proto esp spi 0x5000 dir in enc cipher_null \"\" auth-trunc hmac(sha512) {} 256 \
             sel src 10.0.0.1-10.0.0.9 dst 10.1.0.0/16 limit packet-hard 99",
            hex(0x77, 64)
        ),
    ]
}

#[test]
fn sa_add_list_and_paste_back() {
    let db = Db::new("roundtrip");
    for line in sa_lines() {
        let words = shell_words(&line);
        let args: Vec<&str> = std::iter::once("add").chain(words.iter().map(String::as_str)).collect();
        db.ok("sa", &args);
    }
    let listed = db.ok("sa", &["list", "--show-keys"]);
    assert_eq!(listed.lines().count(), 5, "{listed}");
    // What the commands wrote is what a reader sees, keys included.
    let r = db.reader();
    let snap = r.snapshot();
    let out = snap.sas().find(|m| m.spi == 0x1000).unwrap();
    let rec = r.read_sa_id(out.id).unwrap();
    let cfg = rec.to_config().unwrap();
    assert_eq!((cfg.direction, cfg.esn, rec.reqid()), (Direction::Outbound, true, 7));
    assert_eq!(cfg.suite.name(), "aes128gcm16");
    assert_eq!(*cfg.encryption_key, vec![0x11; 20]);
    assert_eq!(cfg.encap.map(|e| (e.local_port, e.remote_port)), Some((4500, 4501)));
    assert_eq!((cfg.lifetimes.soft_bytes, cfg.lifetimes.hard_seconds), (1_000_000, 3600));
    let inb = r.read_sa_id(snap.sas().find(|m| m.spi == 0x2000).unwrap().id).unwrap().to_config().unwrap();
    assert_eq!(inb.direction, Direction::Inbound);
    assert_eq!(inb.local, "192.0.2.1".parse::<IpAddr>().unwrap());
    assert_eq!(inb.remote_ts[0].to_string(), "198.18.2.0-198.18.2.255[6/1000-2000]");
    assert_eq!(inb.local_ts[0].to_string(), "198.18.1.0-198.18.1.255[6/443-443]");
    // Paste the listing into an empty database: the same listing comes out.
    let db2 = Db::new("paste");
    for line in listed.lines() {
        let words = shell_words(line);
        let args: Vec<&str> = std::iter::once("add").chain(words.iter().map(String::as_str)).collect();
        db2.ok("sa", &args);
    }
    assert_eq!(db2.ok("sa", &["list", "--show-keys"]), listed);
}

#[test]
fn keys_are_hidden_unless_asked() {
    let db = Db::new("hidden");
    let key = hex(0xab, 36);
    db.ok(
        "sa",
        &[
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
            "proto",
            "esp",
            "spi",
            "0x10",
            "dir",
            "out",
            "aead",
            "rfc4106(gcm(aes))",
            &key,
            "128",
        ],
    );
    let list = db.ok("sa", &["list"]);
    assert!(list.contains("<hidden>") && !list.contains("abab"), "{list}");
    let stats = db.ok("sa", &["list", "--stats"]);
    assert!(stats.contains("#\tslot 0") && !stats.contains("abab"), "{stats}");
    assert!(db.ok("sa", &["list", "--show-keys"]).contains(&key[2..]));
    // Errors never echo key material either.
    let e = db.err(
        "sa",
        &[
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
            "proto",
            "esp",
            "spi",
            "0x11",
            "dir",
            "out",
            "aead",
            "rfc4106(gcm(aes))",
            "0xabababababababababababababababababababag",
            "128",
        ],
    );
    assert!(!e.contains("abab"), "{e}");
}

fn add_args<'a>(extra: &'a [&'a str]) -> Vec<&'a str> {
    let mut v = vec!["add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "spi", "0x1000", "dir", "out"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn bad_words_and_forbidden_algorithms_are_named() {
    let db = Db::new("errors");
    let gcm = hex(1, 20);
    let sha = hex(2, 32);
    let aes = hex(3, 16);
    let des3 = hex(4, 24);
    for (args, needle) in [
        (add_args(&["aead", "rfc4106(gcm(aes))", &gcm, "128", "frob"]), "unknown word 'frob'"),
        (add_args(&["aead", "rfc4106(gcm(aes))", &gcm, "64"]), "aead '64'"),
        (add_args(&["aead", "rfc4309(ccm(aes))", &gcm, "128"]), "'rfc4309(ccm(aes))' is not supported"),
        (
            add_args(&["enc", "cbc(des3_ede)", &des3, "auth-trunc", "hmac(sha256)", &sha, "128"]),
            "3DES has a 64-bit block",
        ),
        (
            add_args(&["enc", "cbc(des)", "0x0102030405060708", "auth-trunc", "hmac(sha256)", &sha, "128"]),
            "DES is broken",
        ),
        (add_args(&["enc", "cbc(aes)", &aes, "auth", "hmac(md5)", &aes]), "MD5 is broken"),
        (add_args(&["enc", "cbc(aes)", &aes]), "encryption without integrity is refused"),
        (add_args(&["enc", "cbc(aes)", &aes, "auth-trunc", "hmac(sha256)", &sha, "96"]), "auth-trunc '96'"),
        (add_args(&["enc", "cbc(aes)", &aes, "auth-trunc", "hmac(sha256)", &aes, "128"]), "RFC 4868 keys are 32 bytes"),
        (add_args(&["mode", "beet", "aead", "rfc4106(gcm(aes))", &gcm, "128"]), "'beet' is not supported"),
        (
            add_args(&["aead", "rfc4106(gcm(aes))", &gcm, "128", "encap", "espintcp", "4500", "4500", "0.0.0.0"]),
            "'espintcp'",
        ),
        (add_args(&["aead", "rfc4106(gcm(aes))", &gcm, "128", "sel", "src", "10.0.0.0/33"]), "sel src '10.0.0.0/33'"),
    ] {
        let e = db.err("sa", &args);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(e.starts_with("rampart: sa add: "), "{e}");
    }
    // The policy's reason is the crypto crate's own message.
    let e = db.err("sa", &add_args(&["enc", "cbc(des3_ede)", &des3, "auth-trunc", "hmac(sha256)", &sha, "128"]));
    let policy =
        rampart_crypto::Suite::from_ikev2(rampart_crypto::encr_id::TRIPLE_DES, None, 12).unwrap_err().to_string();
    assert!(e.contains(&policy), "{e}");
    let e = db.err("sa", &["add", "src", "192.0.2.1", "dst", "not-an-address", "spi", "1"]);
    assert!(e.contains("dst 'not-an-address'"), "{e}");
    let e = db.err("policy", &["add", "src", "10.0.0.0/8", "dst", "10.1.0.0/16", "dir", "fwd"]);
    assert!(e.contains("'dir fwd'"), "{e}");
    let e = db.err("policy", &["add", "src", "10.0.0.0/8", "dir", "out", "priority", "high"]);
    assert!(e.contains("priority 'high'"), "{e}");
    // Refused before the database is touched: it was not even created.
    assert!(!db.0.exists());
}

#[test]
fn direction_comes_from_local_addresses_when_not_given() {
    let db = Db::new("dir");
    let key = hex(9, 20);
    let add = |src: &str, dst: &str, spi: &str| -> Output {
        db.run(
            "sa",
            &["add", "src", src, "dst", dst, "proto", "esp", "spi", spi, "aead", "rfc4106(gcm(aes))", &key, "128"],
        )
    };
    // 127.0.0.1 is ours; 198.51.100.77 (TEST-NET-2) is not.
    assert!(add("127.0.0.1", "198.51.100.77", "0x100").status.success());
    assert!(add("198.51.100.77", "127.0.0.1", "0x101").status.success());
    let snap = db.reader().snapshot();
    let dir = |spi| snap.sas().find(|m| m.spi == spi).unwrap().direction;
    assert_eq!((dir(0x100), dir(0x101)), (Direction::Outbound, Direction::Inbound));
    let both = add("127.0.0.1", "127.0.0.2", "0x102");
    assert!(String::from_utf8_lossy(&both.stderr).contains("add 'dir in' or 'dir out'"));
    let neither = add("198.51.100.77", "198.51.100.78", "0x103");
    assert!(String::from_utf8_lossy(&neither.stderr).contains("neither"));
}

#[test]
fn policies_bind_to_the_newest_sa_and_switch_on_rekey() {
    let db = Db::new("policy");
    let pol = [
        "add",
        "src",
        "198.18.1.0/24",
        "dst",
        "198.18.2.0/24",
        "dir",
        "out",
        "priority",
        "10",
        "tmpl",
        "src",
        "192.0.2.1",
        "dst",
        "192.0.2.2",
        "proto",
        "esp",
        "mode",
        "tunnel",
    ];
    db.ok("policy", &pol);
    db.ok(
        "policy",
        &[
            "add",
            "src",
            "198.18.1.0/24",
            "dst",
            "0.0.0.0/0",
            "proto",
            "udp",
            "dport",
            "53",
            "dir",
            "out",
            "priority",
            "5",
        ],
    );
    db.ok(
        "policy",
        &["add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "dir", "out", "priority", "1000", "action", "block"],
    );
    let listed = db.ok("policy", &["list", "--stats"]);
    assert!(listed.contains("sa none"), "{listed}");
    let sa = |spi: &str, key: u8| {
        db.ok(
            "sa",
            &[
                "add",
                "src",
                "192.0.2.1",
                "dst",
                "192.0.2.2",
                "proto",
                "esp",
                "spi",
                spi,
                "dir",
                "out",
                "mode",
                "tunnel",
                "aead",
                "rfc4106(gcm(aes))",
                &hex(key, 20),
                "128",
            ],
        );
    };
    let flow = rampart_sadb::Flow {
        src: "198.18.1.5".parse().unwrap(),
        dst: "198.18.2.9".parse().unwrap(),
        proto: 6,
        sport: 1,
        dport: 2,
    };
    let dns = rampart_sadb::Flow { proto: 17, dport: 53, ..flow };
    let other = rampart_sadb::Flow { dst: "203.0.113.1".parse().unwrap(), ..flow };
    let lookup = |f: &rampart_sadb::Flow| {
        let r = db.reader();
        let snap = r.snapshot();
        let spd = SpdLookup::build(&snap, PolicyDir::Out);
        spd.lookup(f).map(|m| match m.action {
            SpdAction::Protect { sa: Some(slot) } => format!("protect {:#x}", snap.sa(slot).unwrap().spi),
            a => format!("{a:?}"),
        })
    };
    assert_eq!(lookup(&flow).as_deref(), Some("Protect { sa: None }"));
    assert_eq!(lookup(&dns).as_deref(), Some("Bypass"));
    assert_eq!(lookup(&other).as_deref(), Some("Discard"));
    sa("0x1000", 1);
    assert_eq!(lookup(&flow).as_deref(), Some("protect 0x1000"));
    // Rekey: a newer outbound SA takes over the policy; the old one stays until deleted.
    sa("0x1001", 2);
    assert_eq!(lookup(&flow).as_deref(), Some("protect 0x1001"));
    assert!(db.ok("policy", &["list", "--stats"]).contains("sa spi 0x00001001"));
    db.ok("sa", &["delete", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "spi", "0x1000"]);
    assert_eq!(lookup(&flow).as_deref(), Some("protect 0x1001"));
    // A policy added after its SA binds at once.
    db.ok("policy", &["flush"]);
    db.ok("policy", &pol);
    assert_eq!(lookup(&flow).as_deref(), Some("protect 0x1001"));
    // Listing pastes back, and deletes work by selector or by index.
    let listed = db.ok("policy", &["list"]);
    let db2 = Db::new("policy-paste");
    for line in listed.lines() {
        let words = shell_words(line);
        let args: Vec<&str> = std::iter::once("add").chain(words.iter().map(String::as_str)).collect();
        db2.ok("policy", &args);
    }
    assert_eq!(db2.ok("policy", &["list"]), listed);
    let e = db.err("policy", &["delete", "src", "10.9.9.0/24", "dir", "out"]);
    assert!(e.contains("no out policy with that selector"), "{e}");
    db.ok("policy", &["delete", "src", "198.18.1.0/24", "dst", "198.18.2.0/24", "dir", "out"]);
    assert_eq!(db.ok("policy", &["list"]), "");
    db.ok("policy", &pol);
    let stats = db.ok("policy", &["list", "--stats"]);
    let index = stats.split("index ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    db.ok("policy", &["delete", "index", &index]);
    assert_eq!(db.ok("policy", &["list"]), "");
    // Deleting an SA that is not there, or with the wrong source, is refused.
    let e = db.err("sa", &["delete", "dst", "192.0.2.2", "spi", "0x1000"]);
    assert!(e.contains("no SA with spi 0x00001000"), "{e}");
    let e = db.err("sa", &["delete", "src", "192.0.2.7", "dst", "192.0.2.2", "spi", "0x1001"]);
    assert!(e.contains("has src 192.0.2.1, not 192.0.2.7"), "{e}");
    db.ok("sa", &["flush"]);
    assert_eq!(db.ok("sa", &["list"]), "");
}

#[test]
fn the_database_file_is_created_on_demand_and_reading_needs_one() {
    let db = Db::new("create");
    let e = db.err("sa", &["list"]);
    assert!(e.contains("no SA database here"), "{e}");
    assert!(!db.0.exists());
    db.ok("policy", &["add", "src", "10.0.0.0/8", "dir", "in"]);
    assert!(db.0.exists());
    assert_eq!(db.reader().capacities().sas, 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&db.0).unwrap().permissions().mode() & 0o777, 0o600, "keys live in this file");
}
