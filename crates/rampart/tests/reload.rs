//! `rampart ctl reload` on a running `rampart run`, as root, counted in packets through the
//! data planes: UDP traffic flows through an unchanged tunnel while a reload of the branch
//! gateway's file removes one connection and adds another. The unchanged tunnel keeps its SAs
//! and loses no packet (the demo agent's sink counts every sequence number; the data planes'
//! counters agree); the removed one is deleted on both gateways and carries nothing more; the
//! added one comes up and carries traffic.

mod run_support;

use std::time::Duration;

use rampart_sadb::Reader;
use run_support::*;

/// SA records in a database.
fn db_sas(net: &Net, n: Ns) -> usize {
    let Ok(r) = Reader::attach(net.database(n)) else { return 0 };
    r.snapshot().sas().count()
}

#[test]
fn reload_keeps_unchanged_tunnels_lossless_removes_and_adds() {
    if !can_run("reload_keeps_unchanged_tunnels_lossless_removes_and_adds") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let net = Net::new("rl", 3);
    // The hub answers all three sites; the branch starts with sites 0 and 1.
    let hub = Gateway::start(&net, Ns::Hub, &net.config(Ns::Hub, &[0, 1, 2], 0));
    let branch = Gateway::start(&net, Ns::Branch, &net.config(Ns::Branch, &[0, 1], 1 % cores));
    let both_up = |names: &[&str]| {
        let (h, b) = (hub.children(), branch.children());
        names.iter().all(|n| h.contains_key(*n) && b.contains_key(*n))
    };
    assert!(wait_until(secs(20), || both_up(&["site0", "site1"])), "tunnels did not come up:\n{}", branch.log());
    let mut dc = Agent::start(&net, Ns::Dc);
    let mut sites = Agent::start(&net, Ns::Sites);
    assert!(sites.warm_up(&mut dc, &[0, 1], 5), "warm-up traffic did not get through");
    let site0_spis = branch.children()["site0"].clone();
    let hub_site0_spis = hub.children()["site0"].clone();
    assert_eq!(db_sas(&net, Ns::Branch), 4);

    // Continuous traffic through site 0: 2,000 packets a second for 6 seconds.
    let (rate, seconds) = (2000.0, 6.0);
    let (branch0, hub0) = (branch.counters(), hub.counters());
    dc.listen(50);
    sites.send(50, &[0], rate, seconds);
    std::thread::sleep(Duration::from_secs(2));

    // The reload: site 0 byte for byte the same, site 1 gone, site 2 new.
    let v2 = net.config(Ns::Branch, &[0, 2], 1 % cores);
    std::fs::write(&branch.config, &v2).unwrap();
    let (ok, out) = branch.ctl_cli(&["reload"]);
    assert!(ok, "{out}");
    assert!(out.contains("added      site2"), "{out}");
    assert!(out.contains("removed    site1"), "{out}");
    assert!(out.contains("unchanged  site0"), "{out}");

    let sent = sites.sent(secs(30));
    settle(500);
    let got = dc.report();
    assert_eq!(sent[0], (rate * seconds) as u64);
    let kernel = |g: &Gateway| g.counters().get("kernel_fill_ring_empty").copied().unwrap_or(0);
    assert_eq!(
        got[0],
        (sent[0], 0),
        "packets through the unchanged tunnel lost or duplicated across the reload (AF_XDP fill ring found empty: \
         branch {}, hub {}: a worker did not run for that long)",
        kernel(&branch),
        kernel(&hub)
    );
    assert_eq!(got[1].0 + got[2].0, 0);
    // The data planes counted the same packets: every one encrypted by the branch, decrypted
    // by the hub, nothing else (site 1 carried nothing).
    settle(300);
    let (branch1, hub1) = (branch.counters(), hub.counters());
    let d = |a: &std::collections::BTreeMap<String, u64>, b: &std::collections::BTreeMap<String, u64>, k: &str| {
        b.get(k).copied().unwrap_or(0) - a.get(k).copied().unwrap_or(0)
    };
    assert_eq!(d(&branch0, &branch1, "encrypted_packets"), sent[0], "branch data plane");
    assert_eq!(d(&hub0, &hub1, "decrypted_packets"), sent[0], "hub data plane");
    let drops: u64 =
        hub1.iter().filter(|(k, _)| k.starts_with("drop_")).map(|(k, v)| v - hub0.get(k).unwrap_or(&0)).sum();
    assert_eq!(drops, 0, "hub drops during the reload: {hub1:?}");

    // Unchanged: the same SAs on both ends.
    assert_eq!(branch.children()["site0"], site0_spis, "site0 was renegotiated");
    assert_eq!(hub.children()["site0"], hub_site0_spis, "site0 was renegotiated on the hub");
    // Removed: deleted on both gateways, its SAs gone from both databases.
    assert!(
        wait_until(secs(10), || !branch.children().contains_key("site1") && !hub.children().contains_key("site1")),
        "site1 still up:\n{}",
        hub.log()
    );
    // Added: up on both gateways.
    assert!(wait_until(secs(20), || both_up(&["site0", "site2"])), "site2 did not come up:\n{}", branch.log());
    // site2's WAN address was not in the branch's file before: the reload bound it.
    assert!(branch.log().contains("listening on new addresses"), "{}", branch.log());
    assert!(wait_until(secs(5), || db_sas(&net, Ns::Branch) == 4 && db_sas(&net, Ns::Hub) == 4));

    // The removed tunnel carries nothing; the added one carries traffic.
    dc.listen(60);
    sites.send(60, &[1, 2], 1000.0, 1.0);
    let sent = sites.sent(secs(30));
    settle(500);
    let got = dc.report();
    assert_eq!(got[1].0, 0, "traffic through the removed tunnel");
    assert!(got[2].0 > 0 && got[2].0 <= sent[2], "nothing through the added tunnel: {got:?}");
    assert!(sent[2] - got[2].0 <= 5, "the added tunnel lost more than its first packets: {got:?} of {sent:?}");
}
