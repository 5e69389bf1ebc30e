//! The direction rule: which flow, and which initiator, the ACEs of one group stand for. A
//! group is every ACE with the same peer, protocol, address family, port on the peer's side and
//! port on the device's side, from either policy (see `import`). RFC 8520 section 2 puts the
//! packets the device sends in `from-device-policy` and those it receives in
//! `to-device-policy`; RFC 8519 section 4.1 matches `source-port` and `destination-port` of the
//! packet; RFC 8520 section 4.7 (`direction-initiated`, TCP only) says which side opened the
//! connection a packet belongs to. The rule never reads a group as admitting packets its ACEs do
//! not admit:
//!
//! 1. The side whose port alone is matched is the server; the other side initiates. A peer port
//!    only (a from-device destination port, a to-device source port): the device initiates. A
//!    device port only: the peer initiates.
//! 2. No port, or the same port on both sides (BACnet's 47808 ↔ 47808): the policies say who
//!    may send first. Both policies: either side; from-device only: the device; to-device only:
//!    the peer. Different ports on both sides: as in 1 when one policy holds the group; in both,
//!    the device initiates (from its port to the peer's), with an `ambiguous-direction` warning.
//! 3. An initiator must be able to send its first packet: a device-initiated reading needs a
//!    from-device ACE, a peer-initiated one a to-device ACE. A group that is only the return
//!    path of a flow (a to-device ACE matching only the peer's port — packets from a server the
//!    device connected to — with no from-device partner; or the mirror image) is skipped with
//!    `unpaired-return-path`: reading it as a flow would open the device, or let it open
//!    connections, where the file allows neither.
//! 4. `direction-initiated` (TCP) decides where rule 2 left either side, and must agree with
//!    rules 1 and 3 otherwise; two ACEs of a group saying different things, or a value that
//!    contradicts the ports or the policies, skip the group with `direction-conflict` (the
//!    narrower reading: the file does not say consistently who may open the connection).
//! 5. ICMP: the request's sender initiates (the reply travels back); a group that holds only
//!    replies is a return path as in 3.

use portolan_model::PortItem;

use crate::code::Code;
use crate::problem::Problems;
use crate::rules::{AceRule, Dir};

/// Who opens the flow a group stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    Device,
    Peer,
    Either,
}

impl Initiator {
    /// The profile format's word.
    pub fn word(self) -> &'static str {
        match self {
            Initiator::Device => "device",
            Initiator::Peer => "peer",
            Initiator::Either => "either",
        }
    }
}

/// What a group of ACEs means as a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub initiator: Initiator,
    /// The device is the flow's `from` side (its `ports` are the peer's).
    pub outbound: bool,
}

/// The facts of a group the rule reads.
pub struct Facts<'a> {
    pub rules: &'a [&'a AceRule],
    pub protocol: Option<u8>,
    pub peer_port: &'a Option<Vec<PortItem>>,
    pub dev_port: &'a Option<Vec<PortItem>>,
    /// ICMP request type and who sends it.
    pub icmp: Option<(u8, Dir)>,
    /// The flow id, for messages.
    pub id: &'a str,
}

fn reading(initiator: Initiator) -> Reading {
    Reading {
        initiator,
        outbound: initiator != Initiator::Peer,
    }
}

/// Reads a group by the direction rule, or says (as a warning) why it is skipped.
pub fn read(g: &Facts<'_>, p: &mut Problems) -> Option<Reading> {
    let first = g.rules.first()?;
    let id = g.id;
    let from_seen = g.rules.iter().any(|r| r.dir == Dir::FromDevice);
    let to_seen = g.rules.iter().any(|r| r.dir == Dir::ToDevice);
    let by_policies = match (from_seen, to_seen) {
        (true, true) => Initiator::Either,
        (true, false) => Initiator::Device,
        _ => Initiator::Peer,
    };
    let return_path = |p: &mut Problems, what: &str| {
        p.warning(
            &first.path,
            Code::UnpairedReturnPath,
            format!("flow `{id}`: {what}, and no ACE of the other policy admits the packets that would open it; reading it as a flow would admit more than the file, so it is skipped"),
        );
    };
    if let Some((_, sender)) = g.icmp {
        if !g.rules.iter().any(|r| r.dir == sender) {
            return_path(p, "the ACEs admit only ICMP replies");
            return None;
        }
        return Some(reading(if sender == Dir::FromDevice {
            Initiator::Device
        } else {
            Initiator::Peer
        }));
    }
    // direction-initiated (TCP only; the reader ignores it elsewhere).
    let mut inits: Vec<Dir> = g.rules.iter().filter_map(|r| r.initiated).collect();
    inits.sort();
    inits.dedup();
    let said = match inits.as_slice() {
        [] => None,
        [d] => Some(match d {
            Dir::FromDevice => Initiator::Device,
            Dir::ToDevice => Initiator::Peer,
        }),
        _ => {
            p.warning(
                &first.path,
                Code::DirectionConflict,
                format!("flow `{id}`: its ACEs say both from-device and to-device in direction-initiated; the file does not say who opens the connection, so the flow is skipped"),
            );
            return None;
        }
    };
    let natural = match (g.peer_port, g.dev_port) {
        (Some(_), None) => {
            if !from_seen && said != Some(Initiator::Peer) {
                return_path(
                    p,
                    "a to-device ACE matches only the peer's (source) port: the return path of a connection the device opens",
                );
                return None;
            }
            if !from_seen {
                // The peer opens from its port to any port of the device: what the ACE says.
                Initiator::Peer
            } else {
                Initiator::Device
            }
        }
        (None, Some(_)) => {
            if !to_seen && said != Some(Initiator::Device) {
                return_path(
                    p,
                    "a from-device ACE matches only the device's (source) port: the return path of a connection the peer opens",
                );
                return None;
            }
            if !to_seen {
                Initiator::Device
            } else {
                Initiator::Peer
            }
        }
        (Some(a), Some(b)) if a != b && from_seen && to_seen => {
            if said.is_none() && g.protocol != Some(6) {
                p.warning(
                    &first.path,
                    Code::AmbiguousDirection,
                    format!("flow `{id}`: ports on both sides, different, in both policies: either side could be the server; read as opened by the device (from its port to the peer's), not by both"),
                );
            }
            said.unwrap_or(Initiator::Device)
        }
        _ => by_policies,
    };
    let initiator = match (natural, said) {
        (n, None) => n,
        (Initiator::Either, Some(s)) => s,
        (n, Some(s)) if n == s => n,
        (_, Some(s)) => {
            p.warning(
                &first.path,
                Code::DirectionConflict,
                format!("flow `{id}`: direction-initiated says {} initiates, but the ports and policies say otherwise; the flow is skipped rather than read the wider way", s.word()),
            );
            return None;
        }
    };
    let can_open = match initiator {
        Initiator::Device => from_seen,
        Initiator::Peer => to_seen,
        Initiator::Either => from_seen && to_seen,
    };
    if !can_open {
        p.warning(
            &first.path,
            Code::DirectionConflict,
            format!("flow `{id}`: direction-initiated names the {} as the initiator, but no ACE admits the packets it would send first; the flow is skipped", if initiator == Initiator::Device { "device" } else { "peer" }),
        );
        return None;
    }
    Some(reading(initiator))
}
