//! `rampart ctl`: talks to a running IKE daemon over its control socket (one JSON object per
//! line; the protocol is in `rampart_ike_daemon::control`) and prints the answer for people,
//! or as it came with `--json`. It changes nothing itself and never sees a key.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use rampart_ike_daemon::control::{Request, call};
use serde_json::Value;

use super::CmdError;

/// `rampart ctl`.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The daemon's control socket.
    #[arg(long, short, env = "RAMPART_CTL", default_value = "/run/rampart/ike.sock", global = true)]
    socket: PathBuf,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Subcommand, Debug)]
enum CtlCommand {
    /// IKE SAs and their CHILD_SAs.
    ListSas,
    /// Start a connection, or one child of a connection.
    Initiate {
        /// Connection or child name.
        name: String,
    },
    /// Delete the IKE SAs of a connection, or the CHILD_SAs of a child.
    Terminate {
        /// Connection or child name.
        name: String,
    },
    /// Read the configuration file again and apply the difference.
    Reload,
    /// The process's metrics (both planes under `rampart run`), as `/stats` shows them.
    Stats,
    /// Certificates, CAs and CRLs the daemon loaded (as `swanctl --list-certs`).
    ListCerts,
}

/// Runs `rampart ctl`.
pub fn run(args: CtlArgs) -> Result<(), CmdError> {
    let request = match &args.command {
        CtlCommand::ListSas => Request::ListSas,
        CtlCommand::Initiate { name } => Request::Initiate { name: name.clone() },
        CtlCommand::Terminate { name } => Request::Terminate { name: name.clone() },
        CtlCommand::Reload => Request::Reload,
        CtlCommand::Stats => Request::Stats,
        CtlCommand::ListCerts => Request::ListCerts,
    };
    let r = call(&args.socket, &request, Duration::from_secs(60))
        .map_err(|e| CmdError(format!("{}: {e} (is `rampart ike` running?)", args.socket.display())))?;
    if !r.ok {
        return Err(CmdError(r.error.unwrap_or_else(|| "request failed".into())));
    }
    let result = r.result.unwrap_or(Value::Null);
    if args.json {
        println!("{result}");
        return Ok(());
    }
    match args.command {
        CtlCommand::ListSas => print!("{}", render_sas(&result)),
        CtlCommand::Stats => print_stats(&result),
        CtlCommand::ListCerts => print!("{}", render_certs(&result)),
        CtlCommand::Reload => {
            for k in ["added", "removed", "changed", "unchanged", "credentials_reloaded"] {
                let names: Vec<&str> =
                    result[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                println!("{k:9}  {}", if names.is_empty() { "-".to_string() } else { names.join(", ") });
            }
        }
        CtlCommand::Initiate { name } => println!("{name}: initiating (IKE SA #{})", result["ike"]),
        CtlCommand::Terminate { name } => {
            let n = result["ike_sas"].as_u64().or_else(|| result["child_sas"].as_u64()).unwrap_or(0);
            println!("{name}: deleting {n} SA(s)");
        }
    }
    Ok(())
}

/// The process's metrics as `/stats` shows them (one row per sample name, the worker label as
/// columns), then the daemon's details that are not metrics. The daemon's counters under their
/// older names (still in the JSON answer for programs) are not printed twice.
fn print_stats(v: &Value) {
    let Value::Object(m) = v else { return };
    if let Some(table) = m.get("table").and_then(Value::as_str) {
        print!("{table}");
    }
    let counters: Vec<&str> = rampart_ike_daemon::stats::Counters::help().into_iter().map(|(n, _)| n).collect();
    let details: Vec<(&String, &Value)> = m
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "table" | "metrics") && !counters.contains(&k.as_str()))
        .collect();
    if !details.is_empty() {
        println!();
        let width = details.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in details {
            println!("{k:width$}  {v}");
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// A duration in seconds as swanctl prints it: `45s`, `12m 5s`, `3h 59m`.
fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// "rekeying in 3h 59m, expires in 4h 23m" from `rekey_in_s` / `expire_in_s` (either may be
/// null: no rekey, no hard lifetime).
fn times(v: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(r) = v["rekey_in_s"].as_u64() {
        parts.push(format!("rekeying in {}", span(r)));
    }
    if let Some(e) = v["expire_in_s"].as_u64() {
        parts.push(format!("expires in {}", span(e)));
    }
    if parts.is_empty() { "no rekey, no expiry".into() } else { parts.join(", ") }
}

/// Splits "192.0.2.1:500" / "[2001:db8::1]:4500" into ("192.0.2.1", "500").
fn addr_port(v: &Value) -> (String, String) {
    let a = s(v);
    match a.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']').to_string(), p.to_string()),
        None => (a.to_string(), String::new()),
    }
}

