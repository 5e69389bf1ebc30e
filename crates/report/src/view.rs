//! The page as data: what the template shows, built from the policy IR, the profiles it
//! carries, the emitted ruleset and the overlays. Everything is ordered by the site and the
//! profiles (groups as the site lists them, flows as the profile lists them), never by a hash,
//! so the same inputs give the same page byte for byte.

use std::collections::BTreeSet;

use ipnet::IpNet;
use portolan_model::ir::{Documented, Group, Initiator, Policy, PortRange, Rule};
use portolan_model::profile::{Condition, Flow, Profile};
use serde::Serialize;

use crate::overlay::{Color, Mark, Overlays, Source};
use crate::rules::{Emitted, EmittedRule};

#[derive(Serialize)]
pub struct Page {
    pub site: String,
    pub zones: Vec<ZoneView>,
    pub groups: Vec<GroupView>,
    /// The overlays given, by name.
    pub sources: Vec<&'static str>,
    pub totals: Totals,
    /// Groups with a red note (what a source found that no flow explains): id and anchor,
    /// named at the top of the page so that a reader does not take "0 red flows" for "all
    /// well".
    pub flagged: Vec<(String, String)>,
}

#[derive(Default, Serialize)]
pub struct Totals {
    pub groups: usize,
    pub flows: usize,
    pub green: usize,
    pub grey: usize,
    pub red: usize,
    /// Flows no source spoke of (documented-only rows, flows no result names).
    pub none: usize,
}

#[derive(Serialize)]
pub struct ZoneView {
    pub id: String,
    pub interface: String,
    pub networks: String,
}

#[derive(Serialize)]
pub struct GroupView {
    pub id: String,
    pub anchor: String,
    pub profile: String,
    pub product: String,
    pub mode: String,
    pub zone: String,
    pub addresses: String,
    pub flows: Vec<FlowView>,
    /// What an overlay found that is no flow of the group (audit violations).
    pub notes: Vec<NoteView>,
}

#[derive(Serialize)]
pub struct NoteView {
    pub source: &'static str,
    pub color: Color,
    pub text: String,
}

#[derive(Serialize)]
pub struct FlowView {
    /// `flow-<group>/<flow>`: group ids and flow ids never hold `/`, so it is unique.
    pub anchor: String,
    pub id: String,
    /// `profile/flow`.
    pub provenance: String,
    /// Enforced by rules (`false`: documented only, with `reason`).
    pub enforced: bool,
    pub reason: String,
    /// `device → slrc`, as the profile writes the row.
    pub direction: String,
    pub initiation: &'static str,
    /// `udp/500, 4500`, `esp`, `icmp echo-request`.
    pub traffic: String,
    /// Ports alone (`500,4500`, `3001-3003`), for the port filter.
    pub ports: String,
    pub peers: String,
    pub optional: bool,
    pub app: String,
    pub description: String,
    pub citations: Vec<CitationView>,
    pub conditions: Vec<String>,
    pub alternatives: Vec<String>,
    pub inside: String,
    pub rules: Vec<EmittedRule>,
    pub marks: Vec<MarkView>,
    /// The worst mark's colour, `none` without marks.
    pub status: &'static str,
}

#[derive(Serialize)]
pub struct CitationView {
    pub doc: String,
    pub title: String,
    pub reference: String,
    /// Shown as text, never as a link: the page fetches and links nothing outside itself.
    pub url: String,
}

#[derive(Serialize)]
pub struct MarkView {
    pub source: &'static str,
    pub color: &'static str,
    pub evidence: Vec<String>,
}

fn color_name(c: Color) -> &'static str {
    match c {
        Color::Green => "green",
        Color::Grey => "grey",
        Color::Red => "red",
    }
}

