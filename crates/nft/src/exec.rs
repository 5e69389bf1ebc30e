//! Running `nft` (and `ip` for namespaces) with an argument vector, never a shell. [`Where`]
//! says which network namespace a command acts on: a named namespace (through `ip netns
//! exec`) or, only when a person runs `portolan apply` without `--netns`, the host's own.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The network namespace a firewall command acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Where {
    /// The namespace `portolan` itself runs in. Never used by the lab or the tests.
    Host,
    /// A named namespace (`ip netns add NAME`), entered with `ip netns exec NAME`.
    Netns(String),
}

impl Where {
    /// A command running `program args` in this namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        match self {
            Where::Host => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Where::Netns(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str(), program]).args(args);
                c
            }
        }
    }

    /// Checks that the namespace exists (a host always does).
    pub fn check(&self) -> Result<()> {
        if let Where::Netns(ns) = self {
            if !valid_netns_name(ns) {
                return Err(Error::Apply(format!(
                    "`{ns}` is not a network namespace name"
                )));
            }
            if !Path::new("/run/netns").join(ns).exists() {
                return Err(Error::Apply(format!(
                    "no network namespace `{ns}` (see `ip netns list`)"
                )));
            }
        }
        Ok(())
    }

    /// A short name for files and messages: `host` or `netns-NAME`.
    pub fn scope(&self) -> String {
        match self {
            Where::Host => "host".into(),
            Where::Netns(ns) => format!("netns-{ns}"),
        }
    }
}

/// Whether `name` is a plain namespace name (a file name under /run/netns).
pub fn valid_netns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

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

fn missing_tool(shown: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let tool = shown.split_whitespace().next().unwrap_or("?");
        let package = match tool {
            "ip" => "iproute2",
            "nft" => "nftables",
            "dnsmasq" => "dnsmasq-base",
            "iptables-restore" | "ip6tables-restore" | "iptables-save" | "ip6tables-save" => {
                "iptables"
            }
            _ => "iproute2, nftables, dnsmasq-base",
        };
        Error::Unsupported(format!(
            "`{tool}` is not installed (Debian package {package})"
        ))
    } else {
        Error::io(format!("cannot run `{shown}`"), e)
    }
}

/// A command line as a person would type it, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The first `n` lines of a text, trimmed.
pub fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = lines.iter().take(n).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > n {
        out.push_str(&format!("\n… ({} more lines)", lines.len() - n));
    }
    out
}

/// `nft -c -f FILE` (check only) or `nft -f FILE` (one transaction) in `w`. nft's refusal is
/// [`Error::Rejected`] with its message.
pub fn run_file(w: &Where, file: &Path, check_only: bool) -> Result<()> {
    let path = file.display().to_string();
    let args: Vec<&str> = if check_only {
        vec!["-c", "-f", &path]
    } else {
        vec!["-f", &path]
    };
    let out = output(w.command("nft", &args))?;
    if out.ok {
        Ok(())
    } else {
        Err(Error::Rejected {
            detail: first_lines(&out.stderr, 20),
        })
    }
}

/// `nft ARGS` in `w`, whose standard output is returned; `None` when nft says the object does
/// not exist ("No such file or directory").
pub fn nft_output(w: &Where, args: &[&str]) -> Result<Option<String>> {
    let cmd = w.command("nft", args);
    let shown = show(&cmd);
    let out = output(cmd)?;
    if out.ok {
        return Ok(Some(out.stdout));
    }
    if out.stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(Error::Command {
        command: shown,
        detail: first_lines(&out.stderr, 12),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_names() {
        assert!(valid_netns_name("pl123abcd-fw"));
        assert!(!valid_netns_name("../etc"));
        assert!(!valid_netns_name("a b"));
        assert!(!valid_netns_name(""));
    }

    #[test]
    fn commands_enter_the_namespace() {
        let c = Where::Netns("x".into()).command("nft", &["-f", "f"]);
        assert_eq!(show(&c), "ip netns exec x nft -f f");
        let c = Where::Host.command("nft", &["list", "ruleset"]);
        assert_eq!(show(&c), "nft list ruleset");
    }
}
