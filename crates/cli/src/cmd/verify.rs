//! `portolan verify SITE --ruleset FILE… | --live [--firewall iptables] [--netns NS]
//! [--resolve [--dns-server ADDR]]`: what
//! an existing nftables or iptables ruleset really permits, against the site's profiles (`portolan_verify`). Per device group
//! and flow: permitted / partly / blocked / depends, with the deciding rule; then the excess
//! (what the ruleset accepts to and from the devices beyond their profiles) with the
//! admitting rule. Exit 0 when every required flow is permitted and there is no excess, 1
//! otherwise, 2 on bad input (an unreadable site or ruleset, a file nft refuses).

use anyhow::Context;
use comfy_table::ContentArrangement;
use portolan_verify::site::{DnsFills, Report, Status};

use portolan_nft::iptables::{self, Dump, SaveFamily};

use crate::cli::{CatalogArgs, Firewall, RulesetFormat, RulesetVerifyArgs};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &CatalogArgs, a: &RulesetVerifyArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let Some(policy) = super::load_site(g, &a.site, json)? else {
        return Ok(Outcome::BadInput);
    };
    let source = read_source(a)?;
    let dns_text = match (&a.dns_config, &source) {
        (Some(p), _) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        (None, Source::Iptables(d)) => match &d.dnsmasq {
            Some(t) => t.clone(),
            None => {
                let out = portolan_emit::emit(
                    portolan_emit::Target::Iptables,
                    &policy,
                    &portolan_emit::Options::default(),
                )?;
                portolan_emit::iptables::section(&out, "dnsmasq")
            }
        },
        (None, Source::Nft { .. }) => portolan_emit::emit(
            portolan_emit::Target::Dnsmasq,
            &policy,
            &portolan_emit::Options::default(),
        )?,
    };
    let mut dns = DnsFills::from_dnsmasq(&dns_text);
    if a.resolve {
        dns.current = resolve(&policy, a.dns_server.as_deref())?;
    }
    let prog = match &source {
        Source::Nft { doc, text } => {
            portolan_verify::program_for_site(doc, text.as_deref(), &policy, &dns)
        }
        Source::Iptables(d) => {
            portolan_verify::program_for_site_iptables(&d.firewall, &policy, &dns)
        }
    };
    let prog = prog.with_context(|| ruleset_name(a))?;
    let report = portolan_verify::site::verify(&policy, &prog, &dns);
    report::print(&a.out, "verify", &report, || human(&report))?;
    Ok(if report.clean() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}

