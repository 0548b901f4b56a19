//! `rampart ike` against strongSwan 5.9 (charon with kernel-libipsec) in network namespaces,
//! as root: both directions of initiation, PSK, two IKE proposals and two ESP suites, the SAs
//! Rampart wrote into its SA database checked against the keys charon logged, deletes from
//! either side, DPD clearing the SA of a killed peer, CHILD_SA and IKE_SA rekeys with short
//! lifetimes, the daemon killed with SIGKILL and restarted while its SAs stay in the database,
//! and malformed datagrams on the daemon's sockets.

mod ike_support;

use ike_support::*;
use rampart_esp::Direction;

/// strongSwan initiates, Rampart responds; for each suite the keys in Rampart's database are the
/// ones charon logged; then charon deletes the IKE SA and Rampart's database empties.
#[test]
fn strongswan_initiates_rampart_responds_two_suites() {
    if !can_run("strongswan_initiates_rampart_responds_two_suites", true) {
        return;
    }
    for (ike, esp, ours) in [
        ("aes256-sha256-ecp256", "aes256gcm16", "aes256-sha256-ecp256, aes256-sha256-x25519"),
        ("aes256gcm16-prfsha384-x25519", "chacha20poly1305", "aes256gcm16-prfsha384-x25519"),
    ] {
        let topo = Topo::new("si");
        let conn = Rampart::gw_connection(Side::B, "", "")
            .replace("proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"", &format!("proposals = \"{ours}\""))
            .replace("esp_proposals = \"aes256gcm16\"", "esp_proposals = \"aes256gcm16, chacha20poly1305\"");
        let r = Rampart::start(&topo, Side::B, &(Rampart::daemon_section(&topo, Side::B, "") + &conn));
        let c = Charon::start(
            &topo,
            Side::A,
            &SwanOpts { ike_proposals: ike.into(), esp_proposals: esp.into(), ..Default::default() },
        );
        let out = c.initiate();
        assert!(out.contains("initiate completed successfully"), "{ike}/{esp}: {out}\n{}", r.log());
        assert!(wait_until(secs(5), || r.db_sas().len() == 2), "{:?}", r.db_sas());
        assert_eq!(check_keys(&r, &c, Some(false)), 1, "{ike}/{esp}");
        let sa = &r.list()[0];
        assert_eq!(sa["state"], "established");
        assert_eq!(sa["initiator"], false);
        assert_eq!(sa["nat_remote"], true, "kernel-libipsec fakes NAT detection");
        assert_eq!(r.db_policies().len(), 1);
        assert!(r.db_policies()[0].1.is_some(), "the policy sends through the outbound SA");
        // The peer deletes: SAs and policy go.
        let out = c.swanctl(&["--terminate", "--ike", "gw", "--timeout", "10"]);
        assert!(out.contains("terminate completed successfully"), "{out}");
        assert!(wait_until(secs(5), || r.db_sas().is_empty() && r.db_policies().is_empty()), "{:?}", r.db_sas());
        assert!(r.list().is_empty());
        assert_eq!(r.stat("ike_sas_established"), 1);
    }
}

