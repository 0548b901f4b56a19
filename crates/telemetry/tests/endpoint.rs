//! The metrics endpoint as Prometheus sees it: started on loopback, scraped with a plain TCP
//! client, and the answer parsed by a strict text-format parser of the tests
//! (`support/exposition.rs`, not the encoder the crate writes with). Checks every family's HELP and TYPE against the schema, the label
//! values (drop reasons straight from `rampart_sa::DropReason::ALL`), that counters move
//! between scrapes, that histograms and summaries are well formed, and that `/stats` and
//! `/stats.json` use the very sample names `/metrics` does.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_sa::DropReason;
use rampart_telemetry::dataplane::{DataplaneSource, PublishedCounters, WorkerCounter, WorkerCounters, WorkerReading};
use rampart_telemetry::schema::{self, Kind};
use rampart_telemetry::{LatencyRecorder, Metrics, MetricsServer};

#[path = "support/exposition.rs"]
mod exposition;
use exposition::{family_of, parse, value};

/// GET with a hand-written HTTP/1.1 request; returns (status code, headers, body).
fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\nAccept: text/plain\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map(|v| v.trim().parse().unwrap()).unwrap();
    if method != "HEAD" {
        assert_eq!(len, body.len(), "Content-Length");
    }
    (status, head.to_string(), body.to_string())
}

struct Fixture {
    metrics: Arc<Metrics>,
    workers: Vec<Arc<PublishedCounters>>,
    local: Mutex<Vec<WorkerCounters>>,
}

fn fixture() -> Arc<Fixture> {
    let metrics = Arc::new(Metrics::new());
    let workers: Vec<Arc<PublishedCounters>> = (0..2).map(|_| Arc::new(PublishedCounters::default())).collect();
    let f =
        Arc::new(Fixture { metrics: metrics.clone(), workers, local: Mutex::new(vec![WorkerCounters::default(); 2]) });
    let src = f.clone();
    metrics.add_source(Arc::new(DataplaneSource::new(move || {
        src.workers
            .iter()
            .enumerate()
            .map(|(i, p)| WorkerReading { worker: i, core: i + 2, counters: p.read() })
            .collect()
    })));
    metrics.set_build_info("run");
    f
}

/// What a worker does once per burst: count into its own memory, then publish.
fn worker_burst(f: &Fixture, w: usize, frames: usize, drop: Option<DropReason>) {
    let mut local = f.local.lock().unwrap();
    let v = &mut local[w];
    v.burst(frames);
    v.add(WorkerCounter::LanRxPackets, frames as u64);
    v.add(WorkerCounter::LanRxBytes, 100 * frames as u64);
    if let Some(r) = drop {
        v.drop(r);
    }
    v.publish(&f.workers[w]);
}

