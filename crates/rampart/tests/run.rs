//! `rampart run` through the built binary: `--check` of the README's example and of a mistake
//! in each part of the file (the file, the line and the reason in the answer); as root, in the
//! demo's layout: a second instance refused on the taken metrics port before it attaches
//! anything (the first one undisturbed), a reload with a broken `[dataplane]` table refused (the
//! running configuration stays), and clean stops on SIGTERM and SIGINT (XDP programs detached,
//! the SA database kept for the next start).

mod run_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use run_support::*;

/// The ```toml block under "Small sites" in the crate's README.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let from = readme.find("**Small sites: one process**").expect("the README's section");
    let block = &readme[from..];
    let start = block.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = block[start..].find("```").unwrap();
    block[start..start + end].to_string()
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("rampart-run-test-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check(path: &Path) -> (bool, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_rampart")).args(["run", "--check", "--config"]).arg(path).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn check_takes_the_readme_example_and_names_file_line_and_reason() {
    // Core numbers are the target machine's: check the rest with core 0.
    let example = readme_example().replace("cores = [1]", "cores = [0]");
    let f = TempFile::new("good.toml", &example);
    let (ok, out) = check(&f.0);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok (1 connections; data plane on lan0 and wan0, cores [0]; SA database /dev/shm/rampart.sadb)"),
        "{out}"
    );

    for (name, from, to, reason) in [
        ("dp.toml", "xdp_mode = \"native\"", "xdp_mode = \"fast\"", "'xdp_mode' must be native or generic"),
        ("ike.toml", "remote_ts = \"10.0.0.0/16\"", "remote_ts = \"10.0.0.0/33\"", "remote_ts"),
        ("top.toml", "log_format = \"auto\"", "log_format = \"xml\"", "log format"),
        ("db.toml", "cores = [0]", "cores = [0]\ndatabase = \"/dev/shm/x.sadb\"", "[daemon] database"),
        (
            "weak.toml",
            "proposals = \"aes256gcm16-prfsha256-x25519\"",
            "proposals = \"3des-sha1-modp1024\"",
            "proposals",
        ),
    ] {
        let text = example.replace(from, to);
        assert_ne!(text, example, "{name}");
        let f = TempFile::new(name, &text);
        let (ok, out) = check(&f.0);
        assert!(!ok, "{name} was accepted: {out}");
        let want = format!("{}:{}:", f.0.display(), line_of(&text, to.lines().last().unwrap()));
        assert!(out.contains(&want), "{name}: expected {want} in {out}");
        assert!(out.contains(reason), "{name}: {out}");
        assert!(!out.contains("replace with 32 random bytes"), "{name}: the secret was repeated: {out}");
    }
    // Secrets readable by everyone are refused.
    let f = TempFile::new("open.toml", &example);
    std::fs::set_permissions(&f.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = check(&f.0);
    assert!(!ok && out.contains(&f.0.display().to_string()), "{out}");
}

fn xdp_attached(net: &Net, ns: Ns) -> bool {
    let out = sh(&["ip", "-n", &net.ns(ns), "-d", "link", "show", "lan0"]);
    out.contains("xdp") || out.contains("prog/xdp")
}

#[test]
fn second_instance_bad_reload_and_clean_stops() {
    if !can_run("second_instance_bad_reload_and_clean_stops") {
        return;
    }
    let net = Net::new("ru", 1);
    let config = net.config(Ns::Hub, &[0], 0);
    let mut hub = Gateway::start(&net, Ns::Hub, &config);
    assert!(wait_until(secs(5), || xdp_attached(&net, Ns::Hub)), "no XDP program on lan0:\n{}", hub.log());
    assert!(hub.http_get("/metrics").contains("rampart_worker_info"));

    // A second `rampart run` with the same file in the same namespace: refused on the metrics
    // port before it touches anything; the first keeps serving.
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(Ns::Hub), env!("CARGO_BIN_EXE_rampart"), "run", "--config"])
        .arg(&hub.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("metrics endpoint 127.0.0.1:9184"), "{err}");
    assert!(hub.alive() && xdp_attached(&net, Ns::Hub));
    assert!(hub.http_get("/metrics").contains("rampart_worker_info"));
    assert!(!hub.ctl(rampart_ike_daemon::control::Request::Stats).is_null());

    // A reload with a mistake in the data plane's table is refused with its line; the running
    // configuration stays.
    let broken = config.replace("ring_size = 2048", "ring_size = 1000");
    std::fs::write(&hub.config, &broken).unwrap();
    let (ok, out) = hub.ctl_cli(&["reload"]);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("{}:{}:", hub.config.display(), line_of(&broken, "ring_size"))), "{out}");
    assert!(out.contains("ring size 1000"), "{out}");
    std::fs::write(&hub.config, &config).unwrap();
    let (ok, out) = hub.ctl_cli(&["reload"]);
    assert!(ok && out.contains("unchanged  site0"), "{out}");

    // SIGTERM: a clean stop, XDP detached, the database kept.
    let status = hub.signal_and_wait("TERM");
    assert!(status.success(), "{status}:\n{}", hub.log());
    assert!(!xdp_attached(&net, Ns::Hub), "XDP still attached after SIGTERM");
    assert!(hub.log().contains("stopped (XDP programs detached, sockets closed)"), "{}", hub.log());
    assert!(net.database(Ns::Hub).exists(), "the SA database must outlive the process");

    // Started again on the same database, stopped with SIGINT.
    let mut again = Gateway::start(&net, Ns::Hub, &config);
    assert!(wait_until(secs(5), || xdp_attached(&net, Ns::Hub)));
    let status = again.signal_and_wait("INT");
    assert!(status.success(), "{status}:\n{}", again.log());
    assert!(!xdp_attached(&net, Ns::Hub), "XDP still attached after SIGINT");
}
