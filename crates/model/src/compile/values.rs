//! A device's values for one flow, resolved from the site and the profile: params (the site's
//! value, else the profile's default), ports and protocol (the profile's, or the site's where
//! the source leaves them `unspecified`), and the device's version against a condition.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Code, Pos, Sink, Subject};
use crate::document::pos;
use crate::ir::*;
use crate::ports::{parse_item, PortItem, PortSpec};
use crate::profile::*;
use crate::protocol::Protocol;
use crate::raw::{RawPorts, Scalar, Spanned};
use crate::raw_site::*;

/// A param value for a device: the site's, else the profile's default.
pub(super) fn param_text(d: &RawDevice, p: &Profile, id: &str) -> Option<String> {
    if let Some(v) = d.params.get(id) {
        return Some(match &v.value {
            RawPorts::One(s) => s.to_string(),
            RawPorts::List(l) => l
                .iter()
                .map(|s| s.value.to_string())
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    match &p.param(id)?.default {
        Some(ParamValue::Text(t)) => Some(t.clone()),
        Some(ParamValue::Ports(ps)) => Some(ps.to_strings().join(",")),
        None => None,
    }
}

pub(super) fn version_ok(have: &[u32], req: &VersionReq) -> bool {
    let n = have.len().max(req.version.len());
    let pad = |v: &[u32]| {
        (0..n)
            .map(|i| v.get(i).copied().unwrap_or(0))
            .collect::<Vec<u32>>()
    };
    let (a, b) = (pad(have), pad(&req.version));
    match req.op.as_str() {
        ">=" => a >= b,
        ">" => a > b,
        "<=" => a <= b,
        "<" => a < b,
        _ => a == b,
    }
}

pub(super) struct Dev<'a> {
    pub d: &'a RawDevice,
    pub p: &'a Profile,
    /// Roles already reported unbound: one error per role, not one per flow.
    pub unbound: std::cell::RefCell<BTreeSet<String>>,
    /// Params whose site value was refused (reported where it is written).
    pub bad: BTreeSet<String>,
    /// Each binding read once (its problems and `any` warning reported once, not per flow).
    pub bound: BTreeMap<String, Option<Peers>>,
}

impl Dev<'_> {
    pub(super) fn here(&self) -> Pos {
        pos(&self.d.id)
    }

    pub(super) fn param(&self, sink: &mut Sink, id: &str, flow: &str) -> Option<String> {
        if self.bad.contains(id) {
            return None;
        }
        let v = param_text(self.d, self.p, id);
        if v.is_none() {
            sink.error_about(Subject::Param(id.to_string()), self.here(), Code::MissingParam, format!("device `{}`: flow `{flow}` needs param `{id}` of profile `{}`, which has no default", self.d.id.value, self.p.id), format!("add `params: {{{id}: ...}}` to the device"));
        }
        v
    }

    pub(super) fn ports(
        &self,
        sink: &mut Sink,
        spec: &PortSpec,
        flow: &Flow,
        site: Option<&Spanned<RawPorts>>,
    ) -> Option<Vec<PortRange>> {
        if let Some(sp) = site {
            return site_ports(sink, sp);
        }
        match spec {
            PortSpec::None => Some(Vec::new()),
            PortSpec::Unspecified => {
                sink.error(
                    self.here(),
                    Code::UnspecifiedPort,
                    format!(
                        "device `{}`: the source does not give the ports of flow `{}/{}`",
                        self.d.id.value, self.p.id, flow.id
                    ),
                    format!("supply them: `flows: {{{}: {{ports: ...}}}}`", flow.id),
                );
                None
            }
            PortSpec::List(items) => {
                let mut out = Vec::new();
                for it in items {
                    match it {
                        PortItem::Single(p) => out.push(PortRange { lo: *p, hi: *p }),
                        PortItem::Range(a, b) => out.push(PortRange { lo: *a, hi: *b }),
                        PortItem::Param(id) => {
                            let text = self.param(sink, id, &flow.id)?;
                            for part in text.split(',') {
                                match parse_item(part) {
                                    Ok(PortItem::Single(p)) => out.push(PortRange { lo: p, hi: p }),
                                    Ok(PortItem::Range(a, b)) => {
                                        out.push(PortRange { lo: a, hi: b })
                                    }
                                    _ => {
                                        let at =
                                            self.d.params.get(id.as_str()).map_or(self.here(), pos);
                                        sink.error_about(
                                            Subject::Param(id.clone()),
                                            at,
                                            Code::InvalidParam,
                                            format!("param `{id}` = `{text}` is not a port list"),
                                            "give ports such as 2001 or \"2001-2004\"",
                                        );
                                        return None;
                                    }
                                }
                            }
                        }
                    }
                }
                Some(out)
            }
        }
    }

    pub(super) fn protocol(
        &self,
        sink: &mut Sink,
        flow: &Flow,
        site: Option<&Spanned<Scalar>>,
    ) -> Option<Protocol> {
        if let Some(s) = site {
            let p = match &s.value {
                Scalar::Int(n) => u8::try_from(*n).ok().map(Protocol::from_number),
                Scalar::Str(t) => Protocol::from_name(t).filter(|p| *p != Protocol::Unspecified),
            };
            if p.is_none() {
                sink.error(
                    pos(s),
                    Code::UnknownProtocol,
                    format!("protocol `{}` is not known", s.value),
                    "use tcp, udp, sctp, icmp, esp… or an IANA number",
                );
            }
            return p;
        }
        match &flow.protocol {
            Protocol::Unspecified => {
                sink.error(
                    self.here(),
                    Code::UnspecifiedProtocol,
                    format!(
                        "device `{}`: the source does not give the transport of flow `{}/{}`",
                        self.d.id.value, self.p.id, flow.id
                    ),
                    format!(
                        "supply it: `flows: {{{}: {{protocol: udp, ports: ...}}}}`",
                        flow.id
                    ),
                );
                None
            }
            Protocol::Param(id) => {
                let t = self.param(sink, id, &flow.id)?;
                let p = Protocol::from_name(&t)
                    .filter(|p| p.has_ports() && !matches!(p, Protocol::Unspecified));
                if p.is_none() {
                    sink.error_about(
                        Subject::Param(id.clone()),
                        self.here(),
                        Code::InvalidParam,
                        format!("param `{id}` = `{t}` is not a protocol"),
                        "use tcp or udp",
                    );
                }
                p
            }
            p => Some(p.clone()),
        }
    }
}

pub(super) fn site_ports(sink: &mut Sink, sp: &Spanned<RawPorts>) -> Option<Vec<PortRange>> {
    let items: Vec<(Pos, String)> = match &sp.value {
        RawPorts::One(s) => vec![(pos(sp), s.to_string())],
        RawPorts::List(l) => l.iter().map(|s| (pos(s), s.value.to_string())).collect(),
    };
    let mut out = Vec::new();
    for (at, t) in items {
        match parse_item(&t) {
            Ok(PortItem::Single(p)) => out.push(PortRange { lo: p, hi: p }),
            Ok(PortItem::Range(a, b)) => out.push(PortRange { lo: a, hi: b }),
            _ => {
                sink.error(
                    at,
                    Code::InvalidPort,
                    format!("`{t}` is not a port or range 1..65535"),
                    "write 443 or \"3001-3003\"",
                );
                return None;
            }
        }
    }
    Some(out)
}
