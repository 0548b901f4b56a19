//! `rampart ike` against itself in network namespaces, as root: the two databases hold the two
//! ends of each ESP SA; rekeys, deletes from the responder; reload (unchanged connections keep
//! their SAs, removed ones go, added ones come up); trap policies and acquire events; byte
//! limits and ESP activity read from the usage area the data plane writes (simulated here
//! through `rampart_sadb::Reader`, the data plane's own interface).

mod ike_support;

use std::time::Duration;

use ike_support::DbSa;
use ike_support::*;
use rampart_esp::Direction;
use rampart_sadb::{Event, Flow, PolicyAction};

fn db_now() -> u64 {
    rampart_sadb::clock::now()
}

/// Each outbound SA of either side is an inbound SA of the other: same SPI, same key. (Old
/// inbound SAs stay a moment after a rekey or delete; they have no outbound partner.)
fn ends_match(a: &Rampart, b: &Rampart) -> bool {
    let (sa, sb) = (a.db_sas(), b.db_sas());
    let covered = |from: &[DbSa], to: &[DbSa]| {
        from.iter().filter(|x| x.direction == Direction::Outbound).all(|x| {
            to.iter()
                .any(|y| y.spi == x.spi && y.key == x.key && y.direction == Direction::Inbound && y.local == x.remote)
        })
    };
    !sa.is_empty() && covered(&sa, &sb) && covered(&sb, &sa)
}

/// Outbound SAs in a side's database.
fn outbound(r: &Rampart) -> usize {
    r.db_sas().iter().filter(|s| s.direction == Direction::Outbound).count()
}

fn pair(topo: &Topo, a_conn: &str, b_conn: &str) -> (Rampart, Rampart) {
    let b = Rampart::start(topo, Side::B, &(Rampart::daemon_section(topo, Side::B, "") + b_conn));
    let a = Rampart::start(topo, Side::A, &(Rampart::daemon_section(topo, Side::A, "") + a_conn));
    (a, b)
}

