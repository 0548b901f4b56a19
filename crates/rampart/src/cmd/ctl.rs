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
}

/// Runs `rampart ctl`.
pub fn run(args: CtlArgs) -> Result<(), CmdError> {
    let request = match &args.command {
        CtlCommand::ListSas => Request::ListSas,
        CtlCommand::Initiate { name } => Request::Initiate { name: name.clone() },
        CtlCommand::Terminate { name } => Request::Terminate { name: name.clone() },
        CtlCommand::Reload => Request::Reload,
        CtlCommand::Stats => Request::Stats,
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
        CtlCommand::ListSas => print_sas(&result),
        CtlCommand::Stats => print_stats(&result),
        CtlCommand::Reload => {
            for k in ["added", "removed", "changed", "unchanged"] {
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

/// swanctl --list-sas style.
fn print_sas(v: &Value) {
    let Some(sas) = v.as_array() else { return };
    if sas.is_empty() {
        println!("no IKE SAs");
    }
    for sa in sas {
        println!(
            "{}: #{}, {}, {} {} {}{}",
            s(&sa["connection"]),
            sa["ike"],
            s(&sa["state"]),
            s(&sa["local"]),
            if sa["initiator"].as_bool() == Some(true) { "->" } else { "<-" },
            s(&sa["remote"]),
            if sa["nat_local"].as_bool() == Some(true) || sa["nat_remote"].as_bool() == Some(true) {
                " (NAT-T)"
            } else {
                ""
            },
        );
        println!("  spi {}_i {}_r", s(&sa["spi_i"]), s(&sa["spi_r"]));
        for c in sa["children"].as_array().into_iter().flatten() {
            let join = |k: &str| -> String {
                c[k].as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            println!(
                "  {}: #{}, {}, spi in {} out {}{}",
                s(&c["name"]),
                c["id"],
                s(&c["state"]),
                s(&c["spi_in"]),
                s(&c["spi_out"]),
                if c["outbound"].as_bool() == Some(true) { "" } else { " (not sending)" }
            );
            println!("    {} === {}", join("local_ts"), join("remote_ts"));
        }
    }
}
