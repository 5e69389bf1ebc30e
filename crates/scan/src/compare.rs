//! A scan against the profile's `listens`: what the device is declared to expose, resolved
//! for one device of a site, and the findings.
//!
//! Resolution: a listen entry's literal protocol and ports stand as written; a param
//! (`{ser2net_ports}`, `{openvpn_protocol}`) takes the site's value through the entry's
//! `flow`, whose peer-initiated rules in the compiled policy carry the concrete protocol and
//! ports. An entry whose flow has no rule for the device (its feature or mode is off in this
//! site) declares nothing here: a port it would cover is undeclared. Without a site
//! (`--profile`), every entry counts, and a param stays unresolved.
//!
//! Findings (exit 1 on any error):
//! - `undeclared-open` (error): a port open that no active entry declares — with
//!   `listens: none` or `ports: none` for its protocol, the statement is refuted;
//! - `undeclared-unknown` (warning): a port open whose protocol's entry gives no ports
//!   (`unspecified`, or an unresolved param): it cannot be judged;
//! - `declared-not-open` (warning): a declared port that is closed, filtered or
//!   open|filtered;
//! - `loopback-exposed` (error): a port open from the network that an entry with
//!   `bind: loopback` declares — the vendor says it listens on loopback only, so the scan
//!   refutes the profile (or the device is misconfigured). A loopback-only entry declares
//!   nothing reachable: its ports closed or filtered are what it states;
//! - `zone-not-allowed` (error): with a scan from a zone, a port reached (open or closed:
//!   the firewall let the SYN through) that no rule admits from that zone (see
//!   [`zone_findings`]).

use std::collections::BTreeSet;

use portolan_model::ir::{Initiator, IpProto, Rule};
use portolan_model::ports::{PortItem, PortSpec};
use portolan_model::profile::{ListenPorts, Listens};
use portolan_model::{Profile, Protocol};
use serde::Serialize;

use crate::state::{PortResult, PortState, Transport};

/// Which ports an entry covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "ports")]
pub enum Coverage {
    /// `ports: none`: an explicit statement that no port is open.
    Nothing,
    /// These inclusive ranges.
    Ports(Vec<(u16, u16)>),
    /// The profile does not say (`unspecified`, or a param without the site's value).
    Unknown,
}

/// One active listen entry, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeclaredPorts {
    /// `None`: the protocol is a param without the site's value, or unspecified. Written as
    /// `protocol` (the JSON contract's name for it; the command line writes the object).
    #[serde(rename = "protocol")]
    pub transport: Option<Transport>,
    pub coverage: Coverage,
    /// The entry's flow, or its position (`listens[2]`).
    pub entry: String,
    /// The entry says `bind: loopback`: its ports must not answer from the network.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub loopback: bool,
}

/// What the profile declares for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "listens", content = "entries")]
pub enum Declared {
    /// `listens: none`.
    #[serde(rename = "none")]
    Nothing,
    /// `listens: unspecified`.
    Unspecified,
    Entries(Vec<DeclaredPorts>),
}

fn transport_of(p: IpProto) -> Option<Transport> {
    match p {
        IpProto::TCP => Some(Transport::Tcp),
        IpProto::UDP => Some(Transport::Udp),
        _ => None,
    }
}