/// The Diffie-Hellman groups strongSwan users configure beyond the common ones: MODP-3072 and
/// ECP-521 for the IKE SA, with strongSwan initiating and the keys in Rampart's database the
/// ones charon logged; then Rampart initiates a CHILD_SA rekey with PFS in the same group.
#[test]
fn modp3072_and_ecp521_interoperate() {
    if !can_run("modp3072_and_ecp521_interoperate", true) {
        return;
    }
    for group in ["modp3072", "ecp521"] {
        let topo = Topo::new("gr");
        let conn = Rampart::gw_connection(Side::B, "", "")
            .replace(
                "proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"",
                &format!("proposals = \"aes256-sha256-{group}\""),
            )
            .replace("esp_proposals = \"aes256gcm16\"", &format!("esp_proposals = \"aes256gcm16-{group}\""));
        let r = Rampart::start(&topo, Side::B, &(Rampart::daemon_section(&topo, Side::B, "") + &conn));
        let c = Charon::start(
            &topo,
            Side::A,
            &SwanOpts {
                ike_proposals: format!("aes256-sha256-{group}"),
                esp_proposals: format!("aes256gcm16-{group}"),
                ..Default::default()
            },
        );
        let out = c.initiate();
        assert!(out.contains("initiate completed successfully"), "{group}: {out}\n{}", r.log());
        assert!(wait_until(secs(5), || r.db_sas().len() == 2), "{:?}", r.db_sas());
        assert_eq!(check_keys(&r, &c, Some(false)), 1, "{group}");
        let sa = &r.list()[0];
        assert_eq!(sa["dh_group"], group, "{sa}");
        // A CHILD_SA rekey by charon, with PFS in the group.
        let out = c.swanctl(&["--rekey", "--child", "net"]);
        assert!(out.contains("rekey completed successfully"), "{group}: {out}");
        assert!(wait_until(secs(10), || r.stat("child_sa_rekeys") == 1), "{group}: {}", r.log());
        assert!(
            wait_until(secs(8), || matches!(keys_agree(&r, &c, None), Ok(1))),
            "{group}: {:?}",
            keys_agree(&r, &c, None)
        );
        let list = r.list();
        let children = list[0]["children"].as_array().cloned().unwrap_or_default();
        assert!(children.iter().any(|c| c["state"] == "installed" && c["pfs"] == group), "{children:?}");
    }
}

/// Rampart initiates (start_action = start) with short lifetimes: CHILD_SA and IKE_SA rekeys
/// against strongSwan, keys still matching, one policy switched make-before-break; then
/// `rampart ctl terminate` deletes everything on both sides.
#[test]
fn rampart_initiates_rekeys_and_terminates() {
    if !can_run("rampart_initiates_rekeys_and_terminates", true) {
        return;
    }
    let topo = Topo::new("ri");
    let c = Charon::start(&topo, Side::B, &SwanOpts::default());
    let conn = Rampart::gw_connection(
        Side::A,
        "rekey_time = \"9s\"\nover_time = \"5s\"",
        "start_action = \"start\"\nrekey_time = \"4s\"\nlife_time = \"8s\"\nrand_time = \"1s\"",
    );
    let r = Rampart::start(&topo, Side::A, &(Rampart::daemon_section(&topo, Side::A, "") + &conn));
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    assert_eq!(check_keys(&r, &c, Some(true)), 1);
    let policy = r.db_policies();
    assert_eq!(policy.len(), 1);
    // Two CHILD_SA rekeys (every 3-4 s) and one IKE_SA rekey (at 8-9 s).
    assert!(
        wait_until(secs(20), || r.stat("child_sa_rekeys") >= 2 && r.stat("ike_sa_rekeys") >= 1),
        "child rekeys {} ike rekeys {}\n{}",
        r.stat("child_sa_rekeys"),
        r.stat("ike_sa_rekeys"),
        r.log()
    );
    // Between rekeys: one CHILD_SA on each side, the same one, with logged keys.
    assert!(
        wait_until(secs(8), || r.db_sas().len() == 2
            && matches!(keys_agree(&r, &c, None), Ok(1))
            && c.ike_sa_count() == 1),
        "database {:?}\nkeys {:?}\ncharon IKE SAs {}: {}",
        r.db_sas().iter().map(|s| (s.spi, s.direction)).collect::<Vec<_>>(),
        keys_agree(&r, &c, None),
        c.ike_sa_count(),
        c.swanctl(&["--list-sas", "--raw"])
    );
    let after = r.db_policies();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, policy[0].0, "the same policy record, switched to the new SA");
    assert_ne!(after[0].1, None);
    assert_eq!(r.stat("ike_sas_down"), r.stat("ike_sa_rekeys"), "only rekeyed IKE SAs went down");
    assert_eq!(r.stat("child_sas_installed"), 1, "every later CHILD_SA was a rekey");
    // Delete from Rampart's side.
    let (ok, out) = r.ctl_cli(&["terminate", "gw"]);
    assert!(ok, "{out}");
    assert!(wait_until(secs(5), || c.ike_sa_count() == 0 && r.db_sas().is_empty() && r.db_policies().is_empty()));
}

