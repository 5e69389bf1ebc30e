//! `portolan compile SITE --target T [-o FILE] [--check]`: site → policy for one target.
//!
//! `--check` is translation validation: the emitted ruleset is read back and verified against
//! the same site by `portolan-verify`'s evaluator, which never looks at the IR's rules. For
//! nftables the ruleset is loaded into a scratch namespace and listed by the kernel
//! (`portolan-nft`), the DNS-filled sets being those of the emitted dnsmasq lines; for
//! iptables the emitted file is read as `iptables-save`/`ipset save` text, its own dnsmasq
//! section naming the DNS-filled sets. Every flow of the IR (optional ones included: the
//! emitter writes them all) must be permitted exactly and nothing may be permitted beyond
//! them; otherwise the findings go to stderr (a table, or the verify report as JSON) and the
//! command exits 1 without writing the ruleset.

use anyhow::Context;
use portolan_emit::{emit, Options, Target};
use portolan_model::Code;

use crate::cli::{CatalogArgs, CompileArgs, Format, TargetArg};
use crate::output::Outcome;
use crate::write;

pub fn run(g: &CatalogArgs, a: &CompileArgs) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, &a.site, a.out.json())? else {
        return Ok(Outcome::BadInput);
    };
    if a.check && !matches!(a.target, TargetArg::Nftables | TargetArg::Iptables) {
        let why = "--check verifies an nftables or iptables ruleset: use --target nftables or --target iptables";
        return crate::contract::fail("usage", why);
    }
    if a.ct_timeouts.is_some() && a.target != TargetArg::Nftables {
        let why = "--ct-timeouts writes nftables `ct timeout` objects: use --target nftables";
        return crate::contract::fail("usage", why);
    }
    if a.enforce && (a.target != TargetArg::Nftables || a.check) {
        // verify reads an enforce set (`ip saddr . ip daddr @e_…_v4`) as a DNS-filled set
        // that may hold any pair, and would report the names as excess: not modelled yet.
        let why = if a.check {
            "--check does not model --enforce's per-device name sets yet (verify would see any pair as possible): compile without --check"
        } else {
            "--enforce is a policy of the nftables target: use --target nftables"
        };
        return crate::contract::fail("usage", why);
    }
    let mut doc = serde_json::Map::new();
    doc.insert("site".into(), policy.site.clone().into());
    if let Some(t) = clap::ValueEnum::to_possible_value(&a.target) {
        doc.insert("target".into(), t.get_name().into());
    }
    let ct_timeouts = match &a.ct_timeouts {
        Some(from) => match ct_timeouts(&policy, from, a.out.json(), &mut doc)? {
            Some(t) => t,
            None => return Ok(Outcome::BadInput),
        },
        None => Default::default(),
    };
    let mut opts = Options {
        ct_timeouts,
        enforce: a.enforce,
        dns_redirect: a.dns_bypass == crate::cli::DnsBypass::Redirect,
        doh: a.doh.clone(),
        dns_timeout: a.dns_timeout,
        aerleon_platforms: a.aerleon_platform.clone(),
        ..Options::default()
    };
    let text = match a.target {
        TargetArg::Ir => crate::contract::pretty(&ir_document(&policy)?)? + "\n",
        t => {
            let target = match t {
                TargetArg::Nftables => Target::Nftables,
                TargetArg::Iptables => Target::Iptables,
                TargetArg::Aerleon => Target::Aerleon,
                TargetArg::Squid => Target::Squid,
                TargetArg::Openwrt => Target::Openwrt,
                _ => Target::Dnsmasq,
            };
            if a.resolve {
                opts.resolved = resolve_names(&policy, a.resolver.as_deref(), a.out.format)?;
            }
            if let (Target::Aerleon | Target::Openwrt, Some(dir)) =
                (target, a.file.output.as_deref())
            {
                let files = portolan_emit::files(target, &policy, &opts)?;
                write_files(dir, &files)?;
                if a.out.json() {
                    let written: Vec<String> = files
                        .iter()
                        .map(|f| dir.join(&f.path).display().to_string())
                        .collect();
                    doc.insert("files".into(), written.into());
                    crate::contract::print("compile", &doc)?;
                }
                return Ok(Outcome::Ok);
            }
            emit(target, &policy, &opts)?
        }
    };
    if a.check {
        let report = if a.target == TargetArg::Iptables {
            check_iptables(&policy, &text)?
        } else {
            check(&policy, &text, &opts)?
        };
        let flows = report.flows.len();
        if !exact(&report) {
            if a.out.json() {
                doc.insert(
                    "check".into(),
                    serde_json::json!({"exact": false, "flows_permitted": report.flows.iter().filter(|f| f.status == portolan_verify::site::Status::Permitted).count(), "report": report}),
                );
                crate::contract::print("compile", &doc)?;
            } else {
                eprint!(
                    "error: the emitted ruleset does not enforce the site exactly (compile --check):\n{}",
                    super::verify::human(&report)
                );
            }
            return Ok(Outcome::Findings);
        }
        if a.out.json() {
            doc.insert(
                "check".into(),
                serde_json::json!({"exact": true, "flows_permitted": flows}),
            );
        } else {
            eprintln!("check: all {flows} flows permitted exactly, no excess");
        }
    }
    if a.out.json() {
        // The report instead of the text: the text inside it, or the file written.
        match a.file.output.as_deref() {
            Some(p) => {
                write::atomically(p, text.as_bytes())?;
                doc.insert("output".into(), p.display().to_string().into());
            }
            None => {
                doc.insert("text".into(), text.into());
            }
        }
        crate::contract::print("compile", &doc)?;
    } else {
        write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    }
    // The process ends next: freeing a large site's policy piece by piece (some 5 % of
    // compiling 100,000 groups) would only delay the exit; the kernel takes it back whole.
    std::mem::forget(policy);
    Ok(Outcome::Ok)
}

