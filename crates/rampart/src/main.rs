//! The `rampart` command: entry point of the gateway. This file only parses the command line
//! and dispatches to one module per command group (`cmd/`); it must never hold a command's
//! logic itself.
#![forbid(unsafe_code)]

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Rampart IPsec gateway.
#[derive(Parser)]
#[command(name = "rampart", version, about = "Rampart IPsec gateway", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Static SAs in the SA database, with the grammar of `ip xfrm state`.
    Sa(cmd::sa::SaArgs),
    /// Security policies in the SA database, with the grammar of `ip xfrm policy`.
    Policy(cmd::policy::PolicyArgs),
    /// The AF_XDP data plane: encrypt LAN traffic into ESP on the WAN and back.
    Dataplane(cmd::dataplane::DataplaneArgs),
    /// The IKEv2 daemon: negotiates SAs with peers and writes them into the SA database.
    Ike(cmd::ike::IkeArgs),
    /// Control a running IKE daemon: list SAs, initiate, terminate, reload, stats.
    Ctl(cmd::ctl::CtlArgs),
    /// Both planes in one process (small sites): the data plane and the IKE daemon of one file.
    Run(cmd::run::RunArgs),
    /// A hub and a branch gateway in network namespaces, N tunnels, traffic, a summary (as root).
    Demo(cmd::demo::DemoArgs),
    /// The demo's traffic generator and sink (started by `rampart demo` in a namespace).
    #[command(hide = true)]
    DemoAgent(cmd::demo::agent::AgentArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sa(args) => cmd::sa::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Dataplane(args) => cmd::dataplane::run(args),
        Command::Ike(args) => cmd::ike::run(args),
        Command::Ctl(args) => cmd::ctl::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::DemoAgent(args) => cmd::demo::agent::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e}");
            ExitCode::FAILURE
        }
    }
}
