//! `portolan verify SITE --ruleset FILE | --live [--netns NS]`: what an existing nftables
//! ruleset really permits, against the site's profiles (`portolan_verify`). Per device group
//! and flow: permitted / partly / blocked / depends, with the deciding rule; then the excess
//! (what the ruleset accepts to and from the devices beyond their profiles) with the
//! admitting rule. Exit 0 when every required flow is permitted and there is no excess, 1
//! otherwise, 2 on bad input (an unreadable site or ruleset, a file nft refuses).

use anyhow::Context;
use comfy_table::ContentArrangement;
use portolan_verify::site::{DnsFills, Report, Status};

use crate::cli::{Global, RulesetVerifyArgs};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &Global, a: &RulesetVerifyArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let Some(policy) = super::load_site(g, &a.site, json)? else {
        return Ok(Outcome::BadInput);
    };
    let dns_text = match &a.dns_config {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => portolan_emit::emit(
            portolan_emit::Target::Dnsmasq,
            &policy,
            &portolan_emit::Options::default(),
        )?,
    };
    let dns = DnsFills::from_dnsmasq(&dns_text);
    let (doc, text) = match &a.ruleset {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let doc = portolan_verify::source::json_of_file(p)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("cannot read ruleset {}", p.display()))?;
            (doc, Some(text))
        }
        None => (
            portolan_verify::source::json_live(a.netns.as_deref())
                .map_err(anyhow::Error::msg)
                .context("cannot list the live ruleset")?,
            None,
        ),
    };
    let prog = portolan_verify::program_for_site(&doc, text.as_deref(), &policy, &dns)?;
    let report = portolan_verify::site::verify(&policy, &prog, &dns);
    report::print(&a.out, &report, || human(&report))?;
    Ok(if report.clean() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
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
