//! External tools (`ip`, `nft`, `dnsmasq`), run with an argument vector (never a shell) and
//! their output captured. [`Where`] (from `portolan-nft`) says which network namespace a
//! command acts on.

use std::process::{Command, Stdio};

use crate::error::{Error, Result};

pub use portolan_nft::exec::{first_lines, show, valid_netns_name, Where};

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to its end, capturing its output. A command that cannot be started is an
/// error; one that exits non-zero is an [`Output`] with `ok == false`.
pub fn output(mut cmd: Command) -> Result<Output> {
    let shown = show(&cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing_tool(&shown, e))?;
    Ok(Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs a command that must succeed; returns its standard output.
pub fn run(cmd: Command) -> Result<String> {
    let shown = show(&cmd);
    let out = output(cmd)?;
    if out.ok {
        Ok(out.stdout)
    } else {
        Err(Error::Command {
            command: shown,
            detail: first_lines(&out.stderr, 12),
        })
    }
}

/// `ip ARGS` in the host's namespace: creating and removing namespaces, and `ip -n NS ...`.
pub fn ip(args: &[&str]) -> Result<String> {
    let mut c = Command::new("ip");
    c.args(args);
    run(c)
}

fn missing_tool(shown: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let tool = shown.split_whitespace().next().unwrap_or("?");
        Error::Unsupported(format!(
            "`{tool}` is not installed (Debian packages: iproute2, nftables, dnsmasq-base)"
        ))
    } else {
        Error::io(format!("cannot run `{shown}`"), e)
    }
}