/// The profile's `listens` for `group`, resolved through its rules (`rules`: the site's
/// compiled rules, `None` without a site).
pub fn declared(profile: &Profile, group: &str, rules: Option<&[Rule]>) -> Declared {
    let entries = match &profile.listens {
        Listens::Nothing => return Declared::Nothing,
        Listens::Unspecified => return Declared::Unspecified,
        Listens::Entries(e) => e,
    };
    let mut out = Vec::new();
    for (i, l) in entries.iter().enumerate() {
        let name = l.flow.clone().unwrap_or_else(|| format!("listens[{i}]"));
        // The device's rules of the entry's flow that peers open towards it.
        let flow_rules: Option<Vec<&Rule>> = match (rules, &l.flow) {
            (Some(rules), Some(flow)) => Some(
                rules
                    .iter()
                    .filter(|r| {
                        r.group == group && &r.flow == flow && r.initiator == Initiator::Peer
                    })
                    .collect(),
            ),
            _ => None,
        };
        if flow_rules.as_ref().is_some_and(Vec::is_empty) {
            // Its flow is not enabled for this device in this site.
            continue;
        }
        let literal = match &l.protocol {
            Protocol::Tcp => Some(Some(Transport::Tcp)),
            Protocol::Udp => Some(Some(Transport::Udp)),
            Protocol::Param(_) | Protocol::Unspecified => None,
            // Protocols without ports (ESP, GRE, …): nothing a port scan sees.
            _ => continue,
        };
        let transports: Vec<Option<Transport>> = match (literal, &flow_rules) {
            (Some(t), _) => vec![t],
            (None, Some(rs)) => {
                let set: BTreeSet<Transport> =
                    rs.iter().filter_map(|r| transport_of(r.protocol)).collect();
                set.into_iter().map(Some).collect()
            }
            (None, None) => vec![None],
        };
        for t in transports {
            let coverage = match &l.ports {
                ListenPorts::Closed => Coverage::Nothing,
                ListenPorts::Ports(PortSpec::List(items))
                    if items.iter().all(|i| !matches!(i, PortItem::Param(_))) =>
                {
                    Coverage::Ports(
                        items
                            .iter()
                            .map(|i| match i {
                                PortItem::Single(p) => (*p, *p),
                                PortItem::Range(a, b) => (*a, *b),
                                PortItem::Param(_) => (0, 0),
                            })
                            .collect(),
                    )
                }
                ListenPorts::Ports(PortSpec::List(_)) => match &flow_rules {
                    Some(rs) => Coverage::Ports(
                        rs.iter()
                            .filter(|r| t.is_none() || transport_of(r.protocol) == t)
                            .flat_map(|r| r.ports.iter().map(|p| (p.lo, p.hi)))
                            .collect(),
                    ),
                    None => Coverage::Unknown,
                },
                ListenPorts::Ports(_) => Coverage::Unknown,
            };
            out.push(DeclaredPorts {
                transport: t,
                coverage,
                entry: name.clone(),
                loopback: l.loopback_only(),
            });
        }
    }
    Declared::Entries(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    UndeclaredOpen,
    UndeclaredUnknown,
    DeclaredNotOpen,
    LoopbackExposed,
    ZoneNotAllowed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: FindingCode,
    #[serde(rename = "protocol")]
    pub transport: Transport,
    pub port: u16,
    /// The last port of a run of neighbouring ports with the same finding (zone findings
    /// through a wide ruleset come in thousands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_port: Option<u16>,
    pub message: String,
}

/// How `listens: none` (or a protocol's `ports: none`) fared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Statement {
    /// No port of what was scanned is open.
    Proven { scope: String },
    /// These ports are open.
    Refuted { open: Vec<String> },
}

