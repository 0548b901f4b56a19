//! Certificate authentication between `rampart ike` and strongSwan 5.9 in network namespaces,
//! as root: a CA, an intermediate and leaves made with strongSwan's `pki`, for ECDSA P-256 and
//! P-384, RSA-3072 (RSASSA-PSS both ways) and Ed25519, each with Rampart as responder and as
//! initiator, the CHILD_SA keys in Rampart's database checked against charon's key log; then a
//! revoked leaf, an expired leaf, a leaf of a CA Rampart does not trust and a wrong identity
//! refused with their cause in Rampart's log; and an RSA-4096 chain over a 1280-byte link that
//! loses IP fragments, which only IKE fragmentation (RFC 7383) gets through, both roles.

mod ike_support;

use std::path::{Path, PathBuf};

use ike_support::*;

fn rampart_conf(topo: &Topo, side: Side, creds: &Path, child_extra: &str) -> String {
    rampart_conf_with(topo, side, creds, "", child_extra)
}

fn rampart_conf_with(topo: &Topo, side: Side, creds: &Path, conn_extra: &str, child_extra: &str) -> String {
    Rampart::daemon_section(topo, side, &format!("swanctl_dir = \"{}\"", creds.display()))
        + &Rampart::gw_connection(side, conn_extra, child_extra)
            .replace(
                &format!("local = {{ auth = \"psk\", id = \"{}\" }}", side.id()),
                &format!("local = {{ auth = \"pubkey\", certs = \"me.pem\", id = \"{}\" }}", side.id()),
            )
            .replace("remote = { auth = \"psk\"", "remote = { auth = \"pubkey\"")
}