#[test]
fn two_daemons_rekey_delete_and_reload() {
    if !can_run("two_daemons_rekey_delete_and_reload", false) {
        return;
    }
    let topo = Topo::new("rr");
    let a_conn = Rampart::gw_connection(
        Side::A,
        "rekey_time = \"7s\"\nover_time = \"3s\"",
        "start_action = \"start\"\nrekey_time = \"3s\"\nlife_time = \"6s\"\nrand_time = \"1s\"",
    );
    let (mut a, b) = pair(&topo, &a_conn, &Rampart::gw_connection(Side::B, "", ""));
    assert!(wait_until(secs(10), || a.up() == 1 && b.up() == 1), "{}", a.log());
    assert!(wait_until(secs(3), || ends_match(&a, &b)));
    let sa = &a.list()[0];
    assert_eq!(sa["nat_local"], false, "no NAT between two Rampart gateways");
    assert!(a.db_sas().iter().all(|s| !s.encap));
    // Rekeys on A's schedule; the ends keep matching after each.
    assert!(wait_until(secs(15), || a.stat("child_sa_rekeys") >= 2 && a.stat("ike_sa_rekeys") >= 1), "{}", a.log());
    assert!(wait_until(secs(5), || outbound(&a) == 1 && outbound(&b) == 1 && ends_match(&a, &b)));
    assert_eq!(b.stat("child_sa_rekeys"), a.stat("child_sa_rekeys"), "B installed each rekey as responder");
    assert_eq!(b.db_policies().len(), 1);

    // Reload A with long lifetimes and a second connection: gw changed (its SAs are replaced),
    // gw2 added and started.
    let gw2 = Rampart::gw_connection(Side::A, "", "start_action = \"start\"")
        .replace("[connections.gw]", "[connections.gw2]")
        .replace("[connections.gw.children.net]", "[connections.gw2.children.net2]")
        .replace("remote_ts = \"198.18.2.0/24\"", "remote_ts = \"198.18.2.0/25\"")
        .replace("[secrets.ike-gw]", "[secrets.ike-gw2]");
    let calm = Rampart::gw_connection(Side::A, "", "start_action = \"start\"");
    let cfg = Rampart::daemon_section(&topo, Side::A, "") + &calm + &gw2;
    std::fs::write(&a.config, &cfg).unwrap();
    let (ok, out) = a.ctl_cli(&["reload"]);
    assert!(ok, "{out}");
    assert!(out.contains("added      gw2") && out.contains("changed    gw"), "{out}");
    assert!(wait_until(secs(10), || a.up() == 2 && b.up() == 2), "{}", a.log());
    assert!(wait_until(secs(5), || a.db_sas().len() == 4 && ends_match(&a, &b)));
    let gw_spis: Vec<u32> = a.db_sas().iter().map(|s| s.spi).collect();
    // Unchanged on the next reload (formatting only): nothing moves.
    std::fs::write(&a.config, cfg.replace("start_action = \"start\"", "start_action   =   \"start\"")).unwrap();
    let r = a.ctl(rampart_ike_daemon::control::Request::Reload);
    assert_eq!(r["unchanged"], serde_json::json!(["gw", "gw2"]), "{r}");
    std::thread::sleep(secs(1));
    let mut now: Vec<u32> = a.db_sas().iter().map(|s| s.spi).collect();
    let mut before = gw_spis.clone();
    now.sort_unstable();
    before.sort_unstable();
    assert_eq!(now, before, "unchanged connections keep their SAs");
    // A bad file is refused with its line; the running configuration stays.
    std::fs::write(&a.config, cfg.replace("remote_ts = \"198.18.2.0/25\"", "remote_ts = \"198.18.2.0/99\"")).unwrap();
    let (ok, out) = a.ctl_cli(&["reload"]);
    assert!(!ok && out.contains("rampart-a.toml:") && out.contains("remote_ts"), "{out}");
    assert_eq!(a.up(), 2);
    // gw2 removed: its SAs go on both sides, gw stays.
    std::fs::write(&a.config, Rampart::daemon_section(&topo, Side::A, "") + &calm).unwrap();
    let r = a.ctl(rampart_ike_daemon::control::Request::Reload);
    assert_eq!(r["removed"], serde_json::json!(["gw2"]), "{r}");
    assert!(wait_until(secs(5), || a.up() == 1 && b.up() == 1 && a.db_sas().len() == 2 && b.db_sas().len() == 2));
    assert!(ends_match(&a, &b));
    assert_eq!(a.stat("config_reload_errors"), 1);

    // The responder deletes: both databases empty.
    let (ok, out) = b.ctl_cli(&["terminate", "gw"]);
    assert!(ok, "{out}");
    assert!(wait_until(secs(5), || a.db_sas().is_empty() && b.db_sas().is_empty()));
    assert!(a.db_policies().is_empty() && b.db_policies().is_empty());
    assert!(a.alive());
    a.stop();
}

#[test]
fn trap_policy_and_acquire() {
    if !can_run("trap_policy_and_acquire", false) {
        return;
    }
    let topo = Topo::new("tr");
    let (a, b) = pair(
        &topo,
        &Rampart::gw_connection(Side::A, "", "start_action = \"trap\""),
        &Rampart::gw_connection(Side::B, "", ""),
    );
    // The trap policy is there, with no SA; nothing negotiated yet.
    let snap = a.reader().snapshot();
    let traps: Vec<_> = snap.policies().collect();
    assert_eq!(traps.len(), 1);
    assert!(traps[0].sa.is_none());
    assert!(matches!(traps[0].policy.action, PolicyAction::Protect(_)));
    std::thread::sleep(secs(1));
    assert!(a.list().is_empty());
    // The data plane reports traffic hitting it.
    let flow =
        Flow { src: "198.18.1.10".parse().unwrap(), dst: "198.18.2.10".parse().unwrap(), proto: 1, sport: 8, dport: 0 };
    a.reader().push_event(&Event::Acquire { policy: traps[0].id, flow }).unwrap();
    assert!(wait_until(secs(10), || a.up() == 1 && b.up() == 1), "{}", a.log());
    assert!(wait_until(secs(3), || ends_match(&a, &b)));
    assert_eq!(a.stat("acquires_handled"), 1);
    // Trap policy (unbound) plus the CHILD_SA's policy (bound, and preferred).
    let snap = a.reader().snapshot();
    let mut ps: Vec<_> = snap.policies().collect();
    ps.sort_by_key(|p| p.policy.priority);
    assert_eq!(ps.len(), 2);
    assert!(ps[0].sa.is_some() && ps[1].sa.is_none(), "{ps:?}");
    // More acquires while it is up start nothing new.
    a.reader().push_event(&Event::Acquire { policy: traps[0].id, flow }).unwrap();
    std::thread::sleep(secs(2));
    assert_eq!(a.list().len(), 1);
    // The peer deletes: the CHILD_SA's policy goes, the trap stays for the next packet.
    let (ok, out) = b.ctl_cli(&["terminate", "gw"]);
    assert!(ok, "{out}");
    assert!(wait_until(secs(5), || a.db_sas().is_empty()));
    let snap = a.reader().snapshot();
    let ps: Vec<_> = snap.policies().collect();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].id, traps[0].id, "the same trap policy");
}