/// strongSwan is killed: Rampart's liveness checks go unanswered and dpd_timeout clears the SAs
/// from the database.
#[test]
fn dpd_clears_the_sas_of_a_killed_peer() {
    if !can_run("dpd_clears_the_sas_of_a_killed_peer", true) {
        return;
    }
    let topo = Topo::new("dp");
    let mut c = Charon::start(&topo, Side::B, &SwanOpts::default());
    let conn = Rampart::gw_connection(Side::A, "dpd_delay = \"2s\"\ndpd_timeout = \"5s\"", "start_action = \"start\"");
    let r = Rampart::start(&topo, Side::A, &(Rampart::daemon_section(&topo, Side::A, "") + &conn));
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    // Alive peer: liveness checks answered, nothing goes down.
    std::thread::sleep(secs(5));
    assert_eq!(r.up(), 1);
    assert_eq!(r.stat("ike_sas_peer_dead"), 0);
    c.kill9();
    assert!(wait_until(secs(15), || r.db_sas().is_empty()), "{}", r.log());
    assert_eq!(r.stat("ike_sas_peer_dead"), 1);
    assert!(r.list().is_empty());
    assert!(r.db_policies().is_empty(), "dpd_action = clear removes the policies too");
}

/// The daemon is killed with SIGKILL: its SAs stay in the database untouched; restarted, it
/// takes the tunnel over (new IKE SA with INITIAL_CONTACT, the old SAs replaced on both sides).
#[test]
fn sigkill_keeps_the_sas_and_a_restart_takes_over() {
    if !can_run("sigkill_keeps_the_sas_and_a_restart_takes_over", true) {
        return;
    }
    let topo = Topo::new("kr");
    let c = Charon::start(&topo, Side::B, &SwanOpts::default());
    let conn = Rampart::gw_connection(Side::A, "", "start_action = \"start\"");
    let mut r = Rampart::start(&topo, Side::A, &(Rampart::daemon_section(&topo, Side::A, "") + &conn));
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    let before = r.db_sas();
    let policies = r.db_policies();
    assert_eq!(before.len(), 2);
    r.kill9();
    std::thread::sleep(secs(2));
    assert_eq!(r.db_sas(), before, "SAs stay, unchanged, while no daemon runs");
    assert_eq!(r.db_policies(), policies);
    assert_eq!(c.child_spis().len(), 1, "the peer still has its CHILD_SA");
    r.restart();
    // A new tunnel: the peer keeps one IKE SA (INITIAL_CONTACT), Rampart replaces its SAs.
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    assert!(
        wait_until(secs(10), || {
            let now = r.db_sas();
            now.len() == 2 && now.iter().all(|s| !before.contains(s))
        }),
        "stale SAs not replaced: {:?}",
        r.db_sas()
    );
    assert!(wait_until(secs(10), || c.ike_sa_count() == 1), "the peer kept its old IKE SA:\n{}", c.log());
    assert_eq!(check_keys(&r, &c, Some(true)), 1);
    let after = r.db_policies();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, policies[0].0, "the policy record was taken over, not replaced");
    assert_eq!(r.stat("database_stale_removed"), 2);
}