/// `-o DIR` of a target made of several files: each written whole under `dir`.
fn write_files(dir: &std::path::Path, files: &[portolan_emit::File]) -> anyhow::Result<Outcome> {
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write::atomically(&path, f.text.as_bytes())?;
    }
    Ok(Outcome::Ok)
}

/// Verifies the emitted nftables `nft` against `policy`: the kernel lists it from a scratch
/// namespace, `portolan-verify` evaluates it, the sets the emitted dnsmasq lines fill being
/// the DNS-filled ones.
fn check(
    policy: &portolan_model::ir::Policy,
    nft: &str,
    opts: &Options,
) -> anyhow::Result<portolan_verify::site::Report> {
    let dnsmasq = emit(Target::Dnsmasq, policy, opts)?;
    let dns = portolan_verify::site::DnsFills::from_dnsmasq(&dnsmasq);
    let listed = portolan_nft::read_text(nft)
        .context("--check: the emitted ruleset could not be loaded in a scratch namespace")?;
    let doc = portolan_verify::source::document(&listed).map_err(anyhow::Error::msg)?;
    let prog = portolan_verify::program_for_site(&doc, Some(nft), policy, &dns)?;
    Ok(portolan_verify::site::verify(policy, &prog, &dns))
}

/// Verifies an emitted iptables file (ipset, iptables and ip6tables sections, read as
/// `ipset save`/`iptables-save` text) against `policy`; its dnsmasq section names the
/// DNS-filled ipsets.
fn check_iptables(
    policy: &portolan_model::ir::Policy,
    text: &str,
) -> anyhow::Result<portolan_verify::site::Report> {
    let d = portolan_nft::iptables::read_dump(text, portolan_nft::iptables::SaveFamily::Detect)
        .map_err(|e| anyhow::anyhow!("--check: the emitted iptables file does not read: {e}"))?;
    let dns = portolan_verify::site::DnsFills::from_dnsmasq(d.dnsmasq.as_deref().unwrap_or(""));
    let prog = portolan_verify::program_for_site_iptables(&d.firewall, policy, &dns)?;
    Ok(portolan_verify::site::verify(policy, &prog, &dns))
}

/// Every flow of the IR permitted (optional ones too: the emitter writes every rule of the
/// IR), nothing beyond them, and nothing of the ruleset left unevaluated.
fn exact(r: &portolan_verify::site::Report) -> bool {
    r.excess.is_empty()
        && r.notes.is_empty()
        && r.flows
            .iter()
            .all(|f| f.status == portolan_verify::site::Status::Permitted)
}

