//! `portolan show ID [--mode M]`: a profile's flows as a readable table, or JSON.

use portolan_model::{Condition, Flow, Profile};
use serde::Serialize;

use crate::cli::{CatalogArgs, ShowArgs};
use crate::output::Outcome;
use crate::report;

/// The JSON shape of `show --format json` (`portolan/show/v1`, `schemas/show.v1.json`).
#[derive(Serialize)]
pub struct ShowJson<'a> {
    pub id: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
    pub mode: Option<&'a str>,
    /// A multi-homed device's interfaces (edition 2); absent when the profile declares none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub interfaces: &'a [portolan_model::Interface],
    pub flows: Vec<FlowJson<'a>>,
}

/// One flow in the contract's forms (`crate::contract`): protocol `{name, number}`, ports as
/// ranges, conditions as objects; keys that do not apply are absent.
#[derive(Serialize)]
pub struct FlowJson<'a> {
    pub id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub initiation: &'static str,
    pub protocol: serde_json::Value,
    pub ports: Option<serde_json::Value>,
    pub optional: bool,
    pub modes: &'a [String],
    pub app: Option<&'a str>,
    pub description: Option<&'a str>,
    pub conditions: Vec<serde_json::Value>,
    pub inside: Option<&'a portolan_model::Inside>,
    /// The device's interfaces the flow uses (edition 2); absent when it names none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub interface: &'a [String],
    pub source: &'a [portolan_model::Citation],
}

/// A condition as the table writes it.
pub fn condition_text(c: &Condition) -> String {
    match c {
        Condition::Feature(f) => format!("feature {f}"),
        Condition::Version(v) => format!("version {v}"),
        Condition::Region(r) => format!("region {r}"),
        other => other.to_string(),
    }
}

pub fn flow_json(f: &Flow) -> FlowJson<'_> {
    FlowJson {
        id: &f.id,
        from: &f.from,
        to: &f.to,
        initiation: f.initiation.name(),
        protocol: crate::contract::protocol(&f.protocol),
        ports: crate::contract::ports(&f.ports),
        optional: f.optional,
        modes: &f.modes,
        app: f.app.as_deref(),
        description: f.description.as_deref(),
        conditions: f
            .conditions
            .iter()
            .map(crate::contract::condition)
            .collect(),
        inside: f.inside.as_ref(),
        interface: &f.interfaces,
        source: &f.source,
    }
}

pub fn run(g: &CatalogArgs, a: &ShowArgs) -> anyhow::Result<Outcome> {
    let p = super::resolve_profile(g, &a.id)?;
    super::check_mode(&p, a.mode.as_deref())?;
    let json = ShowJson {
        id: &p.id,
        vendor: &p.vendor,
        product: &p.product,
        mode: a.mode.as_deref(),
        interfaces: &p.interfaces,
        flows: p.flows_in(a.mode.as_deref()).map(flow_json).collect(),
    };
    report::print(&a.out, "show", &json, || table(&p, a.mode.as_deref()))?;
    Ok(Outcome::Ok)
}

/// A flow with the device's own segment (`segment: true`): who its peer is, and, for DHCP
/// served there, that the firewall never sees the exchange (compile documents it, opens
/// nothing).
pub fn segment_note(p: &Profile, f: &portolan_model::Flow) -> Option<String> {
    let e = p.endpoint(f.peer()).filter(|e| e.segment)?;
    let dhcp = f.protocol == portolan_model::Protocol::Udp
        && f.ports.to_strings() == ["67"]
        && f.initiation == portolan_model::Initiation::Peer;
    Some(if dhcp {
        format!(
            "{}: the device's own segment, DHCP the firewall never sees (opens nothing)",
            e.id
        )
    } else {
        format!("{}: the device's own segment", e.id)
    })
}

/// The human table: one line per flow.
pub fn table(p: &Profile, mode: Option<&str>) -> String {
    let name = if p.product.starts_with(&p.vendor) {
        p.product.clone()
    } else {
        format!("{} {}", p.vendor, p.product)
    };
    let mut out = crate::table::wrap(
        &format!(
            "{} — {name} ({})",
            p.id,
            mode.map_or("all modes".to_string(), |m| format!("mode {m}"))
        ),
        2,
    );
    let mut t = report::table([
        "id",
        "modes",
        "from",
        "to",
        "initiation",
        "proto",
        "ports",
        "app",
        "opt",
        "notes",
    ]);
    crate::table::fit(&mut t);
    for f in p.flows_in(mode) {
        let mut notes: Vec<String> = Vec::new();
        match f.interfaces.as_slice() {
            [] => {}
            [one] => notes.push(format!("interface {one}")),
            many => notes.push(format!("interfaces {}", many.join(", "))),
        }
        notes.extend(f.conditions.iter().map(condition_text));
        if let Some(i) = &f.inside {
            notes.push(format!(
                "inside {}{}",
                i.flow,
                i.port.map(|p| format!(":{p}")).unwrap_or_default()
            ));
        }
        if let Some(k) = f.keepalive {
            notes.push(format!("keepalive {k}s"));
        }
        notes.extend(f.edition2_notes());
        notes.extend(segment_note(p, f));
        if f.persistent {
            notes.push("persistent".into());
        }
        if let Some(t) = f.tls.as_ref().and_then(|t| t.expected_issuer.as_ref()) {
            notes.push(format!("issuer: {t}"));
        }
        let modes = if f.modes.is_empty() {
            "all".to_string()
        } else {
            f.modes.join(",")
        };
        t.add_row([
            f.id.clone(),
            modes,
            f.from.clone(),
            f.to.clone(),
            f.initiation.name().to_string(),
            f.protocol.to_string(),
            f.ports.to_string(),
            f.app.clone().unwrap_or_default(),
            if f.optional { "yes" } else { "" }.to_string(),
            notes.join("; "),
        ]);
    }
    // The flow id and protocol whole (a flow is found by its id); the other columns wrap.
    crate::table::keep_whole(&mut t, &[0, 5]);
    out.push_str(&t.to_string());
    out.push('\n');
    for alt in &p.alternatives {
        if let Some(text) = alt.sentence(p, mode) {
            out.push_str(&crate::table::wrap(
                &format!("alternatives `{}`: {text}", alt.id),
                2,
            ));
        }
    }
    for i in &p.interfaces {
        let about = i
            .description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        out.push_str(&crate::table::wrap(
            &format!("interface `{}`{about}", i.id),
            2,
        ));
    }
    for r in &p.requirements {
        out.push_str(&crate::table::wrap(&format!("requirement {}", r.line()), 2));
    }
    if let portolan_model::Listens::Entries(es) = &p.listens {
        for e in es.iter().filter(|e| e.loopback_only()) {
            let ports = match &e.ports {
                portolan_model::ListenPorts::Closed => "none".to_string(),
                portolan_model::ListenPorts::Ports(ps) => ps.to_string(),
            };
            out.push_str(&crate::table::wrap(
                &format!(
                    "listens {} {ports}: loopback only (opens nothing){}",
                    e.protocol,
                    e.description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                2,
            ));
        }
    }
    out
}