/// `--resolve`: every hostname peer of the site, resolved now.
fn resolve(
    policy: &portolan_model::ir::Policy,
    server: Option<&str>,
) -> anyhow::Result<std::collections::BTreeMap<String, Result<Vec<std::net::IpAddr>, String>>> {
    let mut names: Vec<String> = policy
        .rules
        .iter()
        .flat_map(|r| r.peers.names.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    let server = server
        .map(portolan_net::dns::parse_server)
        .transpose()
        .context("--dns-server")?;
    let answers = portolan_net::dns::resolve_all(&names, server, std::time::Duration::from_secs(2))
        .context("--resolve")?;
    Ok(answers
        .into_iter()
        .map(|(n, r)| (n, r.map(|x| x.addresses).map_err(|e| e.to_string())))
        .collect())
}

/// What the ruleset was read into.
enum Source {
    Nft {
        doc: serde_json::Value,
        text: Option<String>,
    },
    Iptables(Dump),
}

fn ruleset_name(a: &RulesetVerifyArgs) -> String {
    if a.live {
        return "the live ruleset".into();
    }
    a.ruleset
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `--ruleset FILE…` or `--live`, in the format asked or detected.
fn read_source(a: &RulesetVerifyArgs) -> anyhow::Result<Source> {
    if a.live {
        let w = match &a.netns {
            Some(ns) => portolan_nft::Where::Netns(ns.clone()),
            None => portolan_nft::Where::Host,
        };
        return Ok(match a.firewall {
            Firewall::Nftables => Source::Nft {
                doc: portolan_verify::source::json_live(a.netns.as_deref())
                    .map_err(anyhow::Error::msg)
                    .context("cannot list the live ruleset")?,
                text: None,
            },
            Firewall::Iptables => Source::Iptables(Dump {
                firewall: portolan_nft::iptables::read_live(&w)
                    .context("cannot list the live iptables ruleset")?,
                dnsmasq: None,
            }),
        });
    }
    let mut texts = Vec::new();
    for p in &a.ruleset {
        texts.push((
            p,
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ));
    }
    let iptables = match a.ruleset_format {
        RulesetFormat::Nft => false,
        RulesetFormat::Iptables | RulesetFormat::Ip6tables => true,
        RulesetFormat::Auto => texts.iter().any(|(_, t)| iptables::looks_like(t)),
    };
    if !iptables {
        let [(p, text)] = texts.as_slice() else {
            anyhow::bail!(
                "an nftables ruleset is one file (--ruleset given {} times)",
                texts.len()
            );
        };
        let doc = portolan_verify::source::json_of_file(p)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot read ruleset {}", p.display()))?;
        return Ok(Source::Nft {
            doc,
            text: Some(text.clone()),
        });
    }
    let family = match a.ruleset_format {
        RulesetFormat::Ip6tables => SaveFamily::V6,
        _ => SaveFamily::Detect,
    };
    let mut all = Dump::default();
    for (p, text) in &texts {
        let d = iptables::read_dump(text, family).with_context(|| format!("{}", p.display()))?;
        all.firewall.v4.tables.extend(d.firewall.v4.tables);
        all.firewall.v6.tables.extend(d.firewall.v6.tables);
        all.firewall.sets.extend(d.firewall.sets);
        if let Some(t) = d.dnsmasq {
            all.dnsmasq.get_or_insert_with(String::new).push_str(&t);
        }
    }
    Ok(Source::Iptables(all))
}

fn rule_text(r: &Option<portolan_verify::program::RuleRef>) -> String {
    r.as_ref()
        .map(portolan_verify::program::RuleRef::short)
        .unwrap_or_default()
}

/// The report for people: the flows, the excess, the notes and a closing count (also
/// `compile --check`'s findings).
pub(crate) fn human(r: &Report) -> String {
    let mut out = String::new();
    let mut t = report::table(["device", "flow", "status", "deciding rule", "not accepted"]);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    for f in &r.flows {
        let rules: Vec<String> = f
            .rules
            .iter()
            .take(3)
            .map(portolan_verify::program::RuleRef::short)
            .collect();
        let mut detail: Vec<String> = f
            .findings
            .iter()
            .take(4)
            .map(|x| format!("{:?} {}: {}", x.direction, x.class, x.outcome).to_lowercase())
            .collect();
        if f.findings.len() > 4 {
            detail.push(format!("… {} more", f.findings.len() - 4));
        }
        for n in &f.names {
            let addrs: Vec<String> = n.addresses.iter().map(|a| a.to_string()).collect();
            detail.push(format!(
                "{}: {}{}",
                n.name,
                n.via.describe(),
                if addrs.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", addrs.join(", "))
                }
            ));
        }
        if !f.unfilled_names.is_empty() {
            detail.push(format!(
                "no set is filled by the DNS for {}",
                f.unfilled_names.join(", ")
            ));
        }
        let status = if f.optional && f.status != Status::Permitted {
            format!("{} (optional)", f.status.name())
        } else {
            f.status.name().to_string()
        };
        t.add_row([
            f.group.clone(),
            f.flow.clone(),
            status,
            rules.join("\n"),
            detail.join("\n"),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    if r.excess.is_empty() {
        out.push_str("excess: none\n");
    } else {
        let mut t = report::table([
            "device",
            "also accepted (beyond the profile)",
            "path",
            "admitting rule",
        ]);
        t.set_content_arrangement(ContentArrangement::Dynamic);
        for e in &r.excess {
            t.add_row([
                e.group.clone(),
                e.class.clone(),
                format!("{:?}", e.path).to_lowercase(),
                rule_text(&e.rule),
            ]);
        }
        out.push_str(&format!("excess:\n{t}\n"));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    let permitted = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Permitted)
        .count();
    out.push_str(&format!(
        "{} of {} flows permitted, {} excess classes\n",
        permitted,
        r.flows.len(),
        r.excess.len()
    ));
    out
}
