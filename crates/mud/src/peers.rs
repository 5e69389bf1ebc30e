//! Endpoints and MUD peers, both ways.
//!
//! | profile endpoint | MUD match |
//! |---|---|
//! | `hosts` | `ietf-acldns:dst-dnsname` / `src-dnsname`, one ACE per name, IPv4 and IPv6 |
//! | `addresses` | `destination-ipv4-network` … `source-ipv6-network` |
//! | `domains` (wildcards) | none: `inet:host` has no wildcard; carried in the extension |
//! | `service: dns` / `ntp` | `controller: urn:ietf:params:mud:dns` / `:ntp` |
//! | `service: dhcp` | `local-networks` (no URN is registered for DHCP; a warning says so) |
//! | `role` | `controller: <mud-url>#<role id>`, a class the site binds (RFC 8520 section 4.5) |
//! | role `my-controller`, `local-networks`, `same-manufacturer` | that abstraction |
//!
//! An imported abstraction becomes a role whose citation of the MUD file says which match it
//! came from (`ref: "match ietf-mud:mud/controller http://…"`, `"match ietf-mud:mud/manufacturer
//! example.com"`, `"match any"`); the exporter reads that citation back, so importing and
//! exporting again keeps the very controller URI, manufacturer or model.

use portolan_model::syntax::{expand_template, is_ident};
use portolan_model::{Endpoint, EndpointKind, Profile, Service};
use serde_json::{json, Map, Value};

use crate::rules::Peer;
use crate::schema::{URN_DNS, URN_NTP};

/// The prefix of a citation `ref` that records a MUD match.
pub const MATCH_REF: &str = "match ";

/// The MUD peers an endpoint stands for, and what of it MUD cannot say.
pub struct Mapped {
    pub peers: Vec<Peer>,
    pub missing: Vec<String>,
    /// A note for the exporter's warnings (DHCP as local-networks).
    pub note: Option<String>,
}

/// How the exporter writes an endpoint.
pub fn endpoint_peers(e: &Endpoint, profile: &Profile, mud_url: &str) -> Mapped {
    let mut m = Mapped {
        peers: Vec::new(),
        missing: Vec::new(),
        note: None,
    };
    match e.kind() {
        EndpointKind::Service(Service::Dns) => m.peers.push(Peer::Controller(URN_DNS.into())),
        EndpointKind::Service(Service::Ntp) => m.peers.push(Peer::Controller(URN_NTP.into())),
        EndpointKind::Service(Service::Dhcp) => {
            m.peers.push(Peer::LocalNetworks);
            m.note = Some(format!(
                "endpoint `{}` (DHCP service): no MUD class is registered for DHCP, so the ACEs name `local-networks`",
                e.id
            ));
        }
        EndpointKind::Role => m.peers.push(role_peer(e, mud_url)),
        EndpointKind::Segment => {
            // RFC 8520 section 8 has no class for one segment; `local-networks` is the
            // nearest, and wider: the exporter says so.
            m.peers.push(Peer::LocalNetworks);
            m.note = Some(format!(
                "endpoint `{}` (the device's own segment): MUD has no class for one segment, so the ACEs name `local-networks`, which is wider",
                e.id
            ));
        }
        EndpointKind::Remote => {
            for h in &e.hosts {
                let mut unset = Vec::new();
                let name = expand_template(h, |p| {
                    let v = profile
                        .param(p)
                        .and_then(|p| p.default.as_ref())
                        .map(|d| match d {
                            portolan_model::ParamValue::Text(t) => t.clone(),
                            portolan_model::ParamValue::Ports(p) => p.to_string(),
                        });
                    if v.is_none() {
                        unset.push(p.to_string());
                    }
                    v
                });
                if unset.is_empty() {
                    m.peers
                        .push(Peer::Host(name.trim_end_matches('.').to_ascii_lowercase()));
                } else {
                    m.missing.push(format!(
                        "host `{h}` needs param(s) {} without default",
                        unset.join(", ")
                    ));
                }
            }
            for d in &e.domains {
                m.missing
                    .push(format!("wildcard domain `{d}` (inet:host has no wildcard)"));
            }
            for a in &e.addresses {
                m.peers.push(Peer::Net(a.trunc()));
            }
        }
    }
    m
}

/// A role's MUD peer: the match its citation records, a reserved id, or a controller class
/// named after the MUD URL.
fn role_peer(e: &Endpoint, mud_url: &str) -> Peer {
    for c in &e.source {
        if let Some(p) = c
            .reference
            .strip_prefix(MATCH_REF)
            .and_then(parse_match_ref)
        {
            return p;
        }
    }
    match e.id.as_str() {
        "my-controller" => Peer::MyController,
        "local-networks" => Peer::LocalNetworks,
        "same-manufacturer" => Peer::SameManufacturer,
        id => Peer::Controller(format!("{mud_url}#{id}")),
    }
}

/// The `ref` text recording a MUD match (without [`MATCH_REF`]).
pub fn match_ref(p: &Peer) -> Option<String> {
    Some(match p {
        Peer::Controller(u) => format!("ietf-mud:mud/controller {u}"),
        Peer::MyController => "ietf-mud:mud/my-controller".into(),
        Peer::LocalNetworks => "ietf-mud:mud/local-networks".into(),
        Peer::SameManufacturer => "ietf-mud:mud/same-manufacturer".into(),
        Peer::Manufacturer(h) => format!("ietf-mud:mud/manufacturer {h}"),
        Peer::Model(u) => format!("ietf-mud:mud/model {u}"),
        Peer::Any => "any".into(),
        Peer::Host(_) | Peer::Domain(_) | Peer::Net(_) => return None,
    })
}

