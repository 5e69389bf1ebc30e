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

use crate::cli::{CatalogArgs, LabArgs};
use crate::output::Outcome;
use crate::report;

pub fn run(g: &CatalogArgs, a: &LabArgs) -> anyhow::Result<Outcome> {
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
        dns: if a.dns == "enforce" {
            lab::DnsMode::Enforce
        } else {
            lab::DnsMode::Dnsmasq
        },
        ..Options::default()
    };
    let report = lab::run(&policy, &opts, &|m| eprintln!("lab: {m}"))?;
    report::print(&a.out, "lab", &report, || table(&report, a.all))?;
    Ok(if report.all_match() {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}

/// For people: a summary per device group, the rows that did not behave as expected (every
/// row with `all`), then the summary line and notes.
pub fn table(r: &Report, all: bool) -> String {
    let mut groups = report::table(["device", "probes", "as expected", "mismatched", "skipped"]);
    crate::table::fit(&mut groups);
    let mut per: Vec<(&str, [usize; 4])> = Vec::new();
    for row in &r.rows {
        let at = match per.iter().position(|(d, _)| *d == row.device) {
            Some(i) => i,
            None => {
                per.push((&row.device, [0; 4]));
                per.len() - 1
            }
        };
        let c = &mut per[at].1;
        c[0] += 1;
        let skipped = matches!(row.observed, portolan_lab::send::Observed::Skip(_));
        if skipped {
            c[3] += 1;
        } else if row.ok {
            c[1] += 1;
        } else {
            c[2] += 1;
        }
    }
    for (device, c) in &per {
        groups.add_row([
            device.to_string(),
            c[0].to_string(),
            c[1].to_string(),
            c[2].to_string(),
            c[3].to_string(),
        ]);
    }
    let mut t = report::table([
        "device", "from", "flow", "kind", "traffic", "to", "expected", "observed", "",
    ]);
    crate::table::fit(&mut t);
    let mut shown = 0;
    for row in r.rows.iter().filter(|x| all || !x.ok) {
        shown += 1;
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
    // Device, flow and traffic whole: a probe is found by them.
    crate::table::keep_whole(&mut t, &[0, 2, 4]);
    let s = &r.summary;
    let mut out = format!("{groups}\n");
    if shown > 0 {
        out.push_str(&format!("{t}\n"));
    }
    if !all && shown < r.rows.len() {
        out.push_str(&format!(
            "{} row(s) behaved as expected and are not listed: `--all` lists every probe\n",
            r.rows.len() - shown
        ));
    }
    out.push_str(&crate::table::wrap(&format!(
        "lab {}: {} probes; {} expected to pass, {} expected to be dropped ({} of them adversarial: spoofed, foreign MAC, unicast, narrowed port, unbound peer); {} as expected, {} mismatched, {} skipped; {} admitting rules read from the kernel's trace; {:.1} s",
        r.site, s.probes, s.expected_pass, s.expected_drop, s.adversarial, s.matched, s.mismatched, s.skipped, s.attributed, s.seconds
    ), 2));
    for row in r.rows.iter().filter(|x| !x.ok) {
        if let Some(n) = &row.note {
            out.push_str(&format!(
                "mismatch {} {} {} {}: {n}\n",
                row.device, row.flow, row.traffic, row.dst
            ));
        }
    }
    for n in &r.notes {
        out.push_str(&crate::table::wrap(&format!("note: {n}"), 2));
    }
    out
}

#[cfg(test)]
mod tests {
    use portolan_lab::probe::{Fate, Kind};
    use portolan_lab::report::{Report, Row};
    use portolan_lab::send::Observed;

    fn row(device: &str, flow: &str, expected: Fate, observed: Observed) -> Row {
        let ok = matches!(
            (&expected, &observed),
            (Fate::Pass, Observed::Pass) | (Fate::Drop, Observed::Drop)
        );
        Row {
            device: device.into(),
            flow: flow.into(),
            kind: Kind::Required,
            traffic: format!("tcp {flow}"),
            src: "10.20.0.10".parse().expect("address"),
            dst: "198.51.100.10".into(),
            expected,
            observed,
            ok,
            note: None,
            sent_from: None,
            admitted_by: None,
        }
    }

    /// By default the summary per device and only the rows that went wrong; `--all` every row.
    #[test]
    fn the_matrix_is_listed_only_with_all() {
        let r = Report::new(
            "plant",
            vec![
                row("lrr", "pass-ok", Fate::Pass, Observed::Pass),
                row("lrr", "drop-ok", Fate::Drop, Observed::Drop),
                row("lrr", "leaks", Fate::Drop, Observed::Pass),
                row("oscar", "cloud", Fate::Pass, Observed::Pass),
            ],
            1.0,
        );
        let short = super::table(&r, false);
        // Summary rows: device, probes, as expected, mismatched, skipped (counted by hand).
        assert!(
            short.lines().any(|l| {
                let cells: Vec<&str> = l
                    .split(['│', '┆'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                cells == ["lrr", "3", "2", "1", "0"]
            }),
            "{short}"
        );
        assert!(
            short.lines().any(|l| {
                let cells: Vec<&str> = l
                    .split(['│', '┆'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect();
                cells == ["oscar", "1", "1", "0", "0"]
            }),
            "{short}"
        );
        assert!(short.contains("tcp leaks"), "{short}");
        assert!(
            !short.contains("tcp pass-ok") && !short.contains("tcp cloud"),
            "{short}"
        );
        assert!(
            short.contains("3 row(s) behaved as expected and are not listed"),
            "{short}"
        );
        let all = super::table(&r, true);
        for f in ["pass-ok", "drop-ok", "leaks", "cloud"] {
            assert!(all.contains(&format!("tcp {f}")), "{f}: {all}");
        }
        assert!(!all.contains("not listed"), "{all}");
    }
}
