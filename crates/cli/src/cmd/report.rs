//! `portolan report SITE [-o report.html]`: the site's page, rendered by `portolan-report`
//! with the overlays given. With `-o`, the page is written whole (or not at all) and the
//! summary printed (a line, or JSON with `--format json`); without it the page goes to
//! standard output. Exit 1 when an overlay shows a flow red, or finds on a group what no flow
//! explains (an audit violation, a port a scan found open beyond the profile).

use portolan_report::{OverlayFiles, Overlays, Summary};

use crate::cli::{CatalogArgs, ReportArgs};
use crate::output::Outcome;

pub fn run(g: &CatalogArgs, a: &ReportArgs) -> anyhow::Result<Outcome> {
    if a.out.json() && a.file.output.is_none() {
        return crate::contract::fail(
            "usage",
            "--format json prints the summary on standard output: give -o FILE for the page",
        );
    }
    let Some(policy) = super::load_site(g, &a.site, a.out.json())? else {
        return Ok(Outcome::BadInput);
    };
    let files = OverlayFiles {
        lab: a.lab.clone(),
        probe: a.probe.clone(),
        audit: a.audit.clone(),
        verify: a.verify.clone(),
        lint: a.lint.clone(),
        scan: a.scan.clone(),
    };
    let overlays = Overlays::read(&files, &policy.site)?;
    let rendered = portolan_report::render(&policy, &overlays)?;
    crate::write::to_output(a.file.output.as_deref(), rendered.html.as_bytes())?;
    if let Some(path) = &a.file.output {
        crate::report::print(&a.out, "report", &rendered.summary, || {
            line(&rendered.summary, &path.display().to_string())
        })?;
    }
    Ok(
        if rendered.summary.red > 0 || rendered.summary.red_notes > 0 {
            Outcome::Findings
        } else {
            Outcome::Ok
        },
    )
}

fn line(s: &Summary, path: &str) -> String {
    let mut out = format!(
        "report {}: {} ({} bytes): {} groups, {} flows",
        s.site, path, s.bytes, s.groups, s.flows
    );
    if s.sources.is_empty() {
        out.push_str("; no results given\n");
    } else {
        out.push_str(&format!(
            "; from {}: {} green, {} red, {} grey\n",
            s.sources.join(", "),
            s.green,
            s.red,
            s.grey
        ));
    }
    for r in &s.red_flows {
        out.push_str(&format!("red: #{r}\n"));
    }
    if s.red_notes > 0 {
        out.push_str(&format!(
            "red: {} finding(s) on groups that no flow explains (see the groups' notes)\n",
            s.red_notes
        ));
    }
    out
}
