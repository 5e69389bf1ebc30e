//! `portolan lab SITE`: the site's policy proven on this machine's kernel, inside network
//! namespaces the command creates and removes (see `portolan_lab::lab`). Prints the matrix
//! (device, flow, kind, expected, observed) as a table or JSON; exit 0 when every probe
//! behaved as the policy says, 1 on any mismatch, 2 on bad input or when the machine cannot
//! run a lab (not root, a tool missing).

use std::time::Duration;

use anyhow::Context;
use portolan_lab::facts::Facts;
use portolan_lab::lab::{self, Options};
use portolan_lab::report::Report;

use crate::cli::{Global, LabArgs};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &Global, a: &LabArgs) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, &a.site, a.out.json())? else {
        return Ok(Outcome::BadInput);
    };
    let ruleset = match &a.ruleset {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let text = std::fs::read_to_string(&a.site)
        .with_context(|| format!("cannot read {}", a.site.display()))?;
    let facts = Facts::from_site(&text, &policy)?;
    let opts = Options {
        ruleset,
        keep: a.keep,
        provenance: !a.no_provenance,
        facts: Some(facts),
        timeout: a
            .timeout
            .clamp(Duration::from_millis(50), Duration::from_secs(10)),
        ..Options::default()
    };
    let report = lab::run(&policy, &opts, &|m| eprintln!("lab: {m}"))?;
    report::print(&a.out, "lab", &report, || table(&report))?;
    Ok(if report.all_match() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}

/// The matrix for people, then the summary and notes.
pub fn table(r: &Report) -> String {
    let mut t = report::table([
        "device", "from", "flow", "kind", "traffic", "to", "expected", "observed", "",
    ]);
    for row in &r.rows {
        let observed = match &row.observed {
            portolan_lab::send::Observed::WrongAnswer(d)
            | portolan_lab::send::Observed::Error(d)
            | portolan_lab::send::Observed::Skip(d) => format!("{}: {d}", row.observed.as_str()),
            o => o.as_str().to_string(),
        };
        let from = match &row.sent_from {
            Some(f) => format!("{} (forged, {f})", row.src),
            None => row.src.to_string(),
        };
        t.add_row([
            row.device.clone(),
            from,
            row.flow.clone(),
            row.kind.as_str().to_string(),
            row.traffic.clone(),
            row.dst.clone(),
            row.expected.as_str().to_string(),
            observed,
            if row.ok { "ok" } else { "MISMATCH" }.to_string(),
        ]);
    }
    let s = &r.summary;
    let mut out = format!("{t}\n");
    out.push_str(&format!(
        "lab {}: {} probes; {} expected to pass, {} expected to be dropped ({} of them adversarial: spoofed, foreign MAC, unicast, narrowed port, unbound peer); {} as expected, {} mismatched, {} skipped; {} admitting rules read from the kernel's trace; {:.1} s\n",
        r.site, s.probes, s.expected_pass, s.expected_drop, s.adversarial, s.matched, s.mismatched, s.skipped, s.attributed, s.seconds
    ));
    for row in r.rows.iter().filter(|x| !x.ok) {
        if let Some(n) = &row.note {
            out.push_str(&format!(
                "mismatch {} {} {} {}: {n}\n",
                row.device, row.flow, row.traffic, row.dst
            ));
        }
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
