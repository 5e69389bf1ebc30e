//! External tools (`ip`, `nft`, `dnsmasq`), run with an argument vector (never a shell) and
//! their output captured. [`Where`] (from `portolan-nft`) says which network namespace a
//! command acts on.

use std::process::Command;

use crate::error::{Error, Result};

pub use portolan_nft::exec::{first_lines, show, valid_netns_name, Where};

pub use portolan_nft::exec::Output;

/// Runs a command to its end, capturing its output (`portolan_nft::exec::output`). A command
/// that cannot be started is an error; one that exits non-zero is an [`Output`] with
/// `ok == false`.
pub fn output(cmd: Command) -> Result<Output> {
    portolan_nft::exec::output(cmd).map_err(from_nft)
}

/// Runs a command that must succeed; returns its standard output.
pub fn run(cmd: Command) -> Result<String> {
    portolan_nft::exec::run(cmd).map_err(from_nft)
}

/// The lab's own variants for what every command can meet, so that callers match one type.
fn from_nft(e: portolan_nft::Error) -> Error {
    match e {
        portolan_nft::Error::Command { command, detail } => Error::Command { command, detail },
        portolan_nft::Error::Unsupported(m) => Error::Unsupported(m),
        other => Error::Nft(other),
    }
}

/// `ip ARGS` in the host's namespace: creating and removing namespaces, and `ip -n NS ...`.
pub fn ip(args: &[&str]) -> Result<String> {
    let mut c = Command::new("ip");
    c.args(args);
    run(c)
}
