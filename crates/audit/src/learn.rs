//! A draft profile from one device's observed flows: its peers (by the DNS name the capture
//! resolved them by, else by address; DNS, NTP and DHCP servers on local addresses as the
//! site's services), protocols, ports, who initiated, and the ports it served (`listens`).
//! The draft cites the capture as its only source and says that it is a draft: a capture shows
//! what a device did, not everything it needs.
//!
//! A TCP connection whose SYN was captured counts as needed only once a SYN-ACK answered it.
//! SYNs that nobody answered, or that only a reset answered, show what was tried, not what is
//! needed: they become a note ("attempted, never answered") and no flow (an `optional` flow
//! would still be enforced, wider than what the device was seen to need), and a device that
//! never answered a peer's SYN is not drafted as listening on that port.
//!
//! Bound in a site, the draft admits every flow it was learned from: each profile flow covers
//! one (peer, protocol, initiator) with the union of the ports seen, and each peer is named the
//! way the audit matches it (the name the peer's address had when the flow started).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use portolan_model::ir::IpProto;
use portolan_model::syntax::{is_hostname, is_ident};
use portolan_model::{
    Citation, Endpoint, Flow, Initiation, Listen, ListenPorts, Listens, Note, NoteTopic, PortItem,
    PortSpec, Profile, Protocol, Service, SourceDoc, DEVICE,
};

use crate::collect::Observed;
use crate::decode::proto;
use crate::error::DraftError;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::{rfc3339, Nanos};

/// What the draft is called and where its traffic came from.
#[derive(Clone, Debug)]
pub struct LearnOptions {
    /// The device's address or prefix.
    pub device: IpNet,
    /// Profile id; default `learned-<address>`.
    pub id: Option<String>,
    /// The inputs, for the source citation.
    pub inputs: Vec<String>,
}

/// Who the peer of a profile flow is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Service(ServiceKind),
    Name(String),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ServiceKind {
    Dns,
    Ntp,
    Dhcp,
}

#[derive(Default)]
struct Seen {
    ports: BTreeSet<u16>,
    flows: u64,
    packets: u64,
    first: Option<Nanos>,
}

