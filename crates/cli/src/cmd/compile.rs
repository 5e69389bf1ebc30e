//! `portolan compile SITE --target T [-o FILE]`: site → policy for one target.

use anyhow::Context;
use portolan_emit::{emit, Options, Target};
use portolan_model::Code;

use crate::cli::{CompileArgs, Format, Global, TargetArg};
use crate::output::Outcome;
use crate::write;

pub fn run(g: &Global, a: &CompileArgs) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, &a.site, a.out.json())? else {
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
                opts.resolved = resolve_names(&policy, a.resolver.as_deref(), a.out.format)?;
            }
            emit(target, &policy, &opts)?
        }
    };
    write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    // The process ends next: freeing a large site's policy piece by piece (some 5 % of
    // compiling 100,000 groups) would only delay the exit; the kernel takes it back whole.
    std::mem::forget(policy);
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