/// `swanctl --list-sas` style: per IKE SA its addresses and ports with the identities, the
/// algorithms and DH group, NAT-T, rekey and expiry; per CHILD_SA its mode and encapsulation,
/// protocol and suite (`ESP:aes256gcm16`, `AH:sha256`), PFS group, times, and the bytes and
/// packets the data plane counted each way.
fn render_sas(v: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Some(sas) = v.as_array() else { return out };
    if sas.is_empty() {
        let _ = writeln!(out, "no IKE SAs");
    }
    for sa in sas {
        let nat = match (sa["nat_local"].as_bool() == Some(true), sa["nat_remote"].as_bool() == Some(true)) {
            (true, true) => ", NAT-T (both behind a NAT)",
            (true, false) => ", NAT-T (we are behind a NAT)",
            (false, true) => ", NAT-T (the peer is behind a NAT)",
            (false, false) => "",
        };
        let _ = writeln!(
            out,
            "{}: #{}, {}, IKEv2, {}_i{} {}_r{}{nat}",
            s(&sa["connection"]),
            sa["ike"],
            s(&sa["state"]).to_uppercase(),
            s(&sa["spi_i"]),
            if sa["initiator"].as_bool() == Some(true) { "*" } else { "" },
            s(&sa["spi_r"]),
            if sa["initiator"].as_bool() == Some(true) { "" } else { "*" },
        );
        let ((la, lp), (ra, rp)) = (addr_port(&sa["local"]), addr_port(&sa["remote"]));
        let _ = writeln!(out, "  local  '{}' @ {la}[{lp}]", s(&sa["local_id"]));
        let _ = writeln!(out, "  remote '{}' @ {ra}[{rp}]", sa["remote_id"].as_str().unwrap_or("%any"));
        if let Some(p) = sa["proposal"].as_str() {
            let _ = writeln!(out, "  {p} (DH group {})", s(&sa["dh_group"]));
        }
        let _ = writeln!(out, "  {}", times(sa));
        for c in sa["children"].as_array().into_iter().flatten() {
            let join = |k: &str| -> String {
                c[k].as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            let mode = s(&c["mode"]).to_uppercase();
            let encap = match (c["encap"]["local_port"].as_u64(), c["encap"]["remote_port"].as_u64()) {
                (Some(l), Some(r)) => format!("-in-UDP {l}->{r}"),
                _ => String::new(),
            };
            let mut esp = match c["protocol"].as_str() {
                Some("ah") => format!("AH:{}", s(&c["ah"])),
                _ => format!("ESP:{}", s(&c["esp"])),
            };
            if let Some(g) = c["pfs"].as_str() {
                esp.push_str(&format!(", PFS {g}"));
            }
            if c["esn"].as_bool() == Some(true) {
                esp.push_str(", ESN");
            }
            let _ = writeln!(
                out,
                "  {}: #{}, {}, {mode}{encap}, {esp}{}",
                s(&c["name"]),
                c["id"],
                s(&c["state"]).to_uppercase(),
                if c["outbound"].as_bool() == Some(true) { "" } else { " (not sending)" }
            );
            let _ = writeln!(out, "    {}", times(c));
            let _ = writeln!(
                out,
                "    in  {}, {:>10} bytes, {:>8} packets",
                s(&c["spi_in"]),
                c["bytes_in"].as_u64().unwrap_or(0),
                c["packets_in"].as_u64().unwrap_or(0)
            );
            let _ = writeln!(
                out,
                "    out {}, {:>10} bytes, {:>8} packets",
                s(&c["spi_out"]),
                c["bytes_out"].as_u64().unwrap_or(0),
                c["packets_out"].as_u64().unwrap_or(0)
            );
            let _ = writeln!(out, "    local  {}", join("local_ts"));
            let _ = writeln!(out, "    remote {}", join("remote_ts"));
        }
    }
    out
}

/// `list-certs` for people, as `swanctl --list-certs` lays it out.
fn render_certs(v: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in v.as_array().into_iter().flatten() {
        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
        match c["kind"].as_str() {
            Some("x509crl") => {
                let _ = writeln!(out, "CRL  issuer \"{}\", {} revoked  ({})", s("issuer"), c["revoked"], s("file"));
            }
            _ => {
                let _ =
                    writeln!(out, "{}  subject \"{}\"", if c["ca"] == true { "CA  " } else { "cert" }, s("subject"));
                let _ = writeln!(out, "      issuer  \"{}\"", s("issuer"));
                let _ = writeln!(out, "      serial  {}", s("serial"));
                let _ = writeln!(
                    out,
                    "      valid   {} .. {}{}",
                    c["not_before"],
                    c["not_after"],
                    if c["expired"] == true { "  (expired)" } else { "" }
                );
                let alt: Vec<&str> =
                    c["alt_names"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                if !alt.is_empty() {
                    let _ = writeln!(out, "      altNames {}", alt.join(", "));
                }
                let _ = writeln!(
                    out,
                    "      key     {}{}  ({}){}",
                    s("key"),
                    if c["has_private_key"] == true { ", has private key" } else { "" },
                    s("file"),
                    c["used_by"].as_array().filter(|a| !a.is_empty()).map_or(String::new(), |a| format!(
                        "  used by {}",
                        a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                    ))
                );
            }
        }
    }
    if out.is_empty() {
        out.push_str("no certificates loaded\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_swanctl() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(725), "12m 5s");
        assert_eq!(span(14_340), "3h 59m");
        assert_eq!(addr_port(&Value::from("[2001:db8::1]:4500")), ("2001:db8::1".into(), "4500".into()));
        assert_eq!(times(&serde_json::json!({ "rekey_in_s": 60, "expire_in_s": null })), "rekeying in 1m 0s");
    }

    /// Two endpoints (A initiating) with one child each made by `child(mine, theirs)`: A's
    /// `list-sas` answer once the tunnel is up.
    fn list_sas_of_a_tunnel(child: impl Fn(&str, &str) -> rampart_ike::ChildConfig) -> Value {
        use rampart_ike::crypto::SeededRandom;
        use rampart_ike::message::Identification;
        use rampart_ike::proposal::parse_ike_proposals;
        use rampart_ike::{ConnectionConfig, Endpoint, EndpointConfig};
        let conn = |me: &str, peer: &str, mine: &str, theirs: &str| {
            let mut c = ConnectionConfig::psk(
                "gw",
                Identification::fqdn(&format!("{me}.test")),
                Some(Identification::fqdn(&format!("{peer}.test"))),
                b"a pre-shared key for the test",
            );
            c.local_addrs = vec![if me == "a" { "192.0.2.1" } else { "192.0.2.2" }.parse().unwrap()];
            c.remote_addrs = vec![if me == "a" { "192.0.2.2" } else { "192.0.2.1" }.parse().unwrap()];
            c.proposals = parse_ike_proposals("aes256-sha256-modp3072").unwrap();
            let mut child = child(mine, theirs);
            child.rekey_time = std::time::Duration::from_secs(3600);
            c.children = vec![child];
            c
        };
        let now = std::time::Instant::now();
        let mut a = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(1)));
        a.add_connection(conn("a", "b", "198.18.1.0", "198.18.2.0"));
        let mut b = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(2)));
        b.add_connection(conn("b", "a", "198.18.2.0", "198.18.1.0"));
        a.initiate(now, "gw", None).unwrap();
        for _ in 0..10 {
            while let Some(t) = a.poll_transmit() {
                b.handle(now, t.to, t.from, &t.bytes);
            }
            while let Some(t) = b.poll_transmit() {
                a.handle(now, t.to, t.from, &t.bytes);
            }
        }
        rampart_ike_daemon::list_sas(&a, &rampart_ike_daemon::database::Database::none(), now)
    }

    fn ts(a: &str) -> rampart_sa::TrafficSelector {
        rampart_sa::TrafficSelector::from_prefix(a.parse().unwrap(), 24)
    }

    /// Two endpoints bring a tunnel up (PFS-less AES-GCM over a modp3072 IKE SA); what the
    /// daemon answers to `list-sas` is rendered as an operator reads it.
    #[test]
    fn list_sas_shows_algorithms_nat_times_and_counters() {
        use rampart_ike::proposal::parse_esp_proposals;
        let json = list_sas_of_a_tunnel(|mine, theirs| {
            rampart_ike::ChildConfig::new(
                "net",
                vec![ts(mine)],
                vec![ts(theirs)],
                parse_esp_proposals("aes256gcm16").unwrap(),
            )
        });
        let sa = &json[0];
        assert_eq!(sa["proposal"], "aes256-sha256-prfsha256-modp3072");
        assert_eq!(sa["dh_group"], "modp3072");
        assert_eq!((sa["nat_t"].as_bool(), sa["local_port"].as_u64()), (Some(false), Some(500)));
        let child = &sa["children"][0];
        assert_eq!((child["esp"].as_str(), child["mode"].as_str()), (Some("aes256gcm16"), Some("tunnel")));
        assert_eq!(child["bytes_in"], 0, "no data plane: nothing counted");
        let text = render_sas(&json);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("gw: #1, ESTABLISHED, IKEv2, ") && lines[0].contains("_i* "), "{text}");
        assert_eq!(lines[1], "  local  'a.test' @ 192.0.2.1[500]", "{text}");
        assert_eq!(lines[2], "  remote 'b.test' @ 192.0.2.2[500]", "{text}");
        assert_eq!(lines[3], "  aes256-sha256-prfsha256-modp3072 (DH group modp3072)", "{text}");
        assert!(lines[4].starts_with("  rekeying in 3h ") && lines[4].contains(", expires in 4h "), "{text}");
        assert!(
            lines[5].starts_with("  net: #") && lines[5].ends_with(", INSTALLED, TUNNEL, ESP:aes256gcm16"),
            "{text}"
        );
        assert!(lines[6].starts_with("    rekeying in ") && lines[6].contains("expires in 1h 6m"), "{text}");
        assert!(lines[7].starts_with("    in  ") && lines[7].ends_with("0 bytes,        0 packets"), "{text}");
        assert!(lines[8].starts_with("    out "), "{text}");
        assert_eq!(lines[9], "    local  198.18.1.0/24", "{text}");
        assert_eq!(lines[10], "    remote 198.18.2.0/24", "{text}");
    }

    /// An AH CHILD_SA: the protocol and its algorithm, with the PFS group and ESN.
    #[test]
    fn list_sas_shows_the_ah_protocol_and_algorithm() {
        use rampart_ike::proposal::parse_ah_proposals;
        let json = list_sas_of_a_tunnel(|mine, theirs| {
            rampart_ike::ChildConfig::ah(
                "net",
                vec![ts(mine)],
                vec![ts(theirs)],
                parse_ah_proposals("aes256gmac-esn").unwrap(),
            )
        });
        let child = &json[0]["children"][0];
        assert_eq!((child["protocol"].as_str(), child["ah"].as_str()), (Some("ah"), Some("aes256gmac")));
        assert!(child["esp"].is_null() && child["encap"].is_null());
        let text = render_sas(&json);
        let line = text.lines().find(|l| l.starts_with("  net: #")).unwrap_or_default();
        assert!(line.ends_with(", INSTALLED, TUNNEL, AH:aes256gmac, ESN"), "{text}");
    }
}