/// Whether any declared entry of `t` covers `port`: `Some(true)` yes, `Some(false)` no,
/// `None` cannot tell (an entry of unknown ports or protocol).
fn covers(d: &Declared, t: Transport, port: u16) -> Option<bool> {
    match d {
        Declared::Nothing => Some(false),
        Declared::Unspecified => None,
        Declared::Entries(es) => {
            let mut unknown = false;
            for e in es {
                if e.loopback || e.transport.is_some_and(|x| x != t) {
                    continue;
                }
                match &e.coverage {
                    Coverage::Ports(r) if e.transport == Some(t) => {
                        if r.iter().any(|(a, b)| (*a..=*b).contains(&port)) {
                            return Some(true);
                        }
                    }
                    Coverage::Nothing => {}
                    _ => unknown = true,
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
    }
}

/// Who declares `port` of `t`, for messages.
fn declarer(d: &Declared, t: Transport, port: u16) -> Option<String> {
    let Declared::Entries(es) = d else {
        return None;
    };
    es.iter()
        .find(|e| {
            !e.loopback
                && e.transport == Some(t)
                && matches!(&e.coverage, Coverage::Ports(r) if r.iter().any(|(a, b)| (*a..=*b).contains(&port)))
        })
        .map(|e| e.entry.clone())
}

/// The loopback-only entry (`bind: loopback`) that declares `port` of `t`, if any.
fn loopback_entry(d: &Declared, t: Transport, port: u16) -> Option<&str> {
    let Declared::Entries(es) = d else {
        return None;
    };
    es.iter()
        .find(|e| {
            e.loopback
                && e.transport == Some(t)
                && matches!(&e.coverage, Coverage::Ports(r) if r.iter().any(|(a, b)| (*a..=*b).contains(&port)))
        })
        .map(|e| e.entry.as_str())
}

/// The findings of `ports` (every scanned port) against `declared`.
pub fn findings(declared: &Declared, ports: &[PortResult]) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in ports {
        if r.state == PortState::Open {
            if let Some(entry) = loopback_entry(declared, r.transport, r.port) {
                out.push(Finding {
                    severity: Severity::Error,
                    code: FindingCode::LoopbackExposed,
                    transport: r.transport,
                    port: r.port,
                    last_port: None,
                    message: format!(
                        "{} {} is open from the network ({}), but the profile says it listens on loopback only (listens entry `{entry}`)",
                        r.transport, r.port, r.reason
                    ),
                });
                continue;
            }
        }
        match (r.state, covers(declared, r.transport, r.port)) {
            (PortState::Open, Some(false)) => out.push(Finding {
                severity: Severity::Error,
                code: FindingCode::UndeclaredOpen,
                transport: r.transport,
                port: r.port,
                last_port: None,
                message: format!(
                    "{} {} is open ({}), and the profile's listens does not declare it",
                    r.transport, r.port, r.reason
                ),
            }),
            (PortState::Open, None) => out.push(Finding {
                severity: Severity::Warning,
                code: FindingCode::UndeclaredUnknown,
                transport: r.transport,
                port: r.port,
                last_port: None,
                message: format!(
                    "{} {} is open ({}); the profile does not say which {} ports the device \
                     exposes, so it cannot be judged",
                    r.transport, r.port, r.reason, r.transport
                ),
            }),
            (state, Some(true)) if state != PortState::Open => out.push(Finding {
                severity: Severity::Warning,
                code: FindingCode::DeclaredNotOpen,
                transport: r.transport,
                port: r.port,
                last_port: None,
                message: format!(
                    "{} {} is declared (listens entry `{}`) but {state} ({})",
                    r.transport,
                    r.port,
                    declarer(declared, r.transport, r.port).unwrap_or_default(),
                    r.reason
                ),
            }),
            _ => {}
        }
    }
    out
}

/// The verdict on `listens: none`, or on the `ports: none` statements per protocol.
pub fn statements(declared: &Declared, ports: &[PortResult]) -> Vec<(String, Statement)> {
    let judged: Vec<(String, Vec<Transport>)> = match declared {
        Declared::Nothing => vec![("listens: none".into(), vec![Transport::Tcp, Transport::Udp])],
        Declared::Unspecified => Vec::new(),
        Declared::Entries(es) => es
            .iter()
            .filter(|e| e.coverage == Coverage::Nothing)
            .filter_map(|e| e.transport.map(|t| (format!("{t} ports: none"), vec![t])))
            .collect(),
    };
    judged
        .into_iter()
        .map(|(what, ts)| {
            let of: Vec<&PortResult> = ports.iter().filter(|r| ts.contains(&r.transport)).collect();
            let open: Vec<String> = of
                .iter()
                .filter(|r| r.state == PortState::Open)
                .map(|r| format!("{}/{}", r.port, r.transport))
                .collect();
            let verdict = if open.is_empty() {
                let count = |t: Transport, s: PortState| {
                    of.iter().filter(|r| r.transport == t && r.state == s).count()
                };
                let mut scope = Vec::new();
                for t in &ts {
                    let n = of.iter().filter(|r| r.transport == *t).count();
                    scope.push(format!(
                        "{n} {t} ports scanned: none open ({} closed, {} filtered, {} open|filtered)",
                        count(*t, PortState::Closed),
                        count(*t, PortState::Filtered),
                        count(*t, PortState::OpenFiltered)
                    ));
                }
                Statement::Proven {
                    scope: scope.join("; "),
                }
            } else {
                Statement::Refuted { open }
            };
            (what, verdict)
        })
        .collect()
}

/// With a scan from zone `zone`: every port reached (open or closed: a SYN got through the
/// firewall and the device answered) that no rule of the device admits from that zone
/// (`zone_networks`: the zone's prefixes, which a peer-initiated rule's peers must cover).
pub fn zone_findings(
    rules: &[Rule],
    group: &str,
    zone: &str,
    scanner: std::net::IpAddr,
    ports: &[PortResult],
) -> Vec<Finding> {
    let admitted = |t: Transport, port: u16| {
        rules.iter().any(|r| {
            r.group == group
                && r.initiator == Initiator::Peer
                && transport_of(r.protocol) == Some(t)
                && (r.ports.is_empty() || r.ports.iter().any(|p| p.contains(port)))
                && r.peers.prefixes.iter().any(|n| n.contains(&scanner))
        })
    };
    // Runs of neighbouring ports of one transport and state, one finding each.
    let mut runs: Vec<(Transport, PortState, u16, u16, String)> = Vec::new();
    let mut reached: Vec<&PortResult> = ports
        .iter()
        .filter(|r| r.state.reached() && !admitted(r.transport, r.port))
        .collect();
    reached.sort_by_key(|r| (r.transport, r.port));
    for r in reached {
        match runs.last_mut() {
            Some((t, st, _, last, _))
                if *t == r.transport
                    && *st == r.state
                    && u32::from(*last) + 1 == u32::from(r.port) =>
            {
                *last = r.port
            }
            _ => runs.push((r.transport, r.state, r.port, r.port, r.reason.to_string())),
        }
    }
    runs.into_iter()
        .map(|(t, state, first, last, reason)| {
            let ports = if first == last {
                format!("{t} {first} is")
            } else {
                format!("{t} {first}-{last} are")
            };
            Finding {
                severity: Severity::Error,
                code: FindingCode::ZoneNotAllowed,
                transport: t,
                port: first,
                last_port: (last != first).then_some(last),
                message: format!(
                    "{ports} reachable from zone `{zone}` ({state}: {reason}), and no flow of \
                     the profile admits it from there"
                ),
            }
        })
        .collect()
}