/// Addresses a site's own services live on: private, shared, link-local, unique-local.
fn is_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            v.is_private()
                || v.is_link_local()
                || v.is_loopback()
                || (v.octets()[0] == 100 && (v.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            v.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

fn service_of(f: &ObservedFlow, peer: IpAddr, device_initiated: bool) -> Option<ServiceKind> {
    if !device_initiated || !is_local(peer) {
        return None;
    }
    match (f.proto, f.rport) {
        (proto::UDP | proto::TCP, 53) => Some(ServiceKind::Dns),
        (proto::UDP, 123) => Some(ServiceKind::Ntp),
        (proto::UDP, 67) => Some(ServiceKind::Dhcp),
        _ => None,
    }
}

/// `port` list with consecutive runs as ranges.
/// A TCP connection whose SYN was captured and that no SYN-ACK answered (silence, or only a
/// reset: the port was closed).
fn unanswered(f: &ObservedFlow) -> bool {
    f.proto == proto::TCP && f.evidence == Evidence::Syn && !f.answered
}

fn port_spec(ports: &BTreeSet<u16>) -> PortSpec {
    let mut items = Vec::new();
    let mut it = ports.iter().copied().peekable();
    while let Some(lo) = it.next() {
        let mut hi = lo;
        while it.peek() == Some(&(hi.wrapping_add(1))) && hi < u16::MAX {
            hi += 1;
            it.next();
        }
        match hi - lo {
            0 => items.push(PortItem::Single(lo)),
            1 => {
                items.push(PortItem::Single(lo));
                items.push(PortItem::Single(hi));
            }
            _ => items.push(PortItem::Range(lo, hi)),
        }
    }
    PortSpec::List(items)
}

/// An identifier from free text: unsafe characters become `-`, at most 64 characters, unique
/// among `taken`.
fn ident(text: &str, taken: &mut BTreeSet<String>) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_start_matches(['-', '_', '.']).to_string();
    if s.is_empty() {
        s = "peer".into();
    }
    s.truncate(58);
    let mut out = s.clone();
    let mut n = 2;
    while taken.contains(&out) || !is_ident(&out) {
        out = format!("{s}-{n}");
        n += 1;
    }
    taken.insert(out.clone());
    out
}

/// Drafts a profile from the flows of `opts.device`.
pub fn draft(obs: &Observed, opts: &LearnOptions) -> Profile {
    let dev = opts.device;
    // (peer, protocol, initiator is device, icmp type) → what was seen.
    let mut rows: BTreeMap<(Peer, u8, bool, Option<u8>), Seen> = BTreeMap::new();
    let mut first: Option<Nanos> = None;
    let mut last: Option<Nanos> = None;
    let mut count = 0u64;
    // (peer, initiated by the device, port) → TCP connections attempted and never answered.
    let mut attempted: BTreeMap<(String, bool, u16), u64> = BTreeMap::new();
    for f in &obs.flows {
        let device_initiated = dev.contains(&f.initiator);
        if !device_initiated && !dev.contains(&f.responder) {
            continue;
        }
        count += 1;
        let peer_addr = if device_initiated {
            f.responder
        } else {
            f.initiator
        };
        let names: Vec<String> = obs
            .names_at(peer_addr, f.first)
            .into_iter()
            .filter(|n| is_hostname(n))
            .collect();
        let peer = match service_of(f, peer_addr, device_initiated) {
            Some(s) => Peer::Service(s),
            None => match names.into_iter().next() {
                Some(n) => Peer::Name(n),
                None => Peer::Address(peer_addr),
            },
        };
        if unanswered(f) {
            let label = match &peer {
                Peer::Service(k) => format!("the site's {k:?} server").to_lowercase(),
                Peer::Name(n) => n.clone(),
                Peer::Address(a) => a.to_string(),
            };
            *attempted
                .entry((label, device_initiated, f.rport))
                .or_insert(0u64) += 1;
            continue;
        }
        let icmp = if matches!(f.proto, proto::ICMP | proto::ICMPV6) {
            f.icmp_type
        } else {
            None
        };
        let seen = rows
            .entry((peer, f.proto, device_initiated, icmp))
            .or_default();
        if IpProto::new(f.proto).has_ports() {
            seen.ports.insert(f.rport);
        }
        seen.flows += 1;
        seen.packets = seen.packets.saturating_add(f.total_packets());
        if let Some(t) = f.first {
            seen.first = Some(seen.first.map_or(t, |x| x.min(t)));
            first = Some(first.map_or(t, |x: Nanos| x.min(t)));
        }
        if let Some(t) = f.last {
            last = Some(last.map_or(t, |x: Nanos| x.max(t)));
        }
    }

    let addr_text = match dev {
        n if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
        n => n.to_string(),
    };
    let id = opts.id.clone().unwrap_or_else(|| {
        let s: String = addr_text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        format!("learned-{}", s.trim_matches('-'))
    });
    let inputs = if opts.inputs.is_empty() {
        "the capture".to_string()
    } else {
        opts.inputs.join(", ")
    };
    let file = opts
        .inputs
        .first()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "capture".into());
    let span = match (first, last) {
        (Some(a), Some(b)) => format!(" between {} and {}", rfc3339(a), rfc3339(b)),
        _ => String::new(),
    };

    let mut endpoint_ids: BTreeMap<Peer, String> = BTreeMap::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    taken.insert(DEVICE.to_string());
    let mut endpoints = Vec::new();
    for (peer, _, _, _) in rows.keys() {
        if endpoint_ids.contains_key(peer) {
            continue;
        }
        let (text, mut e) = match peer {
            Peer::Service(s) => {
                let (name, service) = match s {
                    ServiceKind::Dns => ("dns", Service::Dns),
                    ServiceKind::Ntp => ("ntp", Service::Ntp),
                    ServiceKind::Dhcp => ("dhcp", Service::Dhcp),
                };
                (name.to_string(), endpoint(name, Some(service)))
            }
            Peer::Name(n) => {
                let mut e = endpoint(n, None);
                e.hosts = vec![n.clone()];
                (n.clone(), e)
            }
            Peer::Address(a) => {
                let mut e = endpoint(&a.to_string(), None);
                e.addresses = vec![IpNet::from(*a)];
                (format!("peer-{a}"), e)
            }
        };
        e.id = ident(&text, &mut taken);
        e.description = Some(match peer {
            Peer::Service(_) => format!("the site's {} service, seen at a local address", e.id),
            Peer::Name(n) => format!("peer named {n} by DNS answers in the capture"),
            Peer::Address(a) => format!("peer {a}; no DNS answer in the capture named it"),
        });
        endpoint_ids.insert(peer.clone(), e.id.clone());
        endpoints.push(e);
    }

    let mut flows = Vec::new();
    let mut listens = Vec::new();
    let mut flow_ids: BTreeSet<String> = BTreeSet::new();
    for ((peer, p, device_initiated, icmp), seen) in &rows {
        let ep = endpoint_ids[peer].clone();
        let protocol = Protocol::from_number(*p);
        let ports = if IpProto::new(*p).has_ports() {
            port_spec(&seen.ports)
        } else {
            PortSpec::None
        };
        let port_text = ports.to_strings().join(",");
        let mut label = IpProto::new(*p).to_string();
        if !port_text.is_empty() {
            label.push('-');
            label.push_str(&port_text);
        }
        let icmp_name = icmp.and_then(|t| crate::decode::icmp_type_name(*p == proto::ICMPV6, t));
        if let Some(n) = icmp_name {
            label.push('-');
            label.push_str(n);
        }
        let dir = if *device_initiated { "to" } else { "from" };
        let fid = ident(&format!("{label}-{dir}-{ep}"), &mut flow_ids);
        let (from, to) = if *device_initiated {
            (DEVICE.to_string(), ep.clone())
        } else {
            (ep.clone(), DEVICE.to_string())
        };
        let when = seen
            .first
            .map(|t| format!(", first at {}", rfc3339(t)))
            .unwrap_or_default();
        flows.push(Flow {
            id: fid.clone(),
            modes: Vec::new(),
            from,
            to,
            initiation: if *device_initiated {
                Initiation::Device
            } else {
                Initiation::Peer
            },
            protocol: protocol.clone(),
            ports: ports.clone(),
            src_ports: PortSpec::None,
            optional: false,
            app: None,
            from_app: None,
            to_app: None,
            description: Some(format!(
                "observed: {} flow(s), {} packet(s)",
                seen.flows, seen.packets
            )),
            source: vec![Citation {
                doc: "capture".into(),
                reference: format!("{} flow(s){when}", seen.flows),
                truncated: None,
            }],
            conditions: Vec::new(),
            inside: None,
            cast: Default::default(),
            family: None,
            group: None,
            icmp_type: icmp_name.map(str::to_string),
            keepalive: None,
            keepalive_unspecified: false,
            idle_timeout: None,
            replaces: Vec::new(),
            url_path: None,
            auth: None,
            proxy: None,
            interfaces: Vec::new(),
            persistent: false,
            unauthenticated: false,
            tls: None,
            ike: None,
            esp: None,
        });
        if !*device_initiated && IpProto::new(*p).has_ports() {
            listens.push(Listen {
                protocol,
                ports: ListenPorts::Ports(ports),
                flow: Some(fid),
                bind: None,
                description: Some(format!("seen serving {ep} in the capture")),
                source: vec![Citation {
                    doc: "capture".into(),
                    reference: format!("{} inbound flow(s)", seen.flows),
                    truncated: None,
                }],
            });
        }
    }

    Profile {
        portolan: 1,
        id,
        vendor: "unknown".into(),
        product: format!("device at {addr_text}"),
        versions: Vec::new(),
        description: Some(format!(
            "Drafted by `portolan learn` from {count} flow(s) of {addr_text} in {inputs}{span}. \
             A capture shows what the device did while it was recorded, not everything it \
             needs: review every flow against the vendor's documentation before use."
        )),
        sources: vec![SourceDoc {
            id: "capture".into(),
            title: format!("Traffic of {addr_text} observed in {inputs}"),
            file: Some(file),
            url: None,
            date: None,
            revision: None,
            perspective: None,
        }],
        modes: Vec::new(),
        features: Vec::new(),
        params: Vec::new(),
        endpoints,
        flows,
        alternatives: Vec::new(),
        listens: if listens.is_empty() {
            Listens::Unspecified
        } else {
            Listens::Entries(listens)
        },
        notes: attempted
            .iter()
            .map(|((peer, device_initiated, port), n)| {
                let what = if *device_initiated {
                    format!("the device tried TCP to {peer} port {port}")
                } else {
                    format!("{peer} tried TCP to the device's port {port}")
                };
                Note {
                    topic: NoteTopic::Other,
                    text: format!(
                        "attempted, never answered: {what} ({n} connection(s) whose SYN no \
                         SYN-ACK answered). Not drafted as a flow: an unanswered connection \
                         shows what was tried, not what is needed."
                    ),
                    source: vec![Citation {
                        doc: "capture".into(),
                        reference: format!("{n} unanswered SYN(s)"),
                        truncated: None,
                    }],
                }
            })
            .collect(),
        requirements: Vec::new(),
        interfaces: Vec::new(),
    }
}

fn endpoint(id: &str, service: Option<Service>) -> Endpoint {
    Endpoint {
        id: id.to_string(),
        description: None,
        hosts: Vec::new(),
        domains: Vec::new(),
        addresses: Vec::new(),
        addresses_volatile: false,
        service,
        role: false,
        discovered: None,
        segment: false,
        source: Vec::new(),
    }
}

/// The draft as YAML, checked by the profile validator; `Err` carries the validator's
/// diagnostics (a bug here, never the user's).
pub fn to_yaml(p: &Profile) -> Result<String, DraftError> {
    let mut text = serde_saphyr::to_string(p).map_err(|e| DraftError::Yaml(e.to_string()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match portolan_model::validate::profile_text("learned profile", &text) {
        Ok(_) => Ok(text),
        Err(d) => Err(DraftError::Invalid(d)),
    }
}

/// A device given on the command line: an address (`10.20.0.10`, `fd00::10`) or a prefix.
pub fn parse_device(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .map(|n| n.trunc())
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}
