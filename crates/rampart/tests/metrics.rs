//! The metrics endpoint of a running `rampart run`, scraped as Prometheus does, as root: two
//! gateways of the demo's topology with one tunnel, UDP traffic through it both ways from the
//! demo's agents (whose sinks count what arrived: the oracle), and the endpoint parsed by the
//! telemetry crate's strict text-format parser. The packet counters must move by exactly what
//! crossed the data planes, under the sample names that `/stats` and `rampart ctl stats` show.

mod run_support;

#[path = "../../telemetry/tests/support/exposition.rs"]
mod exposition;

use std::collections::BTreeMap;

use exposition::{Exposition, parse, value};
use rampart_telemetry::schema;
use run_support::*;

/// The sum over workers of one sample, e.g. `rampart_worker_esp_packets_total` with
/// `direction="inbound"`.
fn total(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    e.samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
                && s.labels.len() == labels.len() + usize::from(s.labels.contains_key("worker"))
        })
        .map(|s| s.value)
        .sum()
}

/// Rows of a `/stats` table (what `rampart ctl stats` prints): sample name -> total column.
fn table_rows(table: &str) -> BTreeMap<String, f64> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?.to_string();
            let total = w.next_back()?.parse::<f64>().ok()?;
            Some((name, total))
        })
        .collect()
}

