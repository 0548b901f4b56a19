//! The data-plane traffic benchmark: an AF_XDP generator and sink on the hosts of the
//! host A - gateway A - gateway B - host B namespace topology (`scripts/topology.sh`), a
//! no-crypto AF_XDP forwarder as the I/O ceiling, and the orchestration that measures every
//! gateway kind side by side in one run (`bin/traffic.rs`).
//!
//! | module | what |
//! |---|---|
//! | [`packet`] | test packets (UDP/IPv4, UDP/IPv6 with a run id, sequence number and send time), the sink's parser |
//! | [`generator`] | the generator (AF_XDP transmit, paced or flat out) |
//! | [`sink`] | the sink (AF_XDP receive; loss, duplicates, reordering, HDR latency histogram) |
//! | [`fwd`] | the no-crypto AF_XDP forwarder (Rampart's I/O path without ESP) |
//! | [`orchestrate`] | topologies, gateway arms, trials, throughput search, the report |
//!
//! Nothing here sends traffic anywhere but into the network namespaces the orchestrator creates
//! and removes; nothing here asserts on a timing.

pub mod fwd;
pub mod generator;
pub mod orchestrate;
pub mod packet;
pub mod sink;

/// CLOCK_MONOTONIC in nanoseconds: the clock of the send timestamps and of the sink, one clock
/// for every process on the machine (network namespaces do not change it).
#[inline]
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Binds an AF_XDP socket to queue 0, retrying for up to two seconds while the kernel answers
/// `EBUSY`: the previous trial's socket on the same queue is released by deferred kernel work,
/// which a loaded machine may run late.
pub fn bind_retrying(
    umem: &rampart_nic::Umem,
    ifindex: u32,
    config: &rampart_nic::XskConfig,
) -> rampart_nic::Result<rampart_nic::XskSocket> {
    let deadline = now_ns() + 2_000_000_000;
    loop {
        match rampart_nic::XskSocket::bind(umem, ifindex, 0, config) {
            Err(e) if e.raw_os_error() == Some(16) && now_ns() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// End to end over a bare veth pair (no gateways): the generator's own count against the sink's.
/// Needs root; without it the test prints a loud notice and passes without testing.
#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use super::generator::{GenConfig, GenReport};
    use super::packet::{Endpoints, Size};
    use super::sink::{SinkConfig, SinkReport};

    const MAC_A: [u8; 6] = [2, 0, 0, 0x7e, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0x7e, 0, 2];

    fn mac(m: [u8; 6]) -> String {
        m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    struct Pair(String, String);

    impl Drop for Pair {
        fn drop(&mut self) {
            for ns in [&self.0, &self.1] {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }

    /// Runs in a child process inside a namespace (started by the test below through
    /// `ip netns exec <this test binary> --exact ... --ignored`): the generator or the sink.
    #[test]
    #[ignore = "helper of gen_and_sink_agree_over_a_veth_pair, run in a namespace"]
    fn helper_in_namespace() {
        let Ok(role) = std::env::var("TRAFFIC_TEST_ROLE") else { return };
        let size = Size::parse(&std::env::var("TRAFFIC_TEST_SIZE").unwrap()).unwrap();
        let v6 = std::env::var("TRAFFIC_TEST_V6").is_ok();
        let (src, dst) = if v6 { ("fd7e::1", "fd7e::2") } else { ("10.126.0.1", "10.126.0.2") };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if role == "sink" {
            let cfg = SinkConfig {
                iface: "tb".into(),
                addresses: vec![dst.parse().unwrap()],
                run: 77,
                generic: false,
                max_seconds: 30.0,
            };
            let s = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                s.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let r = super::sink::run(&cfg, &stop, || {
                println!("\nREADY");
                let _ = std::io::stdout().flush();
            })
            .unwrap();
            println!("\nRESULT {}", r.to_json());
        } else {
            let cfg = GenConfig {
                iface: "ta".into(),
                endpoints: Endpoints {
                    src_mac: MAC_A,
                    dst_mac: MAC_B,
                    src: src.parse().unwrap(),
                    dst: dst.parse().unwrap(),
                },
                size,
                rate: Some(5000.0),
                seconds: 1.0,
                run: 77,
                burst: 32,
            };
            let r = super::generator::run(&cfg, &stop).unwrap();
            println!("\nRESULT {}", r.to_json());
        }
    }

    fn result_line(out: &str) -> serde_json::Value {
        let line = out.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("no result in {out}"));
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn gen_and_sink_agree_over_a_veth_pair() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!(
                "\n!!!!!!!! SKIPPED gen_and_sink_agree_over_a_veth_pair: needs root (namespaces, XDP) !!!!!!!!\n"
            );
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let pair = Pair(format!("rtbt{}-a", std::process::id()), format!("rtbt{}-b", std::process::id()));
        ip(&["netns", "add", &pair.0]);
        ip(&["netns", "add", &pair.1]);
        ip(&["-n", &pair.0, "link", "add", "ta", "type", "veth", "peer", "name", "tb", "netns", &pair.1]);
        for (ns, dev, m, v4, v6) in [
            (&pair.0, "ta", MAC_A, "10.126.0.1/24", "fd7e::1/64"),
            (&pair.1, "tb", MAC_B, "10.126.0.2/24", "fd7e::2/64"),
        ] {
            ip(&["-n", ns, "link", "set", dev, "address", &mac(m)]);
            ip(&["-n", ns, "addr", "add", v4, "dev", dev]);
            ip(&["-n", ns, "addr", "add", v6, "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        for (size, v6) in [("64", false), ("imix", true), ("1400", false)] {
            let child = |ns: &str, role: &str| {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(&exe)
                    .args(["--exact", "traffic::tests::helper_in_namespace", "--ignored", "--nocapture"])
                    .env("TRAFFIC_TEST_ROLE", role)
                    .env("TRAFFIC_TEST_SIZE", size)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped());
                if v6 {
                    c.env("TRAFFIC_TEST_V6", "1");
                }
                c.spawn().unwrap()
            };
            let mut sink = child(&pair.1, "sink");
            let mut sink_out = BufReader::new(sink.stdout.take().unwrap());
            let mut text = String::new();
            loop {
                let mut line = String::new();
                assert!(sink_out.read_line(&mut line).unwrap() > 0, "sink ended before it was ready: {text}");
                text.push_str(&line);
                if line.trim() == "READY" {
                    break;
                }
            }
            let generator = child(&pair.0, "gen").wait_with_output().unwrap();
            let gen_text = String::from_utf8_lossy(&generator.stdout).into_owned();
            assert!(generator.status.success(), "generator: {gen_text}");
            let g = GenReport::from_json(&result_line(&gen_text)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            writeln!(sink.stdin.take().unwrap(), "stop").unwrap();
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut sink_out, &mut rest).unwrap();
            assert!(sink.wait().unwrap().success(), "sink: {rest}");
            let s = SinkReport::from_json(&result_line(&rest)).unwrap();

            // 5000 packets/s for a second, paced: all of them, in order, intact.
            assert!((4900..=5100).contains(&g.sent), "{size}: sent {}", g.sent);
            assert_eq!(g.incomplete, 0);
            assert_eq!(s.received, g.sent, "{size} v6={v6}: {s:?}");
            assert_eq!(s.seq_end, g.sent);
            assert_eq!(s.ip_bytes, g.ip_bytes);
            assert_eq!((s.duplicates, s.reordered, s.bad_checksum, s.other_run), (0, 0, 0, 0), "{s:?}");
            assert_eq!(s.latency.count, s.received);
            assert!(s.latency.min > 0 && s.latency.p50 <= s.latency.p99 && s.latency.p99 <= s.latency.max);
            assert!(s.latency.max < 5_000_000_000, "{s:?}");
            let mean = g.ip_bytes as f64 / g.sent as f64;
            let want = Size::parse(size).unwrap().mean();
            assert!((mean - want).abs() < 0.02 * want, "{size}: mean {mean}, expected {want}");
        }
    }
}
