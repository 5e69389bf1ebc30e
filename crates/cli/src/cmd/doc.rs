//! `portolan doc ID --format markdown`: vendor-style documentation of a profile. One table per
//! mode with the vendor's columns, so a reader can lay it beside the source document.
//! `--format html` is the same profile as a page, made by `portolan-report` with the report's
//! templates.

use portolan_model::{Flow, Initiation, ListenPorts, Listens, Profile, Protocol};

use crate::cli::{CatalogArgs, DocArgs, DocFormat};
use crate::output::Outcome;

pub fn run(g: &CatalogArgs, a: &DocArgs) -> anyhow::Result<Outcome> {
    let p = super::resolve_profile(g, &a.id)?;
    super::check_mode(&p, a.mode.as_deref())?;
    match a.format {
        DocFormat::Markdown => print!("{}", markdown(&p, a.mode.as_deref())),
        DocFormat::Html => print!(
            "{}",
            portolan_report::render_profile(&p, a.mode.as_deref())?
        ),
        DocFormat::Json => {
            // The flows in the contract's forms, and the profile itself in the profile file
            // format (`portolan schema profile`).
            let flows: Vec<_> = p
                .flows_in(a.mode.as_deref())
                .map(super::show::flow_json)
                .collect();
            crate::contract::print(
                "doc",
                &serde_json::json!({ "id": p.id, "mode": a.mode, "profile": p, "flows": flows }),
            )?;
        }
    }
    Ok(Outcome::Ok)
}

/// Escapes a table cell: pipes, newlines, and HTML-significant characters.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

fn side(p: &Profile, f: &Flow, id: &str) -> String {
    if id == portolan_model::DEVICE {
        // A multi-homed device: the interface(s) the flow uses.
        return match f.interfaces.as_slice() {
            [] => "device".into(),
            [one] => format!("device (interface {one})"),
            many => format!("device (interfaces {})", many.join(", ")),
        };
    }
    match p.endpoint(id) {
        Some(e) if e.segment => format!("{id} (the device's own segment)"),
        Some(e) if !e.hosts.is_empty() => format!("{id} ({})", e.hosts.join(", ")),
        Some(e) if !e.domains.is_empty() => format!("{id} ({})", e.domains.join(", ")),
        Some(e) if e.discovered.is_some() => format!(
            "{id} ({})",
            e.discovered
                .as_ref()
                .map(super::show::discovered_note)
                .unwrap_or_default()
        ),
        _ => id.to_string(),
    }
}