fn swan_certs(pki_dir: &Path, crt: &Path, key: &Path, kind: &str) -> Option<(String, Vec<(PathBuf, &'static str)>)> {
    let key_folder = match kind {
        "rsa" | "rsa4096" => "rsa",
        "ecdsa" | "ecdsa256" | "ecdsa384" => "ecdsa",
        _ => "pkcs8",
    };
    Some((
        crt.file_name().unwrap().to_str().unwrap().to_string(),
        vec![
            (crt.to_path_buf(), "x509"),
            (key.to_path_buf(), key_folder),
            (pki_dir.join("root.pem"), "x509ca"),
            (pki_dir.join("inter.pem"), "x509ca"),
        ],
    ))
}

/// For each key type: strongSwan initiates to Rampart, then Rampart initiates to strongSwan;
/// both sides authenticate with certificates of that type through the intermediate.
#[test]
fn certificates_of_every_key_type_both_roles() {
    if !can_run("certificates_of_every_key_type_both_roles", true) {
        return;
    }
    for kind in ["ecdsa256", "ecdsa384", "rsa", "ed25519"] {
        for rampart_initiates in [false, true] {
            let topo = Topo::new("ct");
            let p = topo.dir.join("pki");
            ca(&p);
            let (r_side, s_side) = if rampart_initiates { (Side::A, Side::B) } else { (Side::B, Side::A) };
            let (rc, rk) = leaf(&p, "rampart", kind, r_side.id(), "inter", &[]);
            let (sc, sk) = leaf(&p, "swan", kind, s_side.id(), "inter", &[]);
            let creds = rampart_creds(&topo.dir, &p, &rc, &rk);
            let opts = SwanOpts {
                certs: swan_certs(&p, &sc, &sk, kind),
                charon_extra: "rsa_pss = yes".into(),
                ..Default::default()
            };
            let what = format!("{kind}, rampart {}", if rampart_initiates { "initiates" } else { "responds" });
            let (r, c) = if rampart_initiates {
                let c = Charon::start(&topo, s_side, &opts);
                let r = Rampart::start(&topo, r_side, &rampart_conf(&topo, r_side, &creds, "start_action = \"start\""));
                (r, c)
            } else {
                let r = Rampart::start(&topo, r_side, &rampart_conf(&topo, r_side, &creds, ""));
                let c = Charon::start(&topo, s_side, &opts);
                let out = c.initiate();
                assert!(out.contains("initiate completed successfully"), "{what}: {out}\n{}", r.log());
                (r, c)
            };
            assert!(wait_until(secs(15), || r.up() == 1), "{what}: {}\n{}", r.log(), c.log());
            assert_eq!(check_keys(&r, &c, Some(rampart_initiates)), 1, "{what}");
            if kind == "rsa" {
                assert!(c.log().contains("RSA_EMSA_PSS"), "{what}: strongSwan checked an RSASSA-PSS signature");
            }
            let sa = &r.list()[0];
            assert_eq!(sa["remote_id"], s_side.id(), "{what}");
        }
    }
}

/// strongSwan presents a revoked leaf, a leaf of a CA Rampart does not trust, and a leaf for
/// another identity: Rampart answers AUTHENTICATION_FAILED and logs why (the serial for the
/// revoked one).
#[test]
fn revoked_expired_untrusted_and_wrong_identity_are_refused() {
    if !can_run("revoked_expired_untrusted_and_wrong_identity_are_refused", true) {
        return;
    }
    let topo = Topo::new("cr");
    let p = topo.dir.join("pki");
    ca(&p);
    let (rc, rk) = leaf(&p, "rampart", "ecdsa", Side::B.id(), "inter", &[]);
    let (revoked, revoked_key) = leaf(&p, "revoked", "ecdsa", Side::A.id(), "inter", &["--serial", "0badc0de"]);
    let crl = p.join("inter.crl");
    pki(
        &[
            "--signcrl",
            "--cacert",
            p.join("inter.pem").to_str().unwrap(),
            "--cakey",
            p.join("inter.key").to_str().unwrap(),
            "--lifetime",
            "30",
            "--reason",
            "key-compromise",
            "--cert",
            revoked.to_str().unwrap(),
            "--outform",
            "pem",
        ],
        &crl,
    );
    let creds = rampart_creds(&topo.dir, &p, &rc, &rk);
    let r = Rampart::start(&topo, Side::B, &rampart_conf(&topo, Side::B, &creds, ""));
    let c = Charon::start(
        &topo,
        Side::A,
        &SwanOpts { certs: swan_certs(&p, &revoked, &revoked_key, "ecdsa"), ..Default::default() },
    );
    let out = c.initiate();
    assert!(!out.contains("initiate completed successfully"), "{out}");
    assert!(wait_until(secs(5), || r.log().contains("0b:ad:c0:de")), "{}", r.log());
    assert!(r.log().contains("revoked"), "{}", r.log());
    assert!(c.log().contains("AUTHENTICATION_FAILED"), "{}", c.log());
    drop(c);
    // A CA of its own.
    let other = topo.dir.join("other");
    ca(&other);
    let (sc, sk) = leaf(&other, "stranger", "ecdsa", Side::A.id(), "inter", &[]);
    let mut c = Charon::start_in(
        &topo.ns(Side::A),
        &topo.dir.join("s2"),
        Side::A,
        &SwanOpts {
            certs: Some((
                "stranger.pem".into(),
                vec![
                    (sc, "x509"),
                    (sk, "ecdsa"),
                    (other.join("root.pem"), "x509ca"),
                    (other.join("inter.pem"), "x509ca"),
                    (p.join("root.pem"), "x509ca"),
                ],
            )),
            ..Default::default()
        },
    );
    let out = c.initiate();
    assert!(!out.contains("initiate completed successfully"), "{out}");
    assert!(wait_until(secs(5), || r.log().contains("no trusted CA")), "{}", r.log());
    c.kill9();
    drop(c);
    // The right CA, the wrong name.
    let (wc, wk) = leaf(&p, "wrong", "ecdsa", "gw-x.sw.test", "inter", &[]);
    let c = Charon::start_in(
        &topo.ns(Side::A),
        &topo.dir.join("s3"),
        Side::A,
        &SwanOpts { certs: swan_certs(&p, &wc, &wk, "ecdsa"), ..Default::default() },
    );
    let out = c.initiate();
    assert!(!out.contains("initiate completed successfully"), "{out}");
    assert!(r.up() == 0);
    drop(c);
    // The right CA and name, valid from ten days ago until yesterday.
    let day = |offset: &str| {
        let o = std::process::Command::new("date").args(["-u", "-d", offset, "+%d.%m.%y %T"]).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let (from, until) = (day("-10 days"), day("-1 day"));
    let (ec, ek) = leaf(&p, "expired", "ecdsa", Side::A.id(), "inter", &["--not-before", &from, "--not-after", &until]);
    let c = Charon::start_in(
        &topo.ns(Side::A),
        &topo.dir.join("s4"),
        Side::A,
        &SwanOpts { certs: swan_certs(&p, &ec, &ek, "ecdsa"), ..Default::default() },
    );
    let out = c.initiate();
    assert!(!out.contains("initiate completed successfully"), "{out}");
    assert!(wait_until(secs(5), || r.log().contains("expired")), "{}", r.log());
    assert!(c.log().contains("AUTHENTICATION_FAILED"), "{}", c.log());
    assert!(r.up() == 0);
    let _ = c;
}

/// Both namespaces' link at MTU 1280, and no IP reassembly in either (a path that loses IP
/// fragments, as many do): an IKE datagram over 1280 bytes never arrives.
fn lose_ip_fragments_over_mtu_1280(topo: &Topo) {
    for side in [Side::A, Side::B] {
        let ns = topo.ns(side);
        run(&["ip", "-n", &ns, "link", "set", "wan", "mtu", "1280"]);
        let o =
            topo.exec(side, &["sysctl", "-q", "-w", "net.ipv4.ipfrag_low_thresh=0", "net.ipv4.ipfrag_high_thresh=0"]);
        assert!(o.status.success(), "sysctl: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A counter of Rampart's `rampart_ike_fragmentation_total{what}`.
fn fragmentation(r: &Rampart, what: &str) -> u64 {
    let stats = r.ctl(rampart_ike_daemon::control::Request::Stats);
    stats["metrics"][format!("rampart_ike_fragmentation_total{{what=\"{what}\"}}")].as_u64().unwrap_or(0)
}

/// Root, intermediate and both leaves RSA-4096: IKE_AUTH carries a 4096-bit certificate or two
/// and a 512-byte signature each way, 2 to 3.5 KB. Over a 1280-byte link that loses IP fragments it
/// completes only in IKE fragments, with Rampart as responder and as initiator, and the keys
/// agree; with strongSwan's `fragmentation = no`, or Rampart's `fragmentation = accept` as
/// initiator, it does not complete.
#[test]
fn an_rsa4096_chain_over_a_1280_byte_link_comes_up_in_ike_fragments() {
    if !can_run("an_rsa4096_chain_over_a_1280_byte_link_comes_up_in_ike_fragments", true) {
        return;
    }
    let base = std::env::temp_dir().join(format!("rampart-ike-frag-pki-{}", std::process::id()));
    let p = base.join("pki");
    ca_of(&p, ["rsa", "4096"], ["rsa", "4096"]);
    let leaves = [(Side::A, "leaf-a"), (Side::B, "leaf-b")]
        .map(|(side, name)| leaf(&p, name, "rsa4096", side.id(), "inter", &[]));
    let leaf_of = |side: Side| &leaves[if side == Side::A { 0 } else { 1 }];
    let swan_opts = |side: Side, conn_extra: &str| {
        let (c, k) = leaf_of(side);
        SwanOpts {
            certs: swan_certs(&p, c, k, "rsa4096"),
            charon_extra: "rsa_pss = yes".into(),
            conn_extra: conn_extra.into(),
            ..Default::default()
        }
    };
    for rampart_initiates in [false, true] {
        let topo = Topo::new("cf");
        lose_ip_fragments_over_mtu_1280(&topo);
        let (r_side, s_side) = if rampart_initiates { (Side::A, Side::B) } else { (Side::B, Side::A) };
        let (rc, rk) = leaf_of(r_side);
        let creds = rampart_creds(&topo.dir, &p, rc, rk);
        let what = format!("rampart {}", if rampart_initiates { "initiates" } else { "responds" });
        let (r, c) = if rampart_initiates {
            let c = Charon::start(&topo, s_side, &swan_opts(s_side, ""));
            let r = Rampart::start(&topo, r_side, &rampart_conf(&topo, r_side, &creds, "start_action = \"start\""));
            (r, c)
        } else {
            let r = Rampart::start(&topo, r_side, &rampart_conf(&topo, r_side, &creds, ""));
            let c = Charon::start(&topo, s_side, &swan_opts(s_side, ""));
            let out = c.initiate();
            assert!(out.contains("initiate completed successfully"), "{what}: {out}\n{}", r.log());
            (r, c)
        };
        assert!(wait_until(secs(20), || r.up() == 1), "{what}: {}\n{}", r.log(), c.log());
        assert_eq!(check_keys(&r, &c, Some(rampart_initiates)), 1, "{what}");
        // strongSwan put Rampart's IKE_AUTH message together from fragments, and Rampart
        // strongSwan's.
        assert!(c.log().contains("reassembled fragmented IKE message"), "{what}: {}", c.log());
        assert!(wait_until(secs(5), || fragmentation(&r, "messages_reassembled") >= 1), "{what}: {}", r.log());
        let (messages, fragments) = (fragmentation(&r, "messages_sent"), fragmentation(&r, "fragments_sent"));
        assert!(messages >= 1 && fragments > messages, "{what}: {messages} messages in {fragments} fragments");
    }
    // strongSwan without fragmentation: its IKE_AUTH request goes whole, as IP fragments the
    // path loses, and never reaches Rampart.
    let topo = Topo::new("cn");
    lose_ip_fragments_over_mtu_1280(&topo);
    let (rc, rk) = leaf_of(Side::B);
    let creds = rampart_creds(&topo.dir, &p, rc, rk);
    let r = Rampart::start(&topo, Side::B, &rampart_conf(&topo, Side::B, &creds, ""));
    let mut o = swan_opts(Side::A, "fragmentation = no\n    keyingtries = 1");
    o.charon_extra += "\n  retransmit_tries = 2\n  retransmit_timeout = 1\n  retransmit_base = 1";
    let c = Charon::start(&topo, Side::A, &o);
    let out = c.initiate();
    assert!(!out.contains("initiate completed successfully"), "{out}");
    assert_eq!(r.up(), 0, "{}", r.log());
    assert_eq!(fragmentation(&r, "messages_reassembled"), 0);
    drop((r, c, topo));
    // Rampart with `fragmentation = accept` initiating: it takes fragments but sends its own
    // IKE_AUTH whole, which the path loses; it says so in its log.
    let topo = Topo::new("ca");
    lose_ip_fragments_over_mtu_1280(&topo);
    let (rc, rk) = leaf_of(Side::A);
    let creds = rampart_creds(&topo.dir, &p, rc, rk);
    let c = Charon::start(&topo, Side::B, &swan_opts(Side::B, ""));
    let conf = rampart_conf_with(&topo, Side::A, &creds, "fragmentation = \"accept\"", "start_action = \"start\"");
    let r = Rampart::start(&topo, Side::A, &conf);
    assert!(wait_until(secs(5), || r.log().contains("sent whole")), "{}", r.log());
    std::thread::sleep(secs(3));
    assert_eq!(r.up(), 0, "{}", r.log());
    assert_eq!(fragmentation(&r, "messages_sent"), 0);
    drop((r, c, topo));
    let _ = std::fs::remove_dir_all(&base);
}
