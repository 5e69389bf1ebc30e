//! `portolan compile SITE --target T [-o FILE]`: site → policy for one target.

use std::io::Write as _;

use anyhow::Context;
use portolan_emit::{emit, Options, Target};
use portolan_model::Code;

use crate::cli::{CompileArgs, Format, Global, TargetArg};
use crate::output::Outcome;

pub fn run(g: &Global, a: &CompileArgs) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, &a.site, a.format == Format::Json)? else {
        return Ok(Outcome::BadInput);
    };
    let text = match a.target {
        TargetArg::Ir => serde_json::to_string_pretty(&policy)? + "\n",
        t => {
            let target = match t {
                TargetArg::Nftables => Target::Nftables,
                TargetArg::Iptables => Target::Iptables,
                _ => Target::Dnsmasq,
            };
            let mut opts = Options {
                dns_timeout: a.dns_timeout.map(std::time::Duration::from_secs),
                ..Options::default()
            };
            if a.resolve {
                opts.resolved = resolve_names(&policy, a.resolver.as_deref(), a.format)?;
            }
            emit(target, &policy, &opts)?
        }
    };
    write_output(a.output.as_deref(), &text)?;
    Ok(Outcome::Ok)
}

/// `--resolve`: every name of the policy's rules, resolved now with its TTL. A name that does
/// not resolve is a warning naming it; its set is left to DNS-driven filling.
fn resolve_names(
    policy: &portolan_model::ir::Policy,
    resolver: Option<&str>,
    format: Format,
) -> anyhow::Result<std::collections::BTreeMap<String, portolan_emit::Resolved>> {
    let mut names: Vec<String> = policy
        .rules
        .iter()
        .flat_map(|r| r.peers.names.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    let server = resolver.map(portolan_net::dns::parse_server).transpose()?;
    let answers = portolan_net::dns::resolve_all(&names, server, std::time::Duration::from_secs(2))
        .context("--resolve")?;
    let mut out = std::collections::BTreeMap::new();
    for (name, r) in answers {
        match r {
            Ok(x) => {
                out.insert(
                    name,
                    portolan_emit::Resolved {
                        addresses: x.addresses,
                        ttl: x.ttl,
                    },
                );
            }
            Err(e) if format == Format::Json => eprintln!(
                "{}",
                serde_json::json!({"severity": "warning", "code": Code::UnresolvedName, "name": name, "message": format!("{name} did not resolve: {e}; its set is left to DNS-driven filling")})
            ),
            Err(e) => eprintln!(
                "warning[{}]: {name} did not resolve: {e}; its set is left to DNS-driven filling",
                Code::UnresolvedName
            ),
        }
    }
    Ok(out)
}

/// Writes the whole text to stdout, or to a file atomically: a temporary file beside it, then a
/// rename over it, so a reader never sees half a ruleset. A path that exists and is not a
/// regular file (`/dev/null`, a FIFO, a terminal) is written to as it is: a rename would
/// replace the device node itself. A symbolic link stays a link: its target is replaced.
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    let Some(p) = path else {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    };
    let cannot = || format!("cannot write {}", p.display());
    let target = match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(cannot)?;
            f.write_all(text.as_bytes()).with_context(cannot)?;
            return Ok(());
        }
        // Through a link to the file it names, so the link is kept.
        Ok(_) => std::fs::canonicalize(p).with_context(cannot)?,
        Err(_) => p.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.portolan-tmp",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, text)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, &target).with_context(cannot));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
