//! The shipped deployment files agree with the code: the Grafana dashboard queries only metric
//! families and labels that the schema declares and shows every family; the systemd units keep
//! the sandbox the design asks for (capabilities limited to what AF_XDP, BPF and the IKE ports
//! need, never CAP_SYS_ADMIN, a read-only system, the SA database writable and never removed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rampart_telemetry::schema::{self, Kind, MetricDef};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The family a name in a query refers to (histograms and summaries have suffixed series).
fn family(name: &str) -> Option<&'static MetricDef> {
    if let Some(d) = schema::find(name) {
        return Some(d);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(d) = schema::find(base)
        {
            let ok = match d.kind {
                Kind::Histogram { .. } => true,
                Kind::Quantiles => suffix != "_bucket",
                _ => false,
            };
            if ok {
                return Some(d);
            }
        }
    }
    None
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "expr" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    exprs(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(p) = expr[i..].find("rampart_") {
        let start = i + p;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}

/// Label names in `by (...)`, `{label=...}` and legend templates are checked against the
/// families of the same query.
fn labels_used(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(p) = rest.find("by (") {
        let inner = &rest[p + 4..];
        let close = inner.find(')').unwrap();
        out.extend(inner[..close].split(',').map(|s| s.trim().to_string()));
        rest = &inner[close..];
    }
    let mut rest = expr;
    while let Some(p) = rest.find('{') {
        let inner = &rest[p + 1..];
        let close = inner.find('}').unwrap();
        for m in inner[..close].split(',') {
            if let Some((k, _)) = m.split_once(['=', '!']) {
                out.insert(k.trim().trim_end_matches('~').to_string());
            }
        }
        rest = &inner[close..];
    }
    out
}

#[test]
fn dashboard_shows_every_declared_family_and_nothing_else() {
    let text = std::fs::read_to_string(deploy().join("grafana/rampart.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut all = Vec::new();
    exprs(&dash["panels"], &mut all);
    assert!(all.len() > 20);
    let mut shown = BTreeSet::new();
    for e in &all {
        let names = metric_names(e);
        assert!(!names.is_empty(), "query without a Rampart metric: {e}");
        let defs: Vec<&MetricDef> =
            names.iter().map(|n| family(n).unwrap_or_else(|| panic!("{n} in {e:?} is not declared"))).collect();
        for d in &defs {
            shown.insert(d.name);
        }
        let known: BTreeSet<&str> =
            defs.iter().flat_map(|d| d.labels.iter().copied()).chain(["le", "instance", "job"]).collect();
        for l in labels_used(e) {
            let l = l.as_str();
            assert!(known.contains(l) || l == "quantile", "label {l} in {e:?} is not a label of its families");
        }
    }
    let declared: BTreeSet<&str> = schema::ALL.iter().map(|d| d.name).collect();
    let missing: Vec<&&str> = declared.difference(&shown).collect();
    assert!(missing.is_empty(), "families without a panel: {missing:?}");
    // The template variables use declared families too.
    let mut vars = Vec::new();
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            vars.extend(metric_names(q));
        }
    }
    for n in vars {
        assert!(family(&n).is_some(), "template variable uses {n}");
    }
}

fn unit(name: &str) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(deploy().join("systemd").join(name)).unwrap();
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{name}: {line}"));
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}

fn words(u: &BTreeMap<String, Vec<String>>, key: &str) -> BTreeSet<String> {
    u.get(key).into_iter().flatten().flat_map(|v| v.split_whitespace().map(str::to_string)).collect()
}

#[test]
fn units_keep_their_sandbox() {
    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    let dataplane_caps = set(&["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK"]);
    let ike_caps = set(&["CAP_NET_BIND_SERVICE"]);
    let both: BTreeSet<String> = dataplane_caps.union(&ike_caps).cloned().collect();
    for (name, caps, cmd) in [
        ("rampart-dataplane.service", &dataplane_caps, "dataplane"),
        ("rampart-ike.service", &ike_caps, "ike"),
        ("rampart.service", &both, "run"),
    ] {
        let u = unit(name);
        let one = |k: &str| u.get(k).and_then(|v| v.last()).map(String::as_str).unwrap_or("");
        assert_eq!(&words(&u, "CapabilityBoundingSet"), caps, "{name}");
        assert_eq!(&words(&u, "AmbientCapabilities"), caps, "{name}");
        assert!(!words(&u, "CapabilityBoundingSet").contains("CAP_SYS_ADMIN"), "{name}");
        for (k, v) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("RemoveIPC", "no"),
            ("User", "rampart"),
        ] {
            assert_eq!(one(k), v, "{name}: {k}");
        }
        assert!(words(&u, "ReadWritePaths").contains("/dev/shm"), "{name}: the SA database must be writable");
        let families = words(&u, "RestrictAddressFamilies");
        let allowed = set(&["AF_XDP", "AF_NETLINK", "AF_INET", "AF_INET6", "AF_UNIX"]);
        assert!(families.is_subset(&allowed) && !families.is_empty(), "{name}: {families:?}");
        assert_eq!(families.contains("AF_XDP"), caps.contains("CAP_NET_RAW"), "{name}: AF_XDP only for the data plane");
        let filters = &u["SystemCallFilter"];
        assert!(filters[0].starts_with("@system-service"), "{name}: an allow list first");
        assert!(filters[1..].iter().all(|f| f.starts_with('~')), "{name}: then only removals");
        if caps.contains("CAP_IPC_LOCK") {
            assert_eq!(one("LimitMEMLOCK"), "infinity", "{name}");
        }
        let exec = one("ExecStart");
        assert!(exec.starts_with(&format!("/usr/bin/rampart {cmd} ")), "{name}: {exec}");
    }
}

#[test]
fn tune_script_changes_nothing_unless_told() {
    let script = deploy().join("tune.sh");
    let out = std::process::Command::new("bash").arg(&script).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "without --dry-run or --apply it must refuse");
    let text = std::fs::read_to_string(&script).unwrap();
    // Every change goes through `run` or `write`, which only print in --dry-run.
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        for verb in ["ethtool -L", "ethtool -K"] {
            if line.contains(verb) {
                assert!(
                    line.starts_with("run ") || line.contains("ethtool -l") || line.contains("ethtool -k"),
                    "{line}"
                );
            }
        }
        assert!(!line.contains("> /proc") && !line.contains("> /sys"), "direct write: {line}");
    }
}