/// Garbage on both sockets (random bytes, truncated and corrupted IKE headers, lying lengths,
/// marker-only and ESP-looking datagrams on 4500, mutated copies of real messages): the daemon
/// stays up, counts what it dropped, and still brings a tunnel up with strongSwan afterwards.
#[test]
fn malformed_datagrams_never_crash_the_daemon() {
    if !can_run("malformed_datagrams_never_crash_the_daemon", true) {
        return;
    }
    let topo = Topo::new("mf");
    // Limits up: the well-formed requests among the garbage make half-open SAs from the
    // address strongSwan connects from afterwards.
    let daemon = Rampart::daemon_section(
        &topo,
        Side::B,
        "cookie_threshold = 100000\ncookie_threshold_ip = 100000\nblock_threshold = 100000",
    );
    let mut r = Rampart::start(&topo, Side::B, &(daemon + &Rampart::gw_connection(Side::B, "", "")));
    let script = r#"
import random, socket, struct, sys
rnd = random.Random(7)
dst = sys.argv[1]
s500 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s500.bind(("192.0.2.1", 500))
s4500 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s4500.bind(("192.0.2.1", 4500))
def hdr(spi_i, spi_r, np, ex, flags, mid, length):
    return struct.pack("!QQBBBBII", spi_i, spi_r, np, 0x20, ex, flags, mid, length)
# A well-formed IKE_SA_INIT request (AES-CBC-256, PRF/INTEG SHA-256, Curve25519).
def sa():
    t = struct.pack("!BBHBBH", 3, 0, 12, 1, 0, 12) + struct.pack("!HH", 0x800e, 256)
    t += struct.pack("!BBHBBH", 3, 0, 8, 2, 0, 5) + struct.pack("!BBHBBH", 3, 0, 8, 3, 0, 12)
    t += struct.pack("!BBHBBH", 0, 0, 8, 4, 0, 31)
    prop = struct.pack("!BBHBBBB", 0, 0, 8 + len(t), 1, 1, 0, 4) + t
    return struct.pack("!BBH", 34, 0, 4 + len(prop)) + prop
def init():
    ke = struct.pack("!BBHHH", 40, 0, 8 + 32, 31, 0) + bytes(rnd.getrandbits(8) for _ in range(32))
    ni = struct.pack("!BBH", 0, 0, 4 + 32) + bytes(rnd.getrandbits(8) for _ in range(32))
    body = sa() + ke + ni
    return hdr(rnd.getrandbits(64), 0, 33, 34, 0x08, 0, 28 + len(body)) + body
sent = 0
for i in range(3000):
    kind = i % 8
    if kind == 0: d = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 1500)))
    elif kind == 1: d = hdr(rnd.getrandbits(64), 0, 33, 34, 8, 0, 28)[: rnd.randrange(0, 28)]
    elif kind == 2: d = hdr(rnd.getrandbits(64), rnd.getrandbits(64), rnd.randrange(256), rnd.randrange(256), rnd.randrange(256), rnd.getrandbits(32), rnd.getrandbits(32)) + bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200)))
    elif kind == 3: d = bytearray(init()); d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8); d = bytes(d)
    elif kind == 4: d = init()[: rnd.randrange(28, 120)]
    elif kind == 5: d = hdr(rnd.getrandbits(64), 0, 46, 35, 8, 1, 60) + struct.pack("!BBH", 0, 0, 32) + bytes(28)
    elif kind == 6: d = init()
    else: d = b""
    if i % 3 == 0:
        s4500.sendto(rnd.choice([b"\x00\x00\x00\x00" + d, b"\xff", b"\x00\x00\x00\x00", b"\x00\x00", d, b"\x00\x00\x00\x01" + d]), (dst, 4500))
    else:
        s500.sendto(d, (dst, 500))
    sent += 1
print(sent)
"#;
    let out = topo.exec(Side::A, &["python3", "-c", script, WAN_B]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(secs(1));
    assert!(r.alive(), "the daemon died:\n{}", r.log());
    let received = r.stat("ike_datagrams_received");
    let dropped = r.stat("ike_runt_datagrams") + r.stat("esp_on_ike_socket") + r.stat("nat_keepalives_received");
    assert!(received + dropped > 2000, "received {received}, dropped {dropped}");
    // The well-formed requests were answered (the DH pool did their work).
    assert!(r.stat("dh_jobs_done") >= 300, "{}", r.stat("dh_jobs_done"));
    // Still a working responder (the garbage left half-open SAs that expire on their own).
    let c = Charon::start(&topo, Side::A, &SwanOpts::default());
    let out = c.initiate();
    assert!(out.contains("initiate completed successfully"), "{out}\n{}", r.log());
    assert!(wait_until(secs(5), || r.db_sas().len() == 2));
    assert_eq!(check_keys(&r, &c, Some(false)), 1);
    assert!(r.alive());
    assert_eq!(r.db_sas().iter().filter(|s| s.direction == Direction::Inbound).count(), 1);
}