#[test]
fn usage_counters_drive_byte_rekeys_and_liveness() {
    if !can_run("usage_counters_drive_byte_rekeys_and_liveness", false) {
        return;
    }
    let topo = Topo::new("us");
    let (a, mut b) = pair(
        &topo,
        &Rampart::gw_connection(
            Side::A,
            "dpd_delay = \"2s\"\ndpd_timeout = \"3s\"",
            "start_action = \"start\"\nrekey_bytes = 100000\nlife_bytes = 200000",
        ),
        &Rampart::gw_connection(Side::B, "", ""),
    );
    assert!(wait_until(secs(10), || a.up() == 1 && b.up() == 1), "{}", a.log());
    // The inbound SA of the CHILD_SA in use (an old one may still be in its grace time).
    let inbound = |a: &Rampart| {
        let spi = a.list()[0]["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["state"] == "installed"))
            .and_then(|c| u32::from_str_radix(c["spi_in"].as_str()?, 16).ok())
            .expect("installed CHILD_SA");
        a.reader()
            .snapshot()
            .sas()
            .find(|m| m.direction == Direction::Inbound && m.spi == spi)
            .map(|m| m.id)
            .expect("inbound SA")
    };
    // Under the soft limit: nothing. Over it: one rekey, not one per report.
    let first = inbound(&a);
    a.reader().account(first, 50_000, 50, db_now());
    std::thread::sleep(secs(2));
    assert_eq!(a.stat("child_sa_rekeys"), 0);
    a.reader().account(first, 60_000, 60, db_now());
    a.reader().account(first, 10_000, 10, db_now());
    assert!(wait_until(secs(5), || a.stat("child_sa_rekeys") == 1), "{}", a.log());
    std::thread::sleep(secs(2));
    assert_eq!(a.stat("child_sa_rekeys"), 1);
    assert_eq!(a.stat("usage_rekeys"), 1);
    assert!(wait_until(secs(5), || a.db_sas().len() == 2 && ends_match(&a, &b)));
    // The new CHILD_SA starts from zero and the peer answers liveness checks.
    std::thread::sleep(secs(3));
    assert_eq!(a.stat("ike_sas_peer_dead"), 0);
    // The peer's IKE daemon dies, but ESP keeps arriving (the data plane counts it): no
    // liveness check goes out, the tunnel stays.
    b.kill9();
    let sa = inbound(&a);
    for _ in 0..16 {
        a.reader().account(sa, 100, 1, db_now());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(a.up(), 1, "ESP activity kept the IKE SA: {}", a.log());
    assert_eq!(a.stat("ike_sas_peer_dead"), 0);
    // ESP stops too: the check goes unanswered, the SA goes.
    assert!(wait_until(secs(12), || a.stat("ike_sas_peer_dead") == 1), "{}", a.log());
    assert!(wait_until(secs(4), || a.db_sas().is_empty()), "{:?}", a.db_sas());
}

#[test]
fn ipv6_outer_and_inner_addresses() {
    if !can_run("ipv6_outer_and_inner_addresses", false) {
        return;
    }
    let topo = Topo::new("v6");
    for (side, addr) in [(Side::A, "2001:db8::1/64"), (Side::B, "2001:db8::2/64")] {
        let out = topo.exec(side, &["ip", "-6", "addr", "add", addr, "dev", "wan", "nodad"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let v6 = |side: Side, start: &str| {
        Rampart::gw_connection(side, "", start)
            .replace(
                &format!("local_addrs = \"{}\"", side.wan()),
                &format!("local_addrs = \"2001:db8::{}\"", if side == Side::A { 1 } else { 2 }),
            )
            .replace(
                &format!("remote_addrs = \"{}\"", side.peer_wan()),
                &format!("remote_addrs = \"2001:db8::{}\"", if side == Side::A { 2 } else { 1 }),
            )
            .replace("\"198.18.1.0/24\"", "\"fd01::/64\"")
            .replace("\"198.18.2.0/24\"", "\"fd02::/64\"")
    };
    let (a, b) = pair(&topo, &v6(Side::A, "start_action = \"start\""), &v6(Side::B, ""));
    assert!(wait_until(secs(10), || a.up() == 1 && b.up() == 1), "{}", a.log());
    assert!(wait_until(secs(3), || ends_match(&a, &b)));
    let sa = &a.list()[0];
    assert_eq!(sa["remote"], "[2001:db8::2]:500");
    assert_eq!(sa["children"][0]["local_ts"], serde_json::json!(["fd01::/64"]));
    assert_eq!(sa["children"][0]["remote_ts"], serde_json::json!(["fd02::/64"]));
    assert!(a.db_sas().iter().all(|s| s.remote.is_ipv6() || s.local.is_ipv6()));
    let snap = a.reader().snapshot();
    let p: Vec<_> = snap.policies().collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].policy.selector.src.to_string(), "fd01::/64");
    assert_eq!(p[0].policy.selector.dst.to_string(), "fd02::/64");
    let (ok, out) = a.ctl_cli(&["terminate", "gw"]);
    assert!(ok, "{out}");
    assert!(wait_until(secs(5), || a.db_sas().is_empty() && b.db_sas().is_empty()));
}

/// `rampart ctl list-sas` as an operator reads it: algorithms and DH group, ports, times to
/// rekey and expire, and the bytes and packets of each CHILD_SA that the data plane counted
/// (written here into the usage area through `rampart_sadb::Reader`, the data plane's side).
#[test]
fn list_sas_shows_algorithms_times_and_usage() {
    if !can_run("list_sas_shows_algorithms_times_and_usage", false) {
        return;
    }
    let topo = Topo::new("ls");
    let a_conn = Rampart::gw_connection(Side::A, "", "start_action = \"start\"")
        .replace("proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"", "proposals = \"aes192-sha384-ecp521\"");
    let b_conn = Rampart::gw_connection(Side::B, "", "")
        .replace("proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"", "proposals = \"aes192-sha384-ecp521\"");
    let (a, b) = pair(&topo, &a_conn, &b_conn);
    assert!(wait_until(secs(10), || a.up() == 1 && b.up() == 1), "{}", a.log());
    let child = a.list()[0]["children"][0].clone();
    let spi = |k: &str| u32::from_str_radix(child[k].as_str().unwrap(), 16).unwrap();
    let id_of = |spi: u32, d: Direction| {
        a.reader()
            .snapshot()
            .sas()
            .find(|m| m.direction == d && m.spi == spi)
            .map(|m| m.id)
            .expect("SA in the database")
    };
    a.reader().account(id_of(spi("spi_in"), Direction::Inbound), 123_456, 789, db_now());
    a.reader().account(id_of(spi("spi_out"), Direction::Outbound), 65_432, 10, db_now());
    let (ok, out) = a.ctl_cli(&["list-sas"]);
    assert!(ok, "{out}");
    for want in [
        "gw: #1, ESTABLISHED, IKEv2, ",
        "  local  'gw-a.sw.test' @ 192.0.2.1[500]",
        "  remote 'gw-b.sw.test' @ 192.0.2.2[500]",
        "  aes192-sha384-prfsha384-ecp521 (DH group ecp521)",
        "  rekeying in 3h ",
        ", INSTALLED, TUNNEL, ESP:aes256gcm16",
        "    local  198.18.1.0/24",
        "    remote 198.18.2.0/24",
    ] {
        assert!(out.contains(want), "no `{want}` in\n{out}");
    }
    let line = |dir: &str| out.lines().find(|l| l.starts_with(&format!("    {dir} "))).unwrap_or_default().to_string();
    assert!(line("in ").ends_with("123456 bytes,      789 packets"), "{out}");
    assert!(line("out").ends_with("65432 bytes,       10 packets"), "{out}");
    let (ok, json) = a.ctl_cli(&["list-sas", "--json"]);
    assert!(ok && json.contains("\"dh_group\":\"ecp521\"") && json.contains("\"bytes_in\":123456"), "{json}");
}
