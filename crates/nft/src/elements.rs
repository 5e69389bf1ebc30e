//! The elements `portolan enforce` writes: `device . peer` pairs (and, for a peer learnt from
//! a DNS SRV record, `device . peer . port` triples) with a timeout, added to the
//! per-rule sets of the enforce policy in one `nft -f -` transaction, and read back from the
//! kernel with their time left (`enforce --status`).
//!
//! An element already in a set keeps its old timeout when added again (`add element` of an
//! existing element changes nothing), so a refresh is written as add, delete, add in one
//! transaction: the first add makes the delete valid whether or not the element existed, and
//! since the transaction commits atomically the element is never absent for a packet. An
//! element known to be in no set yet (the forwarder read the sets when it started and has
//! written them since) needs only the one `add` ([`fresh_pair_script`]).

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::exec::Where;
use crate::expr::{Expr, Named};
use crate::schema::Family;
use crate::{is_dns_filled_set, TABLE};

/// One `device . peer` element to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub set: String,
    pub device: IpAddr,
    pub peer: IpAddr,
    /// The peer's port, for a set of `device . peer . port` triples (an SRV record's port);
    /// `None` for a `device . peer` set.
    pub port: Option<u16>,
    /// Seconds, at least 1.
    pub timeout: u64,
}

impl Pair {
    /// The element as nft writes it: `10.0.0.2 . 192.0.2.7` or `10.0.0.2 . 192.0.2.7 . 8883`.
    pub fn element(&self) -> String {
        match self.port {
            Some(port) => format!("{} . {} . {port}", self.device, self.peer),
            None => format!("{} . {}", self.device, self.peer),
        }
    }
}

/// The `nft -f` script that adds or refreshes `pairs`. `None` when a pair mixes families or
/// its set name is not one of the enforce policy's (nothing else may reach the script).
pub fn pair_script(pairs: &[Pair]) -> Option<String> {
    let mut s = String::new();
    for p in pairs {
        if !writable(p) {
            return None;
        }
        let el = p.element();
        let t = p.timeout.max(1);
        s.push_str(&format!("add element {TABLE} {} {{ {el} }}\n", p.set));
        s.push_str(&format!("delete element {TABLE} {} {{ {el} }}\n", p.set));
        s.push_str(&format!(
            "add element {TABLE} {} {{ {el} timeout {t}s }}\n",
            p.set
        ));
    }
    Some(s)
}

/// The `nft -f` script that adds `pairs`, each with one `add element`: only for elements known
/// to be in no set (an element already there would keep its old timeout). `None` as for
/// [`pair_script`].
pub fn fresh_pair_script(pairs: &[Pair]) -> Option<String> {
    let mut s = String::new();
    for p in pairs {
        if !writable(p) {
            return None;
        }
        s.push_str(&format!(
            "add element {TABLE} {} {{ {} timeout {}s }}\n",
            p.set,
            p.element(),
            p.timeout.max(1)
        ));
    }
    Some(s)
}

/// Whether `p` may be written: an enforce set's name, one family.
pub fn writable(p: &Pair) -> bool {
    let safe = p
        .set
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    safe && is_dns_filled_set(&p.set) && p.device.is_ipv4() == p.peer.is_ipv4()
}

/// Adds or refreshes `pairs` in one transaction of its own (one `nft` process); returns when
/// the kernel has committed it. [`crate::commit::Committer`] is the fast way.
pub fn write_pairs(w: &Where, pairs: &[Pair]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let script = pair_script(pairs).ok_or_else(|| {
        Error::Apply("refusing an enforce element of mixed families or an unknown set".into())
    })?;
    crate::commit::run_process(w, &script)
}

/// One live `device . peer` element as the kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePair {
    pub set: String,
    pub device: IpAddr,
    pub peer: IpAddr,
    /// The port of a `device . peer . port` element.
    pub port: Option<u16>,
    /// The element's timeout, seconds.
    pub timeout: Option<u64>,
    /// Seconds left.
    pub expires: Option<u64>,
}

/// The `device . peer` elements of every pair set of Portolan's table in `w`; empty when the
/// table does not exist.
pub fn live_pairs(w: &Where) -> Result<Vec<LivePair>> {
    let Some(rs) = crate::ruleset::read_table(w, Family::Inet, crate::table_name())? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for s in rs.sets() {
        if !is_dns_filled_set(&s.name) || s.is_map() {
            continue;
        }
        for e in s.elements() {
            let Some(Named::Concat(parts)) = e.key.named() else {
                continue;
            };
            let addr = |x: &Expr| match x {
                Expr::String(v) => v.parse::<IpAddr>().ok(),
                _ => None,
            };
            let port = |x: &Expr| match x {
                Expr::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Expr::String(v) => v.parse::<u16>().ok(),
                _ => None,
            };
            let (device, peer, port) = match parts.as_slice() {
                [d, p] => (addr(d), addr(p), None),
                [d, p, n] => match port(n) {
                    Some(n) => (addr(d), addr(p), Some(n)),
                    None => continue,
                },
                _ => continue,
            };
            if let (Some(device), Some(peer)) = (device, peer) {
                out.push(LivePair {
                    set: s.name.clone(),
                    device,
                    peer,
                    port,
                    timeout: e.timeout,
                    expires: e.expires,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_add_delete_add() {
        let p = Pair {
            set: "e_cam_cloud_0123_v4".into(),
            device: "10.0.0.2".parse().expect("addr"),
            peer: "192.0.2.7".parse().expect("addr"),
            port: None,
            timeout: 0,
        };
        let s = pair_script(std::slice::from_ref(&p)).expect("script");
        assert_eq!(
            s,
            "add element inet portolan e_cam_cloud_0123_v4 { 10.0.0.2 . 192.0.2.7 }\n\
             delete element inet portolan e_cam_cloud_0123_v4 { 10.0.0.2 . 192.0.2.7 }\n\
             add element inet portolan e_cam_cloud_0123_v4 { 10.0.0.2 . 192.0.2.7 timeout 1s }\n"
        );
        let mixed = Pair {
            peer: "2001:db8::1".parse().expect("addr"),
            ..p.clone()
        };
        assert_eq!(pair_script(&[mixed]), None);
        let hostile = Pair {
            set: "x_v4 { 0.0.0.0/0 }; flush ruleset; #_v4".into(),
            ..p
        };
        assert_eq!(pair_script(&[hostile]), None);
    }

    #[test]
    fn an_srv_triple_is_written_device_peer_port() {
        // nft(8), "SETS": a concatenated key's values joined with ` . ` in the type's order
        // (`ipv4_addr . ipv4_addr . inet_service`).
        let p = Pair {
            set: "e_gw_mqtt_0123_v4".into(),
            device: "10.0.0.2".parse().expect("addr"),
            peer: "192.0.2.7".parse().expect("addr"),
            port: Some(1883),
            timeout: 90,
        };
        assert_eq!(
            fresh_pair_script(&[p]).expect("script"),
            "add element inet portolan e_gw_mqtt_0123_v4 { 10.0.0.2 . 192.0.2.7 . 1883 timeout 90s }\n"
        );
    }
}