fn dest_ports(f: &Flow) -> String {
    let proto = match &f.protocol {
        Protocol::Unspecified => None,
        p => Some(p.to_string().to_uppercase()),
    };
    match (proto, f.ports.to_strings().as_slice()) {
        (_, []) => "-".to_string(),
        (None, [p]) if p == "unspecified" => "unspecified".to_string(),
        (None, ports) => format!("unspecified protocol, port {}", ports.join(" ")),
        (Some(proto), ports) => ports
            .iter()
            .map(|p| format!("{proto}/{p}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn kind(f: &Flow) -> &'static str {
    match f.initiation {
        Initiation::Either => "Bidirectional",
        Initiation::Device | Initiation::Peer => "Unidirectional",
    }
}

fn row(p: &Profile, f: &Flow) -> String {
    let mut desc = f.description.clone().unwrap_or_default();
    if f.optional && !desc.to_ascii_lowercase().contains("optional") {
        desc.push_str(" (optional)");
    }
    for c in &f.conditions {
        desc.push_str(&format!(" [{}]", super::show::condition_text(c)));
    }
    for n in f.edition2_notes() {
        desc.push_str(&format!(" [{n}]"));
    }
    if let Some(n) = super::show::segment_note(p, f) {
        desc.push_str(&format!(" [{n}]"));
    }
    let app = f
        .app
        .clone()
        .unwrap_or_else(|| f.protocol.to_string().to_uppercase());
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        cell(&f.id),
        cell(&side(p, f, &f.from)),
        kind(f),
        cell(&app),
        cell(&dest_ports(f)),
        cell(&side(p, f, &f.to)),
        cell(desc.trim())
    )
}

const HEADER: &str = "| # | From | Type | Protocol | Dest. port | To | Description |\n|---|---|---|---|---|---|---|\n";

fn section(out: &mut String, p: &Profile, mode: Option<&str>) {
    let (outer, inner): (Vec<&Flow>, Vec<&Flow>) =
        p.flows_in(mode).partition(|f| f.inside.is_none());
    out.push_str(HEADER);
    for f in outer {
        out.push_str(&row(p, f));
    }
    if !inner.is_empty() {
        out.push_str(
            "\nCarried inside other flows (enforce the outer flow; listed for reference):\n\n",
        );
        out.push_str("| # | Inside | From | Protocol | Dest. port | To | Description |\n|---|---|---|---|---|---|---|\n");
        for f in inner {
            let inside = f
                .inside
                .as_ref()
                .map(|i| {
                    format!(
                        "{}{}",
                        i.flow,
                        i.port.map(|p| format!(" (port {p})")).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&f.id),
                cell(&inside),
                cell(&side(p, f, &f.from)),
                cell(f.app.as_deref().unwrap_or("")),
                cell(&dest_ports(f)),
                cell(&side(p, f, &f.to)),
                cell(f.description.as_deref().unwrap_or(""))
            ));
        }
    }
}

/// The whole document.
pub fn markdown(p: &Profile, mode: Option<&str>) -> String {
    let mut out = format!("# {} — {}\n\n", cell(&p.vendor), cell(&p.product));
    if let Some(d) = &p.description {
        out.push_str(&format!("{}\n\n", cell(d)));
    }
    if !p.versions.is_empty() {
        out.push_str(&format!("Versions: {}\n\n", cell(&p.versions.join("; "))));
    }
    if !p.interfaces.is_empty() {
        out.push_str(
            "## Interfaces of the device\n\n| Interface | Description | Source |\n|---|---|---|\n",
        );
        for i in &p.interfaces {
            let cites: Vec<String> = i
                .source
                .iter()
                .map(|c| format!("{}: {}", c.doc, c.reference))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&i.id),
                cell(i.description.as_deref().unwrap_or("")),
                cell(&cites.join("; "))
            ));
        }
        out.push('\n');
    }
    if p.modes.is_empty() {
        out.push_str("## Flows\n\n");
        section(&mut out, p, None);
    } else {
        for m in p.modes.iter().filter(|m| mode.is_none_or(|x| x == m.id)) {
            out.push_str(&format!(
                "## Mode `{}`: {}\n\n",
                m.id,
                cell(m.description.as_deref().unwrap_or(""))
            ));
            section(&mut out, p, Some(&m.id));
            out.push('\n');
        }
    }
    for a in &p.alternatives {
        if let Some(text) = a.sentence(p, mode) {
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            out.push_str(&format!(
                "\n{}{} ({}): {}\n",
                first.unwrap_or_default(),
                cell(chars.as_str()),
                a.id,
                cell(a.description.as_deref().unwrap_or(""))
            ));
        }
    }
    if !p.requirements.is_empty() {
        out.push_str("\n## Requirements that are not flows\n\n");
        for r in &p.requirements {
            out.push_str(&format!("- {}\n", cell(&r.line())));
        }
    }
    if !p.params.is_empty() {
        out.push_str("\n## Parameters the site sets\n\n| Param | Type | Default | Description |\n|---|---|---|---|\n");
        for prm in &p.params {
            let default = match &prm.default {
                Some(portolan_model::ParamValue::Ports(ps)) => ps.to_string(),
                Some(portolan_model::ParamValue::Text(t)) => t.clone(),
                None => "(required)".into(),
            };
            let kind = format!("{:?}", prm.kind).to_lowercase();
            let kind = if prm.values.is_empty() {
                kind
            } else {
                format!("{kind}: {}", prm.values.join(", "))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&prm.id),
                cell(&kind),
                cell(&default),
                cell(prm.description.as_deref().unwrap_or(""))
            ));
        }
    }
    out.push_str("\n## Exposed by the device\n\n");
    match &p.listens {
        Listens::Nothing => out.push_str("Nothing: the device accepts no connection.\n"),
        Listens::Unspecified => out.push_str("Not stated by the source.\n"),
        Listens::Entries(es) => {
            // An entry tied to a flow belongs to that flow's modes.
            let in_mode = |e: &&portolan_model::Listen| match (&e.flow, mode) {
                (Some(id), Some(_)) => p.flows_in(mode).any(|f| &f.id == id),
                _ => true,
            };
            let shown: Vec<_> = es.iter().filter(in_mode).collect();
            if shown.is_empty() {
                out.push_str("No listen entry of the profile applies to this mode.\n");
            }
            for e in shown {
                let ports = match &e.ports {
                    ListenPorts::Closed => "no open port".to_string(),
                    ListenPorts::Ports(ps) => ps.to_string(),
                };
                let bind = if e.loopback_only() {
                    " (loopback only: not reachable from the network, the firewall opens nothing for it)"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "- {} {}{bind}: {}\n",
                    e.protocol.to_string().to_uppercase(),
                    cell(&ports),
                    cell(e.description.as_deref().unwrap_or(""))
                ));
            }
        }
    }
    if !p.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &p.notes {
            let head = if n.topic == portolan_model::NoteTopic::Contradiction {
                let docs: Vec<&str> = n.source.iter().map(|c| c.doc.as_str()).collect();
                format!("Sources contradict each other ({}): ", docs.join(", "))
            } else {
                String::new()
            };
            out.push_str(&format!("- {head}{}\n", cell(&n.text)));
        }
    }
    out.push_str("\n## Sources\n\n");
    for s in &p.sources {
        let loc = s.file.as_deref().or(s.url.as_deref()).unwrap_or("");
        let mut when: Vec<String> = s.date.iter().chain(&s.revision).cloned().collect();
        if let Some(w) = s.perspective {
            when.push(format!("tables from the {}'s side", w.name()));
        }
        let when = if when.is_empty() {
            String::new()
        } else {
            format!(", {}", when.join(", "))
        };
        out.push_str(&format!(
            "- `{}`: {} ({}{})\n",
            s.id,
            cell(&s.title),
            cell(loc),
            cell(&when)
        ));
    }
    out
}