/// An address as nft and people write it: a host without its `/32` or `/128`.
pub fn net_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn ports_text(ports: &[PortRange]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `udp/500,4500`, `esp`, `icmp echo-request`: what one rule admits.
pub fn traffic_of(r: &Rule) -> String {
    let mut t = r.protocol.to_string();
    if !r.ports.is_empty() {
        t.push('/');
        t.push_str(&ports_text(&r.ports));
    }
    if let Some(i) = &r.icmp_type {
        t.push(' ');
        t.push_str(i);
    }
    t
}

/// The peers of a rule in words: addresses, names, `*.domain`, `this firewall`, and the
/// broadcast or multicast destination.
pub fn peers_of(r: &Rule) -> String {
    let mut v: Vec<String> = Vec::new();
    if r.peers.firewall {
        v.push("this firewall".into());
    }
    v.extend(r.peers.prefixes.iter().map(net_text));
    v.extend(r.peers.names.iter().cloned());
    v.extend(r.peers.wildcards.iter().map(|d| format!("*.{d}")));
    if r.broadcast {
        if r.multicast.is_empty() {
            v.push("(broadcast)".into());
        } else {
            let g: Vec<String> = r.multicast.iter().map(net_text).collect();
            v.push(format!("(multicast {})", g.join(", ")));
        }
    }
    v.join(", ")
}

fn condition_text(c: &Condition) -> String {
    match c {
        Condition::Feature(f) => format!("feature {f} enabled"),
        Condition::Version(v) => format!("version {v}"),
        Condition::Region(r) => format!("region {r}"),
        other => other.to_string(),
    }
}

/// The row `id` of `profile` in `mode`: flow ids are unique within a mode, not across them
/// (ThingPark's `i7a` is one row of the IPsec table and another of the TLS table).
pub fn flow_of<'a>(profile: &'a Profile, mode: Option<&str>, id: &str) -> Option<&'a Flow> {
    profile.flows.iter().find(|f| {
        f.id == id && (f.modes.is_empty() || mode.is_some_and(|m| f.modes.iter().any(|x| x == m)))
    })
}

