//! Command groups of the `rampart` binary, one module each, and what they share: the SA
//! database options and the error type. A command module parses its own arguments, does its
//! work and returns; it must never exit the process or print secrets unasked.

pub mod ctl;
pub mod dataplane;
pub mod demo;
pub mod ike;
pub mod policy;
pub mod run;
pub mod sa;
pub mod telemetry;
mod xfrm;

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use rampart_sadb::{Capacities, Reader, Writer};

/// Where the SA database lives, and how large to make it when a command creates it.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// SA database file (shared memory).
    #[arg(long, global = true, env = "RAMPART_DB", default_value = rampart_sadb::DEFAULT_PATH)]
    pub db: PathBuf,
    /// SA slots of a database created by this command (ignored when the file exists).
    #[arg(long, global = true, default_value_t = Capacities::default().sas)]
    pub sa_capacity: u32,
    /// Policy slots of a database created by this command (ignored when the file exists).
    #[arg(long, global = true, default_value_t = Capacities::default().policies)]
    pub policy_capacity: u32,
}

impl DbArgs {
    /// Opens the database as its writer, creating it when missing.
    pub fn writer(&self) -> Result<Writer, CmdError> {
        let caps = Capacities { sas: self.sa_capacity, policies: self.policy_capacity, ..Capacities::default() };
        Ok(Writer::open_or_create(&self.db, caps)?)
    }

    /// Attaches to the database for reading (it must exist).
    pub fn reader(&self) -> Result<Reader, CmdError> {
        Ok(Reader::attach(&self.db)?)
    }
}

/// Why a command failed: one line for the operator.
#[derive(Debug)]
pub struct CmdError(pub String);

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdError {}

impl From<rampart_sadb::OpenError> for CmdError {
    fn from(e: rampart_sadb::OpenError) -> Self {
        CmdError(e.to_string())
    }
}

impl From<rampart_sadb::WriteError> for CmdError {
    fn from(e: rampart_sadb::WriteError) -> Self {
        CmdError(e.to_string())
    }
}

impl From<xfrm::ArgError> for CmdError {
    fn from(e: xfrm::ArgError) -> Self {
        CmdError(e.to_string())
    }
}
