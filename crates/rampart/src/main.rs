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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sa(args) => cmd::sa::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Dataplane(args) => cmd::dataplane::run(args),
        Command::Ike(args) => cmd::ike::run(args),
        Command::Ctl(args) => cmd::ctl::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e}");
            ExitCode::FAILURE
        }
    }
}