/// Builds the page.
pub fn page(policy: &Policy, emitted: &Emitted, overlays: &Overlays) -> Page {
    let mut totals = Totals::default();
    let zones = policy
        .zones
        .iter()
        .map(|z| ZoneView {
            id: z.id.clone(),
            interface: z.interface.clone().unwrap_or_default(),
            networks: z
                .networks
                .iter()
                .map(net_text)
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let mut groups = Vec::with_capacity(policy.groups.len());
    // Rules and documented rows by group, in IR order, looked up once.
    let mut rules_by_group: std::collections::HashMap<&str, Vec<&Rule>> =
        std::collections::HashMap::new();
    for r in &policy.rules {
        rules_by_group.entry(r.group.as_str()).or_default().push(r);
    }
    let mut documented_by_group: std::collections::HashMap<&str, Vec<&Documented>> =
        std::collections::HashMap::new();
    for d in &policy.documented {
        documented_by_group
            .entry(d.group.as_str())
            .or_default()
            .push(d);
    }
    for g in &policy.groups {
        let rules = rules_by_group.remove(g.id.as_str()).unwrap_or_default();
        let documented = documented_by_group
            .remove(g.id.as_str())
            .unwrap_or_default();
        let gv = group_view(
            policy,
            g,
            &rules,
            &documented,
            emitted,
            overlays,
            &mut totals,
        );
        groups.push(gv);
    }
    totals.groups = groups.len();
    totals.none = totals.flows - totals.green - totals.grey - totals.red;
    let flagged = groups
        .iter()
        .filter(|g| g.notes.iter().any(|n| n.color == Color::Red))
        .map(|g| (g.id.clone(), g.anchor.clone()))
        .collect();
    Page {
        flagged,
        site: policy.site.clone(),
        zones,
        groups,
        sources: overlays.given.iter().map(|s| s.name()).collect(),
        totals,
    }
}

fn group_view(
    policy: &Policy,
    g: &Group,
    rules: &[&Rule],
    documented: &[&Documented],
    emitted: &Emitted,
    overlays: &Overlays,
    totals: &mut Totals,
) -> GroupView {
    let profile = policy.profiles.get(&g.profile);
    let class = g
        .addresses
        .first()
        .and_then(|a| emitted.class(&net_text(a)))
        .map(str::to_string);
    // The flows that apply to the group, in the profile's order; a flow the IR has but the
    // profile lacks (none today) is kept after them.
    let mut ids: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let applies =
        |id: &str| rules.iter().any(|r| r.flow == id) || documented.iter().any(|d| d.flow == id);
    if let Some(p) = profile {
        for f in &p.flows {
            if applies(&f.id) && seen.insert(f.id.clone()) {
                ids.push(f.id.clone());
            }
        }
    }
    for id in rules
        .iter()
        .map(|r| &r.flow)
        .chain(documented.iter().map(|d| &d.flow))
    {
        if seen.insert(id.clone()) {
            ids.push(id.clone());
        }
    }
    // The group's MACs and addresses as the ruleset writes them, to pick its hook rules.
    let own: Vec<String> = g
        .macs
        .iter()
        .map(ToString::to_string)
        .chain(g.addresses.iter().map(net_text))
        .collect();
    let mut flows = Vec::with_capacity(ids.len());
    for id in &ids {
        let flow_rules: Vec<&Rule> = rules.iter().copied().filter(|r| &r.flow == id).collect();
        let doc = documented.iter().find(|d| &d.flow == id);
        let pflow = profile.and_then(|p| flow_of(p, g.mode.as_deref(), id));
        let provenance = format!("{}/{id}", g.profile);
        let emitted_rules = emitted.rules(class.as_deref(), &provenance, &own);
        let enforced = flow_rules_enforced(rules, id);
        let marks = marks_of(overlays, &g.id, &provenance, enforced);
        let status = overall(&marks);
        match status {
            "green" => totals.green += 1,
            "grey" => totals.grey += 1,
            "red" => totals.red += 1,
            _ => {}
        }
        totals.flows += 1;
        flows.push(flow_view(
            &g.id,
            id,
            provenance,
            profile,
            pflow,
            &flow_rules,
            doc.map(|d| d.reason.clone()),
            emitted_rules,
            marks,
            status,
        ));
    }
    let notes = overlays
        .group_notes
        .get(&g.id)
        .map(|v| {
            v.iter()
                .map(|(s, c, t)| NoteView {
                    source: s.name(),
                    color: *c,
                    text: t.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    GroupView {
        id: g.id.clone(),
        anchor: format!("group-{}", g.id),
        profile: g.profile.clone(),
        product: profile
            .map(|p| format!("{} {}", p.vendor, p.product))
            .unwrap_or_default(),
        mode: g.mode.clone().unwrap_or_default(),
        zone: g.zone.clone(),
        addresses: g
            .addresses
            .iter()
            .map(net_text)
            .collect::<Vec<_>>()
            .join(", "),
        flows,
        notes,
    }
}

/// A flow's colour across sources: red when any source shows it does not hold, green when
/// one shows it does (a source that saw nothing either way does not undo another's proof),
/// grey when the sources given say neither, `none` without sources.
fn overall(marks: &[Mark]) -> &'static str {
    if marks.iter().any(|m| m.color == Color::Red) {
        "red"
    } else if marks.iter().any(|m| m.color == Color::Green) {
        "green"
    } else if marks.is_empty() {
        "none"
    } else {
        "grey"
    }
}

fn flow_rules_enforced(rules: &[&Rule], id: &str) -> bool {
    rules.iter().any(|r| r.flow == id)
}

/// The marks of one flow, in source order; lint, which reads every enforced flow of every
/// device of the site, counts an enforced flow without findings as a green mark (a flow only
/// documented is no rule lint reads).
fn marks_of(overlays: &Overlays, group: &str, provenance: &str, enforced: bool) -> Vec<Mark> {
    let mut marks = overlays
        .marks
        .get(&(group.to_string(), provenance.to_string()))
        .cloned()
        .unwrap_or_default();
    if enforced
        && overlays.given.contains(&Source::Lint)
        && !marks.iter().any(|m| m.source == Source::Lint)
    {
        marks.push(Mark {
            source: Source::Lint,
            color: Color::Green,
            evidence: vec!["no finding".into()],
            red_lines: 0,
        });
    }
    marks.sort_by_key(|m| m.source);
    marks
}

/// At most [`EVIDENCE_SHOWN`] lines of evidence per mark (red ones come first: see
/// [`Mark::evidence`]), then a count of the rest.
fn evidence_shown(mut ev: Vec<String>) -> Vec<String> {
    if ev.len() > EVIDENCE_SHOWN {
        let rest = ev.len() - EVIDENCE_SHOWN;
        ev.truncate(EVIDENCE_SHOWN);
        ev.push(format!("… and {rest} more"));
    }
    ev
}

/// Lines of evidence shown per source and flow.
pub const EVIDENCE_SHOWN: usize = 8;

#[allow(clippy::too_many_arguments)]
pub(crate) fn flow_view(
    g: &str,
    id: &str,
    provenance: String,
    profile: Option<&Profile>,
    pflow: Option<&Flow>,
    rules: &[&Rule],
    reason: Option<String>,
    emitted_rules: Vec<EmittedRule>,
    marks: Vec<Mark>,
    status: &'static str,
) -> FlowView {
    let mut traffic: Vec<String> = Vec::new();
    let mut ports: Vec<String> = Vec::new();
    let mut peers: Vec<String> = Vec::new();
    for r in rules {
        for (v, x) in [
            (&mut traffic, traffic_of(r)),
            (&mut ports, ports_text(&r.ports)),
            (&mut peers, peers_of(r)),
        ] {
            if !x.is_empty() && !v.contains(&x) {
                v.push(x);
            }
        }
    }
    let citations = pflow
        .map(|f| {
            f.source
                .iter()
                .map(|c| {
                    let doc = profile.and_then(|p| p.sources.iter().find(|s| s.id == c.doc));
                    CitationView {
                        doc: c.doc.clone(),
                        title: doc.map(|d| d.title.clone()).unwrap_or_default(),
                        reference: c.reference.clone(),
                        url: doc.and_then(|d| d.url.clone()).unwrap_or_default(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let alternatives = profile
        .map(|p| {
            p.alternatives
                .iter()
                .filter(|a| a.flows.iter().any(|f| f == id))
                .map(|a| {
                    let others = a.flows.join(" or ");
                    match &a.description {
                        Some(d) => format!("{}: {others} ({d})", a.id),
                        None => format!("{}: {others}", a.id),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let initiation = match (
        rules.iter().any(|r| r.initiator == Initiator::Device),
        rules.iter().any(|r| r.initiator == Initiator::Peer),
    ) {
        (true, true) => "either",
        (true, false) => "device",
        (false, true) => "peer",
        (false, false) => pflow.map_or("", |f| f.initiation.name()),
    };
    FlowView {
        anchor: format!("flow-{g}/{id}"),
        id: id.to_string(),
        provenance,
        enforced: !rules.is_empty(),
        reason: reason.unwrap_or_default(),
        direction: pflow
            .map(|f| format!("{} → {}", f.from, f.to))
            .unwrap_or_default(),
        initiation,
        traffic: traffic.join("; "),
        ports: ports.join(","),
        peers: peers.join("; "),
        optional: pflow.is_some_and(|f| f.optional),
        app: pflow.and_then(|f| f.app.clone()).unwrap_or_default(),
        description: pflow
            .and_then(|f| f.description.clone())
            .unwrap_or_default(),
        citations,
        conditions: pflow
            .map(|f| f.conditions.iter().map(condition_text).collect())
            .unwrap_or_default(),
        alternatives,
        inside: pflow
            .and_then(|f| f.inside.as_ref())
            .map(|i| match i.port {
                Some(p) => format!("carried inside {} (port {p})", i.flow),
                None => format!("carried inside {}", i.flow),
            })
            .unwrap_or_default(),
        rules: emitted_rules,
        marks: marks
            .into_iter()
            .map(|m| MarkView {
                source: m.source.name(),
                color: color_name(m.color),
                evidence: evidence_shown(m.evidence),
            })
            .collect(),
        status,
    }
}