#[test]
fn scrape_parses_and_matches_the_schema() {
    let f = fixture();
    worker_burst(&f, 0, 64, Some(DropReason::UnknownSpi));
    worker_burst(&f, 0, 3, None);
    worker_burst(&f, 1, 1, Some(DropReason::AuthFailed));
    f.metrics.counter(&schema::IKE_EXCHANGES, ["ike_sa_init", "initiator"]).inc();
    f.metrics.gauge(&schema::IKE_SAS, ["established"]).set(5);
    f.metrics.counter(&schema::IKE_FAILURES, ["no_proposal_chosen"]).add(2);
    let lat = f.metrics.latency(&schema::WORKER_BURST_SECONDS, ["0", "outbound"]);
    let mut rec = LatencyRecorder::default();
    for us in 1..=100 {
        rec.record(Duration::from_micros(us));
    }
    assert!(rec.try_flush(&lat));

    let server = MetricsServer::start("127.0.0.1:0", f.metrics.clone()).unwrap();
    let addr = server.local_addr();
    let (status, head, body) = get(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let e = parse(&body);

    // Every family present is declared, with the declared help and type.
    assert!(!e.types.is_empty());
    for (name, ty) in &e.types {
        let def = schema::find(name).unwrap_or_else(|| panic!("{name} is not in the schema"));
        assert_eq!(ty, def.kind.prometheus_type(), "{name}");
        assert_eq!(e.help.get(name).map(String::as_str), Some(def.help), "{name}");
    }
    // Every sample belongs to a declared family and carries exactly its labels.
    for s in &e.samples {
        let (fam, ty) = e
            .types
            .iter()
            .find_map(|(n, t)| (family_of(&s.name, t) == n).then_some((n.as_str(), t.as_str())))
            .unwrap_or_else(|| panic!("sample {s:?} has no TYPE"));
        let def = schema::find(fam).unwrap();
        let mut expected: BTreeSet<&str> = def.labels.iter().copied().collect();
        if ty == "histogram" && s.name.ends_with("_bucket") {
            expected.insert("le");
        }
        if ty == "summary" && s.name == fam {
            expected.insert("quantile");
        }
        let got: BTreeSet<&str> = s.labels.keys().map(String::as_str).collect();
        assert_eq!(got, expected, "{s:?}");
    }

    // Every drop reason of the ESP layer is a label value of every worker, under its own name.
    for w in ["0", "1"] {
        for r in DropReason::ALL {
            assert!(
                value(&e, "rampart_worker_drops_total", &[("worker", w), ("reason", r.name())]).is_some(),
                "worker {w} lacks reason {}",
                r.name()
            );
        }
    }
    assert_eq!(value(&e, "rampart_worker_drops_total", &[("worker", "0"), ("reason", "unknown_spi")]), Some(1.0));
    assert_eq!(value(&e, "rampart_worker_drops_total", &[("worker", "1"), ("reason", "auth_failed")]), Some(1.0));
    assert_eq!(value(&e, "rampart_worker_rx_packets_total", &[("worker", "0"), ("side", "lan")]), Some(67.0));
    assert_eq!(value(&e, "rampart_worker_rx_bytes_total", &[("worker", "0"), ("side", "lan")]), Some(6700.0));
    assert_eq!(value(&e, "rampart_worker_info", &[("worker", "1"), ("core", "3")]), Some(1.0));
    assert_eq!(value(&e, "rampart_ike_sas", &[("state", "established")]), Some(5.0));
    assert_eq!(value(&e, "rampart_ike_failures_total", &[("reason", "no_proposal_chosen")]), Some(2.0));
    assert_eq!(
        value(&e, "rampart_build_info", &[("version", rampart_telemetry::VERSION), ("process", "run")]),
        Some(1.0)
    );
    for ev in ["rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full", "fill_ring_empty", "tx_ring_empty"]
    {
        assert_eq!(value(&e, "rampart_worker_ring_events_total", &[("worker", "0"), ("event", ev)]), Some(0.0), "{ev}");
    }

    // Histogram: cumulative, +Inf equals count, sum is the frames of all bursts.
    let Kind::Histogram { buckets } = schema::WORKER_BURST_FRAMES.def().kind else { unreachable!() };
    let mut prev = 0.0;
    for b in buckets.iter().map(|b| format!("{b}")).chain(["+Inf".to_string()]) {
        let v = value(&e, "rampart_worker_burst_frames_bucket", &[("worker", "0"), ("le", &b)]).unwrap();
        assert!(v >= prev, "le={b} not cumulative");
        prev = v;
    }
    assert_eq!(prev, 2.0);
    assert_eq!(value(&e, "rampart_worker_burst_frames_count", &[("worker", "0")]), Some(2.0));
    assert_eq!(value(&e, "rampart_worker_burst_frames_sum", &[("worker", "0")]), Some(67.0));
    assert_eq!(value(&e, "rampart_worker_burst_frames_bucket", &[("worker", "0"), ("le", "3")]), Some(1.0));

    // Summary: the five quantiles in seconds, ascending, max = 100 us.
    let qs: Vec<f64> = ["0.5", "0.9", "0.99", "0.999", "1"]
        .iter()
        .map(|q| {
            value(&e, "rampart_worker_burst_seconds", &[("worker", "0"), ("direction", "outbound"), ("quantile", q)])
                .unwrap_or_else(|| panic!("quantile {q}"))
        })
        .collect();
    assert!(qs.windows(2).all(|w| w[0] <= w[1]), "{qs:?}");
    assert!((qs[0] - 50e-6).abs() < 1e-6 && (qs[4] - 100e-6).abs() < 1e-6, "{qs:?}");
    assert_eq!(
        value(&e, "rampart_worker_burst_seconds_count", &[("worker", "0"), ("direction", "outbound")]),
        Some(100.0)
    );

    // A counter moves between scrapes, through both paths.
    worker_burst(&f, 0, 10, Some(DropReason::UnknownSpi));
    f.metrics.counter(&schema::IKE_EXCHANGES, ["ike_sa_init", "initiator"]).inc();
    let e2 = parse(&get(addr, "GET", "/metrics").2);
    assert_eq!(value(&e2, "rampart_worker_drops_total", &[("worker", "0"), ("reason", "unknown_spi")]), Some(2.0));
    assert_eq!(value(&e2, "rampart_worker_rx_packets_total", &[("worker", "0"), ("side", "lan")]), Some(77.0));
    assert_eq!(
        value(&e2, "rampart_ike_exchanges_total", &[("exchange", "ike_sa_init"), ("role", "initiator")]),
        Some(2.0)
    );
    server.shutdown();
}

#[test]
fn stats_and_json_use_the_names_of_metrics() {
    let f = fixture();
    worker_burst(&f, 0, 8, Some(DropReason::ReplayDuplicate));
    worker_burst(&f, 1, 2, None);
    f.metrics.counter(&schema::IKE_EXCHANGES, ["ike_auth", "responder"]).inc();
    let server = MetricsServer::start("127.0.0.1:0", f.metrics.clone()).unwrap();
    let addr = server.local_addr();
    let e = parse(&get(addr, "GET", "/metrics").2);
    // Prometheus sample names with the worker label taken out: what the table shows.
    let without_worker: BTreeSet<String> = e
        .samples
        .iter()
        .map(|s| {
            let labels: Vec<String> =
                s.labels.iter().filter(|(k, _)| *k != "worker").map(|(k, v)| format!("{k}={v:?}")).collect();
            (s.name.clone(), labels)
        })
        .map(|(n, mut l)| {
            l.sort();
            if l.is_empty() { n } else { format!("{n}{{{}}}", l.join(",")) }
        })
        .collect();

    let (status, _, table) = get(addr, "GET", "/stats");
    assert_eq!(status, 200);
    let mut rows = 0;
    for line in table.lines().skip(1) {
        let name = line.split_whitespace().next().unwrap();
        // Label order in the table follows the schema; compare as sets.
        let canonical = match name.split_once('{') {
            Some((n, l)) => {
                let mut parts: Vec<&str> = l.trim_end_matches('}').split(',').collect();
                parts.sort();
                format!("{n}{{{}}}", parts.join(","))
            }
            None => name.to_string(),
        };
        assert!(without_worker.contains(&canonical), "table row {name} is not a /metrics sample");
        rows += 1;
    }
    assert!(table.contains("rampart_worker_drops_total{reason=\"replay_duplicate\"}"), "{table}");
    assert!(rows > 10, "{table}");

    let (status, head, json) = get(addr, "GET", "/stats.json");
    assert_eq!(status, 200);
    assert!(head.contains("application/json"));
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let json_names: BTreeSet<&str> =
        j["families"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    let metric_names: BTreeSet<&str> = e.types.keys().map(String::as_str).collect();
    assert_eq!(json_names, metric_names);
    server.shutdown();
}

#[test]
fn other_requests_get_clear_answers() {
    let f = fixture();
    let server = MetricsServer::start("127.0.0.1:0", f.metrics.clone()).unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "GET", "/nope").0, 404);
    assert_eq!(get(addr, "POST", "/metrics").0, 405);
    let (status, _, body) = get(addr, "HEAD", "/metrics");
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(get(addr, "GET", "/metrics?x=1").0, 200);
    // A client that sends an endless header is cut off, and the server keeps serving.
    let mut s = TcpStream::connect(addr).unwrap();
    let junk = vec![b'a'; 16 * 1024];
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nX: ");
    let _ = s.write_all(&junk);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // A client that connects and says nothing costs the read timeout, no more.
    let idle = TcpStream::connect(addr).unwrap();
    assert_eq!(get(addr, "GET", "/metrics").0, 200);
    drop(idle);
    // The client helper of `rampart ctl stats` reads the same body.
    let body = rampart_telemetry::http::fetch(addr, "/stats", Duration::from_secs(5)).unwrap();
    assert!(body.starts_with("metric"));
    assert!(rampart_telemetry::http::fetch(addr, "/missing", Duration::from_secs(5)).is_err());
    server.shutdown();
}

#[test]
fn scraping_does_not_stall_publishing_workers() {
    // Workers keep publishing while scrapes run; every scrape sees monotonic counters.
    let f = fixture();
    let server = MetricsServer::start("127.0.0.1:0", f.metrics.clone()).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicU64::new(0));
    let writer = {
        let f = f.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while stop.load(Ordering::Relaxed) == 0 && n < 2_000_000 {
                worker_burst(&f, 0, 1, None);
                n += 1;
            }
            n
        })
    };
    let mut last = 0.0;
    for _ in 0..20 {
        let e = parse(&get(addr, "GET", "/metrics").2);
        let v = value(&e, "rampart_worker_rx_packets_total", &[("worker", "0"), ("side", "lan")]).unwrap();
        assert!(v >= last, "went back from {last} to {v}");
        last = v;
    }
    stop.store(1, Ordering::Relaxed);
    let n = writer.join().unwrap();
    assert!(n > 0);
    server.shutdown();
}
