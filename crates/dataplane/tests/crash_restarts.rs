//! Crash faults at random moments, as root, in network namespaces this test creates and removes
//! (the topology of `e2e.rs`): gateway A's data plane is SIGKILLed ten times under continuous
//! traffic, each time at a random moment, and started again. ESP from A is captured on the
//! switch; no sequence number may appear twice on the wire (each incarnation continues from the
//! block reserved in the SA database past what the last one could have used), gateway B must
//! see no replay, and the loss must stay within what the restarts themselves cost. The figures
//! (seed, every kill's timing, loss, sequence numbers per incarnation) are printed; rerun with
//! `RAMPART_CRASH_SEED=<seed>` to repeat a run's timings.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

const KILLS: usize = 10;
/// Ping interval (seconds) and so the packet rate of the traffic.
const INTERVAL: f64 = 0.02;

/// xorshift64*: the kill timings, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn replays(g: &Gateway) -> u64 {
    g.total("drops", "replay_duplicate") + g.total("drops", "replay_too_old")
}

#[test]
fn data_plane_killed_ten_times_under_traffic() {
    if !require_root("data_plane_killed_ten_times_under_traffic") {
        return;
    }
    let seed = std::env::var("RAMPART_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("crash faults: RAMPART_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let topo = Topology::new(1);
    let scratch = Scratch::new("crash");
    install_tunnels(&scratch.dbs[0], &scratch.dbs[1]);
    let mut ga = Gateway::start(&topo, "ga", &scratch.dbs[0], &scratch.dir, 1);
    let gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, 1);
    topo.wait_reachable("ha", "10.2.0.2", 10);
    let r0 = replays(&gb);

    let cap = Capture::start(&topo, "sw", "to-ga", &scratch.dir.join("crash.pcap"));
    // Enough pings to outlast every kill and restart; stopped (SIGINT: it prints its summary)
    // once the last restart forwards again.
    let mut pinger = topo.command("ha", std::path::Path::new("ping"));
    pinger
        .args(["-n", "-q", "-i", &INTERVAL.to_string(), "10.2.0.2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let pinger = pinger.spawn().unwrap();
    let started = Instant::now();
    let mut downtime = Duration::ZERO;
    for kill in 1..=KILLS {
        let run_for = Duration::from_millis(200 + rng.below(1300));
        std::thread::sleep(run_for);
        let down_for = Duration::from_millis(rng.below(300));
        let at = Instant::now();
        ga.kill9();
        std::thread::sleep(down_for);
        ga.spawn(&topo);
        let restart = at.elapsed();
        downtime += restart;
        eprintln!(
            "kill {kill:2}: after {:4} ms of running, down {:3} ms, back in {:4} ms",
            run_for.as_millis(),
            down_for.as_millis(),
            restart.as_millis()
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    topo.wait_reachable("ha", "10.2.0.2", 10);
    let _ = std::process::Command::new("kill").args(["-INT", &pinger.id().to_string()]).status();
    let out = pinger.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    let elapsed = started.elapsed();

    // "1234 packets transmitted, 1200 received, ..."
    let line = summary.lines().find(|l| l.contains("transmitted")).unwrap_or_else(|| panic!("ping said: {summary}"));
    let counts: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
    let (tx, rx) = (counts[0], counts[1]);
    let lost = tx - rx;
    // What the restarts may cost: the time A was down (kill to running again) plus half a second
    // per restart for the first packets through, at the ping rate.
    let allowed = ((downtime.as_secs_f64() + 0.5 * KILLS as f64) / INTERVAL) as u64;

    let frames = esp_frames(&cap.finish());
    let seqs: Vec<u32> = frames.iter().filter(|e| e.spi == SPI_AB4).map(|e| e.seq).collect();
    let distinct: HashSet<u32> = seqs.iter().copied().collect();
    // An incarnation's numbers run on one by one; the next starts past the block reserved before.
    let block = rampart_sadb::SEQ_BLOCK as u32;
    let mut incarnations: Vec<(u32, u32, usize)> = Vec::new();
    for &s in &seqs {
        match incarnations.last_mut() {
            Some((_, last, n)) if s > *last && s - *last < block / 2 => {
                *last = s;
                *n += 1;
            }
            _ => incarnations.push((s, s, 1)),
        }
    }
    eprintln!(
        "crash faults: {KILLS} kills in {:.1} s; ping {rx}/{tx} received, {lost} lost ({:.1}%, allowed {allowed}); \
         A down {:.2} s in all",
        elapsed.as_secs_f64(),
        100.0 * lost as f64 / tx.max(1) as f64,
        downtime.as_secs_f64()
    );
    for (i, (first, last, n)) in incarnations.iter().enumerate() {
        eprintln!("  incarnation {i:2}: sequence numbers {first}..={last} ({n} packets)");
    }

    assert_eq!(distinct.len(), seqs.len(), "a sequence number was reused on the wire");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "sequence numbers went backwards after a restart");
    assert!(incarnations.len() > KILLS, "{} incarnations seen on the wire for {KILLS} kills", incarnations.len());
    assert_eq!(replays(&gb), r0, "gateway B counted replays");
    assert!(rx > 0 && lost <= allowed, "lost {lost} of {tx}, more than the restarts explain ({allowed})");
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "5", "-i", "0.1"]).1, 5, "forwarding after the last restart");
    assert!(ga.stop(), "{}", ga.log_text());
}
