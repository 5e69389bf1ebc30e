//! `portolan show ID [--mode M]`: a profile's flows as a readable table, or JSON. With a site
//! file and `--device D`, the device's profile in its mode, each flow marked with how the
//! site's policy carries it (`route.rs`: direct, via the site's proxy, documented, or not).

use portolan_model::{Condition, Flow, Profile};
use serde::Serialize;

use crate::cli::{CatalogArgs, ShowArgs};
use crate::output::Outcome;
use crate::report;

mod route;
use route::Route;

/// The JSON shape of `show --format json` (`portolan/show/v1`, `schemas/show.v1.json`).
#[derive(Serialize)]
pub struct ShowJson<'a> {
    pub id: &'a str,
    pub vendor: &'a str,
    pub product: &'a str,
    pub mode: Option<&'a str>,
    /// `show SITE --device D`: the site and the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<&'a str>,
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
    /// `show SITE --device D`: how the site's policy carries the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    pub source: &'a [portolan_model::Citation],
}

/// How a discovered peer is learnt and, unbound, filled: the note `show` and `doc` print.
pub fn discovered_note(d: &portolan_model::profile::Discovered) -> String {
    match d {
        portolan_model::profile::Discovered::Srv { .. } => format!(
            "peer {d}: its targets at the record's port, per device, by `portolan enforce`; or the site binds it"
        ),
        _ => format!("peer {d}: the site binds it"),
    }
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
        route: None,
        source: &f.source,
    }
}

pub fn run(g: &CatalogArgs, a: &ShowArgs) -> anyhow::Result<Outcome> {
    let path = std::path::Path::new(&a.id);
    let is_site = path.is_file()
        && std::fs::read_to_string(path).is_ok_and(|t| portolan_model::compile::is_site_text(&t));
    if is_site {
        return site(g, a, path);
    }
    if a.device.is_some() {
        return crate::contract::fail(
            "usage",
            format!("--device needs a site file; `{}` is a profile", a.id),
        );
    }
    let p = super::resolve_profile(g, &a.id)?;
    super::check_mode(&p, a.mode.as_deref())?;
    let json = ShowJson {
        id: &p.id,
        vendor: &p.vendor,
        product: &p.product,
        mode: a.mode.as_deref(),
        site: None,
        device: None,
        interfaces: &p.interfaces,
        flows: p.flows_in(a.mode.as_deref()).map(flow_json).collect(),
    };
    report::print(&a.out, "show", &json, || table(&p, a.mode.as_deref()))?;
    Ok(Outcome::Ok)
}

/// `show SITE --device D`: the device's flows in its mode (and interfaces), each with its
/// route through the compiled policy.
fn site(g: &CatalogArgs, a: &ShowArgs, path: &std::path::Path) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, path, a.out.json())? else {
        return Ok(Outcome::BadInput);
    };
    let devices: Vec<&str> = {
        let mut d: Vec<&str> = policy.groups.iter().map(|g| g.device()).collect();
        d.dedup();
        d
    };
    let Some(device) = a.device.as_deref() else {
        return crate::contract::fail(
            "usage",
            format!(
                "`{}` is a site: name the device with --device (devices: {})",
                a.id,
                devices.join(", ")
            ),
        );
    };
    let groups = route::groups(&policy, device);
    let Some(first) = groups.first() else {
        return crate::contract::fail(
            "unknown-device",
            format!(
                "site `{}` has no device `{device}` (devices: {})",
                policy.site,
                devices.join(", ")
            ),
        );
    };
    if a.mode.is_some() && a.mode != first.mode {
        return crate::contract::fail(
            "unknown-mode",
            format!(
                "device `{device}` is in mode {}; with a site, --mode is the device's own",
                first.mode.as_deref().unwrap_or("(none)")
            ),
        );
    }
    let Some(p) = policy.profiles.get(&first.profile) else {
        anyhow::bail!("the compiled site holds no profile `{}`", first.profile);
    };
    let mode = first.mode.as_deref();
    let uses = |f: &Flow| {
        groups
            .iter()
            .any(|g| g.interface.as_deref().is_none_or(|i| p.flow_uses(f, i)))
    };
    let route_of = |f: &Flow| {
        let here: Vec<&portolan_model::ir::Group> = groups
            .iter()
            .copied()
            .filter(|g| g.interface.as_deref().is_none_or(|i| p.flow_uses(f, i)))
            .collect();
        uses(f).then(|| route::route(&policy, &here, &f.id))
    };
    let json = ShowJson {
        id: &p.id,
        vendor: &p.vendor,
        product: &p.product,
        mode,
        site: Some(&policy.site),
        device: Some(device),
        interfaces: &p.interfaces,
        flows: p
            .flows_in(mode)
            .filter(|f| uses(f))
            .map(|f| FlowJson {
                route: route_of(f),
                ..flow_json(f)
            })
            .collect(),
    };
    report::print(&a.out, "show", &json, || {
        let mut out = crate::table::wrap(&format!("site {}, device {device}:", policy.site), 2);
        out.push_str(&table(p, mode));
        out.push_str("routes through the site's policy:\n");
        for f in p.flows_in(mode) {
            let text = match route_of(f) {
                Some(r) => r.text(),
                None => "not on this device's interfaces".to_string(),
            };
            out.push_str(&format!("  {}: {text}\n", f.id));
        }
        out
    })?;
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
        if let Some(d) = p.endpoint(f.peer()).and_then(|e| e.discovered.as_ref()) {
            notes.push(discovered_note(d));
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
    // A source whose tables are written from another side than the device's: its rows were
    // turned round into the device's flows above, which a reader checking them should know.
    for s in &p.sources {
        if let Some(w) = s
            .perspective
            .filter(|w| *w != portolan_model::Perspective::Device)
        {
            out.push_str(&crate::table::wrap(
                &format!(
                    "source `{}` writes its tables from the {}'s side; the flows above are the device's",
                    s.id,
                    w.name()
                ),
                2,
            ));
        }
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