#[test]
fn traffic_moves_the_packet_counters_under_the_names_ctl_stats_shows() {
    if !can_run("traffic_moves_the_packet_counters_under_the_names_ctl_stats_shows") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let net = Net::new("me", 1);
    // The hub exports per-SA counters too; the branch does not (the default).
    let hub_config = net.config(Ns::Hub, &[0], 0).replacen("[dataplane]\n", "[dataplane]\nper_sa_metrics = true\n", 1);
    assert!(hub_config.contains("per_sa_metrics = true"));
    let hub = Gateway::start(&net, Ns::Hub, &hub_config);
    let branch = Gateway::start(&net, Ns::Branch, &net.config(Ns::Branch, &[0], 1 % cores));
    assert!(
        wait_until(secs(20), || hub.children().contains_key("site0") && branch.children().contains_key("site0")),
        "the tunnel did not come up:\n{}",
        branch.log()
    );
    let mut dc = Agent::start(&net, Ns::Dc);
    let mut sites = Agent::start(&net, Ns::Sites);
    assert!(sites.warm_up(&mut dc, &[0], 5), "sites -> dc never got through");
    assert!(dc.warm_up(&mut sites, &[0], 5), "dc -> sites never got through");

    // The endpoint as Prometheus reads it: every family declared, with its help and type.
    let before = parse(&hub.http_get("/metrics"));
    for (name, ty) in &before.types {
        let def = schema::find(name).unwrap_or_else(|| panic!("{name} is not in the schema"));
        assert_eq!(ty, def.kind.prometheus_type(), "{name}");
        assert_eq!(before.help.get(name).map(String::as_str), Some(def.help), "{name}");
    }
    assert_eq!(
        value(&before, "rampart_build_info", &[("version", rampart_telemetry::VERSION), ("process", "run")]),
        Some(1.0)
    );
    assert!(before.types.contains_key("rampart_worker_drops_total"), "the data plane's families are served");
    let branch_before = parse(&branch.http_get("/metrics"));

    // 2,000 packets from the sites to the dc, 1,000 back; the sinks count what arrived.
    let (up, down) = (2000u64, 1000u64);
    dc.listen(7);
    sites.listen(7);
    sites.send(7, &[0], 1000.0, up as f64 / 1000.0);
    dc.send(7, &[0], 500.0, down as f64 / 500.0);
    assert_eq!(sites.sent(secs(30))[0], up);
    assert_eq!(dc.sent(secs(30))[0], down);
    settle(500);
    let (got_up, dup_up) = dc.report()[0];
    let (got_down, dup_down) = sites.report()[0];
    assert_eq!((got_up, dup_up, got_down, dup_down), (up, 0, down, 0), "loss or duplicates through the tunnel");

    let after = parse(&hub.http_get("/metrics"));
    let branch_after = parse(&branch.http_get("/metrics"));
    let delta = |b: &Exposition, a: &Exposition, name: &str, labels: &[(&str, &str)]| {
        (total(a, name, labels) - total(b, name, labels)) as u64
    };
    // Only this traffic crosses the data planes (IKE, ARP and ND pass to the kernel).
    for (b, a, enc, dec, which) in
        [(&before, &after, down, up, "hub"), (&branch_before, &branch_after, up, down, "branch")]
    {
        let esp = "rampart_worker_esp_packets_total";
        assert_eq!(delta(b, a, esp, &[("direction", "outbound")]), enc, "{which}: packets encrypted");
        assert_eq!(delta(b, a, esp, &[("direction", "inbound")]), dec, "{which}: packets decrypted");
        assert_eq!(delta(b, a, "rampart_worker_rx_packets_total", &[("side", "lan")]), enc, "{which}: LAN rx");
        assert_eq!(delta(b, a, "rampart_worker_rx_packets_total", &[("side", "wan")]), dec, "{which}: WAN rx");
        assert_eq!(delta(b, a, "rampart_worker_tx_packets_total", &[("side", "wan")]), enc, "{which}: WAN tx");
        assert_eq!(delta(b, a, "rampart_worker_tx_packets_total", &[("side", "lan")]), dec, "{which}: LAN tx");
        assert!(delta(b, a, "rampart_worker_esp_bytes_total", &[("direction", "inbound")]) >= dec * 200, "{which}");
        let drops: f64 = a.samples.iter().filter(|s| s.name == "rampart_worker_drops_total").map(|s| s.value).sum();
        let drops_before: f64 =
            b.samples.iter().filter(|s| s.name == "rampart_worker_drops_total").map(|s| s.value).sum();
        assert_eq!(drops, drops_before, "{which}: nothing dropped during the run");
        // The XDP programs steered every one of those packets: the LAN one each packet to be
        // encrypted, the WAN one each ESP packet (in UDP: the tunnels are NAT-T or not).
        let xdp = "rampart_xdp_packets_total";
        assert!(delta(b, a, xdp, &[("interface", "lan"), ("verdict", "to_xsk_protected")]) >= enc, "{which}: LAN XDP");
        let wan_esp = delta(b, a, xdp, &[("interface", "wan"), ("verdict", "to_xsk_esp")])
            + delta(b, a, xdp, &[("interface", "wan"), ("verdict", "to_xsk_esp_udp")]);
        assert!(wan_esp >= dec, "{which}: WAN XDP steered {wan_esp} ESP packets for {dec} decrypted");
    }

    // Burst times: every burst the workers processed is timed (flushed once a second, so the
    // bursts of the last second may not show yet), and the median is a few microseconds to
    // milliseconds.
    for (e, which) in [(&after, "hub"), (&branch_after, "branch")] {
        for dir in ["outbound", "inbound"] {
            let bursts = total(e, "rampart_worker_burst_seconds_count", &[("direction", dir)]);
            assert!(bursts >= 1.0, "{which}: {dir} bursts timed: {bursts}");
            let median = total(e, "rampart_worker_burst_seconds", &[("direction", dir), ("quantile", "0.5")]);
            assert!(median > 0.0 && median < 0.1, "{which}: {dir} median burst time {median} s");
        }
    }

    // Per-SA counters: the hub's tunnel SAs moved by the traffic, one series per SA and
    // direction; the branch has none.
    let per_sa = |e: &Exposition, name: &str, dir: &str| -> (usize, f64) {
        let s: Vec<_> = e
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels.get("direction").map(String::as_str) == Some(dir))
            .collect();
        assert!(s.iter().all(|s| s.labels.get("spi").is_some_and(|v| v.starts_with("0x") && v.len() == 10)), "{name}");
        (s.len(), s.iter().map(|s| s.value).sum())
    };
    for (dir, n) in [("inbound", up), ("outbound", down)] {
        let (series, b) = per_sa(&before, "rampart_sa_packets_total", dir);
        let (series_after, a) = per_sa(&after, "rampart_sa_packets_total", dir);
        assert_eq!((series, series_after), (1, 1), "hub: one {dir} SA");
        assert_eq!((a - b) as u64, n, "hub: {dir} SA packets");
        let (_, bytes_b) = per_sa(&before, "rampart_sa_bytes_total", dir);
        let (_, bytes_a) = per_sa(&after, "rampart_sa_bytes_total", dir);
        let bytes = (bytes_a - bytes_b) as u64;
        assert!(bytes >= n * 200, "hub: {dir} SA bytes: {bytes} for {n} packets");
    }
    assert_eq!(per_sa(&branch_after, "rampart_sa_packets_total", "inbound").0, 0, "branch: per-SA metrics are off");

    // The IKE daemons' exchanges: the branch initiated every tunnel and timed each exchange
    // (the latency summary), the hub answered.
    let exchanges = "rampart_ike_exchanges_total";
    for (e, role, which) in [(&branch_after, "initiator", "branch"), (&after, "responder", "hub")] {
        for exchange in ["ike_sa_init", "ike_auth"] {
            let n = total(e, exchanges, &[("exchange", exchange), ("role", role)]);
            assert!(n >= 1.0, "{which}: {exchange} exchanges as {role}: {n}");
        }
    }
    // Both daemons compute Diffie-Hellman on their worker pool (the default) and time it.
    for (e, which) in [(&after, "hub"), (&branch_after, "branch")] {
        for job in ["dh", "key_share"] {
            let n = total(e, "rampart_ike_crypto_job_seconds_count", &[("job", job)]);
            assert!(n >= 1.0, "{which}: {job} jobs timed: {n}");
        }
    }
    let timed = total(&branch_after, "rampart_ike_exchange_seconds_count", &[("exchange", "ike_auth")]);
    assert!(timed >= 1.0, "branch: IKE_AUTH round trips recorded: {timed}");
    assert_eq!(total(&after, "rampart_ike_exchange_seconds_count", &[("exchange", "ike_auth")]), 0.0, "hub: none");
    assert_eq!(total(&after, "rampart_ike_failures_total", &[("reason", "authentication_failed")]), 0.0);

    // `/stats` and `rampart ctl stats` show the same samples under the same names, the
    // worker label made a column.
    let table = table_rows(&hub.http_get("/stats"));
    let now = parse(&hub.http_get("/metrics"));
    for (name, labels) in [
        ("rampart_worker_esp_packets_total", [("direction", "inbound")]),
        ("rampart_worker_esp_packets_total", [("direction", "outbound")]),
        ("rampart_worker_rx_packets_total", [("side", "lan")]),
    ] {
        let row = format!("{name}{{{}=\"{}\"}}", labels[0].0, labels[0].1);
        assert_eq!(table.get(&row).copied(), Some(total(&now, name, &labels)), "/stats row {row}");
    }
    let (ok, out) = hub.ctl_cli(&["stats"]);
    assert!(ok, "{out}");
    let ctl = table_rows(&out);
    let row = "rampart_worker_esp_packets_total{direction=\"inbound\"}";
    assert_eq!(
        ctl.get(row).copied(),
        Some(total(&now, "rampart_worker_esp_packets_total", &[("direction", "inbound")])),
        "rampart ctl stats:\n{out}"
    );
    assert!(
        ctl.keys().any(|k| k.starts_with("rampart_ike_")),
        "rampart ctl stats shows the IKE daemon's metrics too:\n{out}"
    );
    drop(branch);
    drop(hub);
}
