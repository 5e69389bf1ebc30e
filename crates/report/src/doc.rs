//! `portolan doc ID --format html`: one profile as a page, with the report's templates (the
//! same style sheet, flow table and filter): per mode the vendor's rows with their provenance,
//! citations, conditions and alternatives, then what the device exposes and the sources. A
//! profile alone has no site, so there are no rules and no results: the table's columns for
//! them are left out (`profile_doc`).

use portolan_model::profile::{Flow, Profile};
use portolan_model::{ListenPorts, Listens, Protocol};
use serde::Serialize;

use crate::view::{flow_view, FlowView};

#[derive(Serialize)]
pub struct ProfilePage {
    /// Tells the shared templates that this is a profile, not a site.
    pub profile_doc: bool,
    /// No overlays: the flow table has no results column.
    pub sources: Vec<&'static str>,
    pub id: String,
    pub vendor: String,
    pub product: String,
    pub description: String,
    pub versions: String,
    pub modes: Vec<ModeView>,
    pub exposed: Vec<String>,
    pub notes: Vec<String>,
    pub documents: Vec<DocumentView>,
}

/// A mode of the profile (or the profile's flows when it has no modes), shaped as the flow
/// table expects a device group: `id` and `flows`.
#[derive(Serialize)]
pub struct ModeView {
    pub id: String,
    pub anchor: String,
    pub title: String,
    pub description: String,
    pub flows: Vec<FlowView>,
}

#[derive(Serialize)]
pub struct DocumentView {
    pub id: String,
    pub title: String,
    pub location: String,
}

fn side(p: &Profile, id: &str) -> String {
    match p.endpoint(id) {
        Some(e) if e.segment => format!("{id} (the device's own segment)"),
        Some(e) => {
            let mut v: Vec<String> = e.hosts.clone();
            v.extend(e.domains.iter().cloned());
            v.extend(e.addresses.iter().map(crate::view::net_text));
            if v.is_empty() {
                format!("{id} (bound by the site)")
            } else {
                format!("{id}: {}", v.join(", "))
            }
        }
        None => id.to_string(),
    }
}

fn flow_row(p: &Profile, mode: &str, f: &Flow) -> FlowView {
    let mut v = flow_view(
        mode,
        &f.id,
        format!("{}/{}", p.id, f.id),
        Some(p),
        Some(f),
        &[],
        None,
        Vec::new(),
        Vec::new(),
        "none",
    );
    let proto = match &f.protocol {
        Protocol::Unspecified => "unspecified protocol".to_string(),
        x => x.to_string(),
    };
    let ports = f.ports.to_strings();
    v.traffic = if ports.is_empty() {
        proto
    } else {
        format!("{proto}/{}", ports.join(","))
    };
    v.ports = ports.join(",");
    let other = if f.from == portolan_model::DEVICE {
        &f.to
    } else {
        &f.from
    };
    v.peers = side(p, other);
    v
}

/// The page of `p`, every mode or only `mode`.
pub fn page(p: &Profile, mode: Option<&str>) -> ProfilePage {
    let mut modes = Vec::new();
    if p.modes.is_empty() {
        modes.push(ModeView {
            id: p.id.clone(),
            anchor: format!("group-{}", p.id),
            title: "Flows".into(),
            description: String::new(),
            flows: p.flows_in(None).map(|f| flow_row(p, &p.id, f)).collect(),
        });
    }
    for m in p.modes.iter().filter(|m| mode.is_none_or(|x| x == m.id)) {
        modes.push(ModeView {
            id: m.id.clone(),
            anchor: format!("group-{}", m.id),
            title: format!("Mode {}", m.id),
            description: m.description.clone().unwrap_or_default(),
            flows: p
                .flows_in(Some(&m.id))
                .map(|f| flow_row(p, &m.id, f))
                .collect(),
        });
    }
    let exposed = match &p.listens {
        Listens::Nothing => vec!["Nothing: the device accepts no connection.".to_string()],
        Listens::Unspecified => vec!["Not stated by the source.".to_string()],
        Listens::Entries(es) => es
            .iter()
            .map(|e| {
                let ports = match &e.ports {
                    ListenPorts::Closed => "no open port".to_string(),
                    ListenPorts::Ports(ps) => ps.to_string(),
                };
                let what = e.description.as_deref().unwrap_or("");
                format!("{} {ports}: {what}", e.protocol.to_string().to_uppercase())
            })
            .collect(),
    };
    ProfilePage {
        profile_doc: true,
        sources: Vec::new(),
        id: p.id.clone(),
        vendor: p.vendor.clone(),
        product: p.product.clone(),
        description: p.description.clone().unwrap_or_default(),
        versions: p.versions.join("; "),
        modes,
        exposed,
        notes: p.notes.iter().map(|n| n.text.clone()).collect(),
        documents: p
            .sources
            .iter()
            .map(|s| DocumentView {
                id: s.id.clone(),
                title: s.title.clone(),
                location: s.file.clone().or_else(|| s.url.clone()).unwrap_or_default(),
            })
            .collect(),
    }
}