fn parse_match_ref(s: &str) -> Option<Peer> {
    if s == "any" {
        return Some(Peer::Any);
    }
    let rest = s.strip_prefix("ietf-mud:mud/")?;
    let (kind, value) = match rest.split_once(' ') {
        Some((k, v)) => (k, Some(v.trim().to_string())),
        None => (rest, None),
    };
    Some(match (kind, value) {
        ("controller", Some(u)) => Peer::Controller(u),
        ("manufacturer", Some(h)) => Peer::Manufacturer(h),
        ("model", Some(u)) => Peer::Model(u),
        ("my-controller", None) => Peer::MyController,
        ("local-networks", None) => Peer::LocalNetworks,
        ("same-manufacturer", None) => Peer::SameManufacturer,
        _ => return None,
    })
}

/// An identifier made from free text: letters, digits, `-`, `_`, `.`; at most 64.
pub fn ident_from(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let s: String = s.chars().take(64).collect();
    let s = s
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if is_ident(&s) {
        s
    } else {
        "peer".into()
    }
}

/// The endpoint (profile format) the importer writes for a peer, with an id suggestion.
pub fn endpoint_for(peer: &Peer, mud_url: &str, cite: &Value) -> (String, Map<String, Value>) {
    let with_ref = |r: Option<String>| -> Value {
        match r {
            Some(r) => json!([cite, {"doc": cite["doc"], "ref": format!("{MATCH_REF}{r}")}]),
            None => json!([cite]),
        }
    };
    let source = with_ref(match_ref(peer));
    let (id, mut obj) = match peer {
        Peer::Host(h) => (ident_from(h), json!({"hosts": [h]})),
        Peer::Domain(d) => (
            ident_from(d.trim_start_matches("*.")),
            json!({"domains": [d]}),
        ),
        Peer::Net(n) => (net_id(n), json!({"addresses": [n.to_string()]})),
        Peer::Controller(u) if u == URN_DNS => ("dns".into(), json!({"service": "dns"})),
        Peer::Controller(u) if u == URN_NTP => ("ntp".into(), json!({"service": "ntp"})),
        Peer::Controller(u) => {
            let own = u
                .strip_prefix(mud_url)
                .and_then(|r| r.strip_prefix('#'))
                .filter(|r| is_ident(r));
            let id = match (own, u.strip_prefix("urn:ietf:params:mud:")) {
                (Some(r), _) => r.to_string(),
                (None, Some(r)) => ident_from(r),
                (None, None) => format!("controller-{}", ident_from(strip_scheme(u))),
            };
            (
                id,
                json!({"role": true, "description": format!("MUD controller class {u}: the controllers a site registers for it")}),
            )
        }
        Peer::MyController => (
            "my-controller".into(),
            json!({"role": true, "description": "MUD my-controller: the controllers the site configures for this device's MUD URL"}),
        ),
        Peer::LocalNetworks => (
            "local-networks".into(),
            json!({"role": true, "description": "MUD local-networks: the site's local networks"}),
        ),
        Peer::SameManufacturer => (
            "same-manufacturer".into(),
            json!({"role": true, "description": "MUD same-manufacturer: devices whose MUD URL has the same authority as this one's"}),
        ),
        Peer::Manufacturer(h) => (
            format!("manufacturer-{}", ident_from(h)),
            json!({"role": true, "description": format!("MUD manufacturer {h}: devices whose MUD URL has this authority")}),
        ),
        Peer::Model(u) => (
            format!("model-{}", ident_from(strip_scheme(u))),
            json!({"role": true, "description": format!("MUD model {u}: devices with exactly this MUD URL")}),
        ),
        Peer::Any => (
            "any".into(),
            json!({"role": true, "description": "any peer: the MUD file names no peer for these entries; the site decides what to bind"}),
        ),
    };
    if let Value::Object(o) = &mut obj {
        o.insert("source".into(), source);
        let id: String = id.chars().take(64).collect();
        return (id, o.clone());
    }
    (id, Map::new())
}

/// `net-192.0.2.0_24`, `net-224.0.0.251`, `net-ff02-fb`, `net-ff00_8`.
fn net_id(n: &ipnet::IpNet) -> String {
    let addr = ident_from(&n.addr().to_string().replace(':', "-"));
    if n.prefix_len() == n.max_prefix_len() {
        format!("net-{addr}")
    } else {
        format!("net-{addr}_{}", n.prefix_len())
    }
}

fn strip_scheme(u: &str) -> &str {
    u.split_once("://").map_or(u, |(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_refs_round_trip() {
        for p in [
            Peer::Controller("http://monitor.nist.gov/mycontroller".into()),
            Peer::Manufacturer("toaster.nist.gov".into()),
            Peer::Model("https://a.example/m".into()),
            Peer::MyController,
            Peer::LocalNetworks,
            Peer::SameManufacturer,
            Peer::Any,
        ] {
            let r = match_ref(&p).expect("abstraction");
            assert_eq!(parse_match_ref(&r), Some(p));
        }
    }

    #[test]
    fn idents() {
        assert_eq!(ident_from("www2.meethue.com"), "www2.meethue.com");
        assert_eq!(
            ident_from("monitor.nist.gov/mycontroller"),
            "monitor.nist.gov-mycontroller"
        );
        assert_eq!(ident_from("::"), "peer");
    }
}
