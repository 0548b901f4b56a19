//! `rampart demo` as CI runs it, as root: 10 tunnels, 5 seconds of traffic. The summary must
//! show every tunnel up and carrying traffic both ways with nothing lost, the data planes must
//! have encrypted and decrypted what the agents counted, and nothing the demo made may be left
//! behind (namespaces, processes, SA databases, its directory).

use std::process::Command;

use serde_json::Value;

#[path = "../../../tests/support/process.rs"]
#[allow(dead_code)]
mod process;
use process::is_root as root;

fn leftovers(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let tag = format!("rdemo{pid}-");
    out.extend(String::from_utf8_lossy(&ns.stdout).lines().filter(|l| l.starts_with(&tag)).map(String::from));
    for entry in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&tag) {
            out.push(format!("/dev/shm/{name}"));
        }
    }
    let dir = std::env::temp_dir().join(format!("rampart-demo-{pid}"));
    if dir.exists() {
        out.push(dir.display().to_string());
    }
    out
}

#[test]
fn demo_brings_up_every_tunnel_and_loses_nothing() {
    if !root() {
        eprintln!("SKIPPED demo_brings_up_every_tunnel_and_loses_nothing: needs root (network namespaces, XDP)");
        return;
    }
    let json = std::env::temp_dir().join(format!("rampart-demo-test-{}.json", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--tunnels", "10", "--duration", "5", "--rate", "5000", "--json"])
        .arg(&json)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rampart demo");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rampart demo failed:\n{text}");
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);

    assert!(text.contains("tunnels up        10/10"), "{text}");
    assert_eq!(summary["tunnels_up"], 10, "{summary}");
    // Every site on the hub's one PSK template, its key found by its identity.
    assert_eq!(summary["hub_connections"], serde_json::json!({ "branches-psk": 10 }), "{summary}");
    for dir in ["hub_to_sites", "sites_to_hub"] {
        let d = &summary[dir];
        assert_eq!(d["tunnels_passing"], 10, "{dir}: {summary}");
        assert_eq!(d["sent"], 25_000, "{dir}: {summary}");
        assert_eq!(d["received"], d["sent"], "{dir} lost packets: {summary}");
        assert_eq!(d["lost"], 0, "{dir}: {summary}");
        assert_eq!(d["duplicates"], 0, "{dir}: {summary}");
        let p50 = d["latency_us"]["p50"].as_f64().unwrap();
        let max = d["latency_us"]["max"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= max, "{dir}: {summary}");
    }
    // The data planes agree with the agents: each packet encrypted once and decrypted once,
    // nothing dropped during the measured run.
    assert!(summary["drops"]["hub"].as_object().unwrap().is_empty(), "{summary}");
    assert!(summary["drops"]["branch"].as_object().unwrap().is_empty(), "{summary}");
    assert!(text.contains("hub data plane    encrypted 25,000 decrypted 25,000; drops: none"), "{text}");
    assert!(text.contains("ip netns exec rdemo"), "the summary says where the metrics are:\n{text}");
    let left = leftovers(pid);
    assert!(left.is_empty(), "the demo left {left:?} behind");
}

/// `--auth mixed`: 100 sites with certificates from the run's CA and 100 with a pre-shared key
/// each come up at the same time on the hub's two `%any` templates (picked by each site's
/// identity, selectors narrowed to its subnet), and every tunnel carries traffic both ways
/// through both data planes; the keys go with the scratch folder.
#[test]
fn demo_with_certificate_and_psk_sites_on_one_template_each() {
    if !root() {
        eprintln!(
            "SKIPPED demo_with_certificate_and_psk_sites_on_one_template_each: needs root (network namespaces, XDP)"
        );
        return;
    }
    let json = std::env::temp_dir().join(format!("rampart-demo-cert-{}.json", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--auth", "mixed", "--tunnels", "200", "--duration", "2", "--rate", "4000", "--json"])
        .arg(&json)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rampart demo");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "rampart demo --auth mixed failed:\n{text}");
    let summary: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert!(text.contains("101 certificates (ECDSA P-256)"), "{text}");
    assert!(text.contains("(IKEv2 certificates, ECDSA P-256, and PSK"), "{text}");
    assert_eq!((summary["auth"].as_str(), summary["tunnels_up"].as_u64()), (Some("mixed"), Some(200)), "{summary}");
    assert_eq!(
        summary["hub_connections"],
        serde_json::json!({ "branches-cert": 100, "branches-psk": 100 }),
        "{summary}"
    );
    for dir in ["hub_to_sites", "sites_to_hub"] {
        assert_eq!(summary[dir]["tunnels_passing"], 200, "{dir}: {summary}");
        assert_eq!(summary[dir]["lost"], 0, "{dir}: {summary}");
    }
    let left = leftovers(pid);
    assert!(left.is_empty(), "the demo left {left:?} behind (its scratch folder holds the keys)");
}

#[test]
fn demo_refuses_bad_arguments_before_touching_anything() {
    for args in [&["--tunnels", "0"][..], &["--duration", "0"], &["--size", "10"], &["--tunnels", "999999"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart")).arg("demo").args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