/// `--ct-timeouts FROM`: the flows of `policy` whose keepalive or idle timeout outlasts the
/// firewall's conntrack timeout (lint's own analysis, [`portolan_lint::site_raises`]), the timeouts read
/// from this kernel (`kernel`) or from a lint configuration file's `conntrack:`. Each raised
/// flow is said on stderr. `None`: bad input, already reported.
fn ct_timeouts(
    policy: &portolan_model::ir::Policy,
    from: &str,
    json: bool,
    doc: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<Option<std::collections::BTreeMap<(String, String), portolan_emit::CtTimeout>>>
{
    let ct = if from == "kernel" {
        portolan_lint::Conntrack::from_proc(std::path::Path::new(super::lint::PROC_NETFILTER))
            .map_err(|e| anyhow::anyhow!("--ct-timeouts: {e}"))?
    } else {
        let text = crate::contract::read_to_string(std::path::Path::new(from))?;
        match portolan_lint::config::parse(from, &text) {
            Ok(c) => match c.conntrack {
                Some(ct) => ct,
                None => {
                    return Err(crate::contract::Failure(
                        crate::contract::Diag::error(
                            "missing-field",
                            format!("{from} gives no `conntrack:` timeouts for --ct-timeouts"),
                        )
                        .file(from)
                        .help("add `conntrack: {tcp_established: N, udp: N, udp_stream: N}`, or use --ct-timeouts kernel on the firewall"),
                    )
                    .into());
                }
            },
            Err(d) => {
                crate::output::print_diagnostics(&d);
                return Ok(None);
            }
        }
    };
    let raises = portolan_lint::site_raises(policy, &ct);
    if json {
        doc.insert(
            "ct_timeouts".into(),
            serde_json::json!({"raised": raises, "conntrack": ct}),
        );
    } else if raises.is_empty() {
        eprintln!(
            "ct-timeouts: no flow's keepalive or idle timeout outlasts the firewall's conntrack timeouts (tcp established {} s, udp stream {} s)",
            ct.tcp_established, ct.udp_stream
        );
    } else {
        for r in &raises {
            eprintln!(
                "ct-timeouts: {}/{} of {}: {} > {} {} s: {} timeout {} s for this flow",
                r.profile,
                r.flow,
                r.group,
                r.raise.because(),
                r.raise.sysctl,
                r.raise.timeout,
                r.raise.state(),
                r.raise.seconds
            );
        }
    }
    Ok(Some(
        raises
            .into_iter()
            .map(|r| {
                let protocol = match r.raise.transport {
                    portolan_lint::timeout::Transport::Tcp => portolan_emit::CtProtocol::Tcp,
                    portolan_lint::timeout::Transport::Udp => portolan_emit::CtProtocol::Udp,
                };
                (
                    (r.group, r.flow),
                    portolan_emit::CtTimeout {
                        protocol,
                        seconds: r.raise.seconds,
                    },
                )
            })
            .collect(),
    ))
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
            Err(e) if format == Format::Json => {
                crate::contract::push([crate::contract::Diag::error(
                    &Code::UnresolvedName.to_string(),
                    format!("{name} did not resolve: {e}; its set is left to DNS-driven filling"),
                )
                .warning()])
            }
            Err(e) => eprintln!(
                "warning[{}]: {name} did not resolve: {e}; its set is left to DNS-driven filling",
                Code::UnresolvedName
            ),
        }
    }
    Ok(out)
}

/// `--target ir`: the policy IR as a `portolan/ir/v1` document, each rule's protocol in the
/// contract's form (`{"name": "udp", "number": 17}`), ports as `{lo, hi}` ranges.
fn ir_document(policy: &portolan_model::ir::Policy) -> anyhow::Result<serde_json::Value> {
    let mut doc = crate::contract::document("ir", policy)?;
    if let Some(rules) = doc
        .get_mut("rules")
        .and_then(serde_json::Value::as_array_mut)
    {
        for (rule, r) in rules.iter_mut().zip(&policy.rules) {
            let mut p = serde_json::Map::new();
            if let Some(n) = r.protocol.name() {
                p.insert("name".into(), n.into());
            }
            p.insert("number".into(), r.protocol.number().into());
            rule["protocol"] = serde_json::Value::Object(p);
        }
    }
    Ok(doc)
}
