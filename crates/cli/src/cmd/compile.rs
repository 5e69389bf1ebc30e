//! `portolan compile SITE --target T [-o FILE]`: site → policy for one target.

use std::io::Write as _;

use anyhow::Context;
use portolan_emit::{emit, Options, Target};

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
                serde_json::json!({"severity": "warning", "code": "unresolved-name", "name": name, "message": format!("{name} did not resolve: {e}; its set is left to DNS-driven filling")})
            ),
            Err(e) => eprintln!(
                "warning[unresolved-name]: {name} did not resolve: {e}; its set is left to DNS-driven filling"
            ),
        }
    }
    Ok(out)
}

/// Writes the whole text to a file atomically (temporary file, then rename), or to stdout.
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path {
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.portolan-tmp",
                p.file_name().and_then(|n| n.to_str()).unwrap_or("out")
            ));
            std::fs::write(&tmp, text)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
            Ok(())
        }
    }
}
