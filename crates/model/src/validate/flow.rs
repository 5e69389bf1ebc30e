//! A profile's flows: protocol, ports, direction, family, ICMP types, casts and crypto; flow
//! ids unique within each mode, and tunnels (`inside:`) naming a flow and port that exist.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::diag::{Code, Pos, Sink};
use crate::document::{check_ident, pos};
use crate::ports::{parse_item, port_number, PortError, PortItem, PortSpec};
use crate::profile::*;
use crate::protocol::Protocol;
use crate::raw::*;

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn protocol(&self, sink: &mut Sink, p: &Spanned<Scalar>) -> Protocol {
        match &p.value {
            Scalar::Int(n) => match u8::try_from(*n) {
                Ok(n) => Protocol::from_number(n),
                Err(_) => {
                    sink.error(
                        pos(p),
                        Code::UnknownProtocol,
                        format!("protocol number {n} is outside 0..255"),
                        "use a name (tcp, udp, esp…) or an IANA number",
                    );
                    Protocol::Unspecified
                }
            },
            Scalar::Str(s) => {
                if let Some(name) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                    match self.params.get(name) {
                        None => sink.error(
                            pos(p),
                            Code::UnknownParam,
                            format!("protocol refers to param `{name}`, which is not declared"),
                            "declare it under `params`",
                        ),
                        Some(rp) => {
                            let ok = rp.kind.value == "enum"
                                && rp.values.iter().all(|v| matches!(&v.value, Scalar::Str(s) if Protocol::from_name(s).is_some_and(|p| p.has_ports())));
                            if !ok {
                                sink.error(pos(p), Code::ParamTypeMismatch, format!("param `{name}` must be an enum of protocol names with ports (tcp, udp, sctp)"), "declare `type: enum` with `values: [udp, tcp]`");
                            }
                        }
                    }
                    return Protocol::Param(name.to_string());
                }
                match Protocol::from_name(s) {
                    Some(p) => p,
                    None => {
                        sink.error(pos(p), Code::UnknownProtocol, format!("protocol `{s}` is not known"), "use tcp, udp, sctp, icmp, icmpv6, esp, ah, gre, igmp, arp, an IANA number, a {param} or `unspecified`");
                        Protocol::Unspecified
                    }
                }
            }
        }
    }

    pub(super) fn ports(&self, sink: &mut Sink, raw: &Spanned<RawPorts>) -> PortSpec {
        let items: Vec<(Pos, &Scalar)> = match &raw.value {
            RawPorts::One(Scalar::Str(s)) if s == "unspecified" => return PortSpec::Unspecified,
            RawPorts::One(s) => vec![(pos(raw), s)],
            RawPorts::List(l) => l.iter().map(|s| (pos(s), &s.value)).collect(),
        };
        if items.is_empty() {
            sink.error(
                pos(raw),
                Code::InvalidPort,
                "the port list is empty",
                "list at least one port, or write `unspecified`",
            );
        }
        // A comma list written as one text, `"443, 2195-2196, 5223"` (edition 2).
        let mut split: Vec<(Pos, Scalar)> = Vec::new();
        for (at, s) in items {
            match s {
                Scalar::Str(t) if t.contains(',') => {
                    self.needs_edition2(sink, at, "a port list written as text");
                    let parts = t.split(',').map(|x| Scalar::Str(x.trim().to_string()));
                    split.extend(parts.map(|x| (at, x)));
                }
                other => split.push((at, other.clone())),
            }
        }
        let mut out = Vec::new();
        for (at, s) in &split {
            let at = *at;
            let parsed = match s {
                Scalar::Int(n) => port_number(*n).map(PortItem::Single),
                Scalar::Str(t) => parse_item(t),
            };
            match parsed {
                Ok(PortItem::Param(p)) => {
                    match self.params.get(&p) {
                        None => sink.error(
                            at,
                            Code::UnknownParam,
                            format!("port refers to param `{p}`, which is not declared"),
                            "declare it under `params` with `type: port`",
                        ),
                        Some(rp) if !matches!(rp.kind.value.as_str(), "port" | "ports") => sink
                            .error(
                                at,
                                Code::ParamTypeMismatch,
                                format!("param `{p}` is a {}, not a port", rp.kind.value),
                                "use `type: port` or `type: ports`",
                            ),
                        Some(_) => {}
                    }
                    out.push(PortItem::Param(p));
                }
                Ok(item) => out.push(item),
                Err(PortError::OutOfRange(n)) => sink.error(
                    at,
                    Code::PortOutOfRange,
                    format!("port {n} is outside 1..65535"),
                    "ports are 1 to 65535",
                ),
                Err(PortError::Reversed(a, b)) => sink.error(
                    at,
                    Code::ReversedRange,
                    format!("range {a}-{b} runs backwards"),
                    format!("write it as {b}-{a}"),
                ),
                Err(PortError::Syntax(t)) => sink.error(
                    at,
                    Code::InvalidPort,
                    format!("`{t}` is not a port, range or {{param}}"),
                    "write 443, \"3001-3003\", \"{param}\" or `unspecified`; a list is written `[443, 5223]` (or, in the second edition, `\"443, 5223\"`)",
                ),
            }
        }
        PortSpec::List(out)
    }

    pub(super) fn flow(&self, sink: &mut Sink, f: &RawFlow) -> Flow {
        check_ident(sink, "flow id", &f.id);
        for m in &f.modes {
            if !self.modes.contains(&m.value) {
                sink.error(
                    pos(m),
                    Code::UnknownMode,
                    format!(
                        "flow `{}` names mode `{}`, which is not declared",
                        f.id.value, m.value
                    ),
                    "declare it under `modes`, or fix the name",
                );
            }
        }
        for side in [&f.from, &f.to] {
            if side.value != DEVICE && !self.endpoints.contains(&side.value) {
                sink.error(
                    pos(side),
                    Code::UnknownEndpoint,
                    format!(
                        "flow `{}` names endpoint `{}`, which is not declared",
                        f.id.value, side.value
                    ),
                    format!(
                        "{} declare it under `endpoints`, or write `device`",
                        crate::suggest::did_you_mean(
                            &side.value,
                            self.endpoints.iter().map(String::as_str)
                        )
                    )
                    .trim_start()
                    .to_string(),
                );
            }
        }
        let device_sides = usize::from(f.from.value == DEVICE) + usize::from(f.to.value == DEVICE);
        if device_sides != 1 {
            sink.error(
                pos(&f.from),
                Code::NoDeviceSide,
                format!(
                    "flow `{}` must have `device` on exactly one side",
                    f.id.value
                ),
                "a flow runs between the device and one endpoint",
            );
        }
        let initiation = match f.initiation.value.as_str() {
            "device" => Initiation::Device,
            "peer" => Initiation::Peer,
            "either" => Initiation::Either,
            other => {
                sink.error(
                    pos(&f.initiation),
                    Code::UnknownValue,
                    format!("initiation `{other}` is not known"),
                    "use device, peer or either",
                );
                Initiation::Either
            }
        };
        if device_sides == 1 {
            let from_device = f.from.value == DEVICE;
            if (initiation == Initiation::Device && !from_device)
                || (initiation == Initiation::Peer && from_device)
            {
                sink.error(
                    pos(&f.initiation),
                    Code::InitiationMismatch,
                    format!(
                        "flow `{}`: the initiator must be the `from` side",
                        f.id.value
                    ),
                    "swap `from` and `to` (ports are on the `to` side), or use `either`",
                );
            }
        }
        let before = sink.diagnostics.len();
        let protocol = self.protocol(sink, &f.protocol);
        // A protocol that could not be read says nothing about ports: no follow-on errors.
        let protocol_read = sink.diagnostics.len() == before;
        let ports = match &f.ports {
            Some(p) if !protocol.has_ports() => {
                sink.error(
                    pos(p),
                    Code::PortsNotAllowed,
                    format!("protocol {protocol} has no ports"),
                    "remove `ports`",
                );
                PortSpec::None
            }
            Some(p) => self.ports(sink, p),
            None if protocol.has_ports() && protocol_read => {
                sink.error(
                    pos(&f.protocol),
                    Code::PortsRequired,
                    format!("flow `{}` is {protocol} but says no ports", f.id.value),
                    "give the ports, or `ports: unspecified` if the source does not say",
                );
                PortSpec::None
            }
            None => PortSpec::None,
        };
        let src_ports = match &f.src_ports {
            Some(p) if !protocol.has_ports() => {
                sink.error(
                    pos(p),
                    Code::PortsNotAllowed,
                    format!("protocol {protocol} has no ports"),
                    "remove `src_ports`",
                );
                PortSpec::None
            }
            Some(p) => self.ports(sink, p),
            None => PortSpec::None,
        };
        let source = match &f.source {
            Some(s) if !s.0.is_empty() => self.cite(sink, s),
            _ => {
                sink.error(
                    pos(&f.id),
                    Code::MissingSource,
                    format!("flow `{}` cites no source", f.id.value),
                    "add `source: {doc: <source id>, ref: <table/row or section>}`",
                );
                Vec::new()
            }
        };
        let conditions = f
            .conditions
            .iter()
            .filter_map(|c| self.condition(sink, c))
            .collect();
        let cast = match f.cast.as_ref().map(|c| c.value.as_str()) {
            None | Some("unicast") => Cast::Unicast,
            Some("broadcast") => Cast::Broadcast,
            Some("multicast") => Cast::Multicast,
            Some(other) => {
                sink.error(
                    f.cast.as_ref().map_or(Pos::UNKNOWN, pos),
                    Code::UnknownValue,
                    format!("cast `{other}` is not known"),
                    "use unicast, broadcast or multicast",
                );
                Cast::Unicast
            }
        };
        let family = match f.family.as_ref().map(|c| c.value.as_str()) {
            None => None,
            Some("ipv4") => Some(IpFamily::Ipv4),
            Some("ipv6") => Some(IpFamily::Ipv6),
            Some(other) => {
                sink.error(
                    f.family.as_ref().map_or(Pos::UNKNOWN, pos),
                    Code::UnknownValue,
                    format!("family `{other}` is not known"),
                    "use ipv4 or ipv6, or leave `family` out for both",
                );
                None
            }
        };
        let clash = match (family, &protocol) {
            (Some(IpFamily::Ipv6), Protocol::Icmp) => Some("icmp"),
            (Some(IpFamily::Ipv4), Protocol::Icmpv6) => Some("icmpv6"),
            _ => None,
        };
        if let (Some(proto), Some(fam)) = (clash, &f.family) {
            sink.error(
                pos(fam),
                Code::FamilyProtocolMismatch,
                format!("an {proto} flow cannot be `family: {}`", fam.value),
                "icmp is IPv4's, icmpv6 IPv6's",
            );
        }
        let group = f
            .group
            .as_ref()
            .and_then(|g| match g.value.parse::<IpAddr>() {
                Ok(a) if a.is_multicast() => Some(a),
                _ => {
                    sink.error(
                        pos(g),
                        Code::InvalidAddress,
                        format!("`{}` is not a multicast group address", g.value),
                        "use an address in 224.0.0.0/4 or ff00::/8",
                    );
                    None
                }
            });
        if group.is_some() && cast != Cast::Multicast {
            sink.error(
                pos(&f.id),
                Code::InvalidCast,
                "`group` is set but `cast` is not multicast",
                "add `cast: multicast`",
            );
        }
        if let Some(t) = &f.icmp_type {
            if !protocol.is_icmp() {
                sink.error(
                    pos(t),
                    Code::IcmpTypeNotAllowed,
                    format!("`icmp_type` on a {protocol} flow"),
                    "only icmp and icmpv6 flows have ICMP types",
                );
            }
            // The names nft knows for the flow's family (both, for a protocol that is not
            // ICMP, which the error above already refuses).
            let v6 = protocol == Protocol::Icmpv6;
            let known = if protocol.is_icmp() {
                crate::icmp::type_number(v6, &t.value).is_some()
            } else {
                crate::icmp::type_number(false, &t.value)
                    .or(crate::icmp::type_number(true, &t.value))
                    .is_some()
            };
            if !known {
                let names: Vec<&str> = crate::icmp::type_names(v6).collect();
                sink.error(
                    pos(t),
                    Code::InvalidIcmpType,
                    format!(
                        "`{}` is not an {} type name",
                        t.value,
                        if v6 { "ICMPv6" } else { "ICMP" }
                    ),
                    format!("use the nftables name: {}", names.join(", ")),
                );
            }
        }
        let keepalive_unspecified = f
            .keepalive
            .as_ref()
            .is_some_and(|k| matches!(&k.value, Scalar::Str(w) if w == "unspecified"));
        if let Some(k) = f.keepalive.as_ref().filter(|_| keepalive_unspecified) {
            self.needs_edition2(sink, pos(k), "`keepalive: unspecified`");
        }
        let keepalive = f.keepalive.as_ref().and_then(|k| match &k.value {
            Scalar::Int(n) if *n > 0 && u32::try_from(*n).is_ok() => u32::try_from(*n).ok(),
            Scalar::Str(w) if w == "unspecified" => None,
            other => {
                sink.error(
                    pos(k),
                    Code::InvalidValue,
                    format!("keepalive {other} is not a positive number of seconds"),
                    "give seconds, e.g. 540, or `unspecified` where the source gives none",
                );
                None
            }
        });
        let idle_timeout = f.idle_timeout.as_ref().and_then(|t| {
            self.needs_edition2(sink, pos(t), "`idle_timeout`");
            match u32::try_from(t.value) {
                Ok(v) if v > 0 && protocol.has_ports() => Some(v),
                Ok(v) if v > 0 => {
                    sink.error(
                        pos(t),
                        Code::InvalidValue,
                        format!("protocol {protocol} keeps no connection state to time out"),
                        "idle_timeout is for tcp, udp or sctp flows",
                    );
                    None
                }
                _ => {
                    sink.error(
                        pos(t),
                        Code::InvalidValue,
                        format!(
                            "idle_timeout {} is not a positive number of seconds",
                            t.value
                        ),
                        "give seconds, e.g. 300",
                    );
                    None
                }
            }
        });
        if let Some(r) = f.replaces.first() {
            self.needs_edition2(sink, pos(r), "`replaces`");
        }
        let tls = f.tls.as_ref().map(|t| {
            let inspection = t
                .value
                .inspection
                .as_ref()
                .and_then(|i| match i.value.as_str() {
                    "allowed" => Some(Inspection::Allowed),
                    "forbidden" => Some(Inspection::Forbidden),
                    other => {
                        sink.error(
                            pos(i),
                            Code::UnknownValue,
                            format!("inspection `{other}` is not known"),
                            "use allowed or forbidden",
                        );
                        None
                    }
                });
            self.tls_facts(sink, &t.value);
            Tls {
                expected_issuer: t.value.expected_issuer.clone(),
                inspection,
                versions: t.value.versions.clone(),
                sni: t.value.sni.clone(),
                sni_required: t.value.sni_required.as_ref().is_some_and(|b| b.value),
                alpn: t.value.alpn.iter().map(|a| a.value.clone()).collect(),
                client_cert: t.value.client_cert.as_ref().is_some_and(|b| b.value),
                min_version: t.value.min_version.as_ref().map(|v| v.value.clone()),
            }
        });
        let url_path = f.url_path.as_ref().map(|u| {
            self.needs_edition2(sink, pos(u), "`url_path`");
            if !u.value.starts_with('/') || u.value.chars().any(char::is_whitespace) {
                sink.error(
                    pos(u),
                    Code::InvalidValue,
                    format!("url_path `{}` is not a URL path", u.value),
                    "write the path as the device requests it, starting with '/', e.g. /mqtt",
                );
            }
            u.value.clone()
        });
        let auth = f.auth.as_ref().and_then(|a| {
            self.needs_edition2(sink, pos(a), "`auth`");
            let found = Auth::ALL.into_iter().find(|x| x.name() == a.value);
            if found.is_none() {
                let names: Vec<&str> = Auth::ALL.iter().map(|x| x.name()).collect();
                sink.error(
                    pos(a),
                    Code::UnknownValue,
                    format!("auth `{}` is not known", a.value),
                    format!("use one of: {}", names.join(", ")),
                );
            }
            found
        });
        let proxy = f.proxy.as_ref().map(|p| {
            self.needs_edition2(sink, pos(p), "`proxy`");
            let word = |sink: &mut Sink, w: &Spanned<String>| {
                let v = Support::from_name(&w.value);
                if v.is_none() {
                    sink.error(
                        pos(w),
                        Code::UnknownValue,
                        format!("`{}` is not known", w.value),
                        "use supported or unsupported",
                    );
                }
                v
            };
            let http = word(sink, &p.value.http).unwrap_or(Support::Unsupported);
            let authenticated = p.value.authenticated.as_ref().and_then(|w| word(sink, w));
            if http == Support::Unsupported && (p.value.connect_only || authenticated.is_some()) {
                sink.error(
                    pos(p),
                    Code::InvalidValue,
                    "`connect_only` and `authenticated` describe a proxy the flow can use; `http: unsupported` says it cannot",
                    "remove them, or write `http: supported`",
                );
            }
            Proxy {
                http,
                connect_only: p.value.connect_only,
                authenticated,
            }
        });
        self.truncated_values(
            sink,
            f,
            &source,
            [
                (
                    Hidden::Protocol,
                    pos(&f.protocol),
                    !matches!(protocol, Protocol::Unspecified),
                ),
                (
                    Hidden::Ports,
                    f.ports.as_ref().map_or(pos(&f.id), pos),
                    !matches!(ports, PortSpec::Unspecified | PortSpec::None),
                ),
                (
                    Hidden::SrcPorts,
                    f.src_ports.as_ref().map_or(pos(&f.id), pos),
                    !matches!(src_ports, PortSpec::Unspecified | PortSpec::None),
                ),
                (
                    Hidden::Keepalive,
                    f.keepalive.as_ref().map_or(pos(&f.id), pos),
                    keepalive.is_some(),
                ),
            ],
        );
        Flow {
            id: f.id.value.clone(),
            modes: f.modes.iter().map(|m| m.value.clone()).collect(),
            from: f.from.value.clone(),
            to: f.to.value.clone(),
            initiation,
            protocol,
            ports,
            src_ports,
            optional: f.optional,
            app: f.app.clone(),
            from_app: f.from_app.clone(),
            to_app: f.to_app.clone(),
            description: f.description.clone(),
            source,
            conditions,
            inside: f.inside.as_ref().map(|i| Inside {
                flow: i.value.flow.value.clone(),
                port: i
                    .value
                    .port
                    .as_ref()
                    .and_then(|p| port_number(p.value).ok()),
            }),
            cast,
            family,
            group,
            icmp_type: f.icmp_type.as_ref().map(|t| t.value.clone()),
            keepalive,
            keepalive_unspecified,
            idle_timeout,
            replaces: f.replaces.iter().map(|r| r.value.clone()).collect(),
            persistent: f.persistent,
            unauthenticated: f.unauthenticated,
            tls,
            url_path,
            auth,
            proxy,
            interfaces: self.flow_interfaces(sink, f, &self.interfaces),
            ike: f.ike.as_ref().map(|c| crypto(sink, c)),
            esp: f.esp.as_ref().map(|c| crypto(sink, c)),
        }
    }

    /// A value a truncated row hides must stay `unspecified` unless another citation of the
    /// flow, one whose row is whole, gives it: `given` is each value, where it is written,
    /// and whether the flow states it.
    fn truncated_values(
        &self,
        sink: &mut Sink,
        f: &RawFlow,
        source: &[Citation],
        given: [(Hidden, Pos, bool); 4],
    ) {
        let whole = source.iter().any(|c| c.truncated.is_none());
        if whole {
            return;
        }
        let hidden: BTreeSet<Hidden> = source
            .iter()
            .filter_map(|c| c.truncated.as_ref())
            .flat_map(|t| t.hides.iter().copied())
            .collect();
        for (h, at, stated) in given {
            if stated && hidden.contains(&h) {
                sink.error(
                    at,
                    Code::TruncatedValue,
                    format!(
                        "flow `{}` gives `{}`, which its only source cuts off",
                        f.id.value,
                        h.as_str()
                    ),
                    format!(
                        "write `{}: unspecified` (the site supplies it), or cite another source that gives the value",
                        h.as_str()
                    ),
                );
            }
        }
    }

    /// Flow ids must be unique within each mode.
    pub(super) fn flow_ids(&self, sink: &mut Sink, raw: &RawProfile) {
        let modes: Vec<Option<&str>> = if raw.modes.is_empty() {
            vec![None]
        } else {
            raw.modes
                .iter()
                .map(|m| Some(m.id.value.as_str()))
                .collect()
        };
        let mut reported = BTreeSet::new();
        for mode in modes {
            let mut seen: HashMap<&str, Pos> = HashMap::new();
            for f in &raw.flows {
                let in_mode = mode.is_none()
                    || f.modes.is_empty()
                    || f.modes.iter().any(|m| Some(m.value.as_str()) == mode);
                if !in_mode {
                    continue;
                }
                if let Some(first) = seen.get(f.id.value.as_str()) {
                    if reported.insert(pos(&f.id)) {
                        let m = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
                        sink.error(
                            pos(&f.id),
                            Code::DuplicateFlowId,
                            format!(
                                "flow id `{}` is used twice{m} (first at line {})",
                                f.id.value, first.line
                            ),
                            "give each row its own id, or limit the entries to different `modes`",
                        );
                    }
                } else {
                    seen.insert(&f.id.value, pos(&f.id));
                }
            }
        }
    }

    /// `inside:` must name a flow that exists in every mode of the inner flow, and a port the
    /// outer flow has.
    pub(super) fn tunnels(&self, sink: &mut Sink, raw: &RawProfile, flows: &[Flow]) {
        for (rf, f) in raw.flows.iter().zip(flows) {
            let (Some(ri), Some(inside)) = (&rf.inside, &f.inside) else {
                continue;
            };
            let outer_in = |mode: Option<&str>| {
                flows
                    .iter()
                    .find(|o| o.id == inside.flow && !std::ptr::eq(*o, f) && o.in_mode(mode))
            };
            // The modes the inner flow exists in (every declared one when it lists none).
            let modes: Vec<Option<&str>> = if !f.modes.is_empty() {
                f.modes.iter().map(|m| Some(m.as_str())).collect()
            } else if self.modes.is_empty() {
                vec![None]
            } else {
                self.modes.iter().map(|m| Some(m.as_str())).collect()
            };
            let missing: Vec<&str> = modes
                .iter()
                .filter(|m| outer_in(**m).is_none())
                .map(|m| m.unwrap_or("(all)"))
                .collect();
            if !missing.is_empty() {
                let m = if modes == [None] {
                    String::new()
                } else {
                    format!(" in mode {}", missing.join(", "))
                };
                sink.error(
                    pos(&ri.value.flow),
                    Code::UnknownFlow,
                    format!(
                        "flow `{}` is carried inside `{}`, which is no flow{m}",
                        f.id, inside.flow
                    ),
                    "name an outer flow that exists in every mode of the inner one, or limit the inner flow's `modes`",
                );
                continue;
            }
            let outers: Vec<&Flow> = modes.iter().filter_map(|m| outer_in(*m)).collect();
            if let Some(p) = &ri.value.port {
                match port_number(p.value) {
                    Err(_) => sink.error(
                        pos(p),
                        Code::PortOutOfRange,
                        format!("port {} is outside 1..65535", p.value),
                        "ports are 1 to 65535",
                    ),
                    Ok(n) => {
                        if let Some(o) = outers.iter().find(|o| !o.ports.contains(n)) {
                            sink.error(
                                pos(p),
                                Code::InsidePortMismatch,
                                format!("outer flow `{}` has no port {n}", o.id),
                                format!("use one of {}", o.ports),
                            );
                        }
                    }
                }
            }
        }
    }

    /// The second edition's TLS facts: ALPN names as RFC 7301 section 3.1 bounds them (1 to
    /// 255 bytes), a TLS version the IETF defined, and `versions` none below `min_version`.
    fn tls_facts(&self, sink: &mut Sink, t: &RawTls) {
        for b in [&t.sni_required, &t.client_cert].into_iter().flatten() {
            self.needs_edition2(sink, pos(b), "this `tls` fact");
        }
        if let Some(a) = t.alpn.first() {
            self.needs_edition2(sink, pos(a), "`tls.alpn`");
        }
        for a in &t.alpn {
            if a.value.is_empty() || a.value.len() > 255 {
                sink.error(
                    pos(a),
                    Code::InvalidValue,
                    "an ALPN protocol name is 1 to 255 bytes (RFC 7301 section 3.1)",
                    "write the name as the vendor gives it, e.g. x-amzn-mqtt-ca or h2",
                );
            }
        }
        let known = ["1.0", "1.1", "1.2", "1.3"];
        if let Some(v) = &t.min_version {
            self.needs_edition2(sink, pos(v), "`tls.min_version`");
            if !known.contains(&v.value.as_str()) {
                sink.error(
                    pos(v),
                    Code::InvalidValue,
                    format!("TLS version `{}` is not one of 1.0, 1.1, 1.2, 1.3", v.value),
                    "write the version as 1.2 or 1.3",
                );
            } else if let Some(low) = t.versions.iter().find(|x| x.as_str() < v.value.as_str()) {
                sink.error(
                    pos(v),
                    Code::InvalidValue,
                    format!("`versions` lists {low}, below min_version {}", v.value),
                    "list only versions the server accepts",
                );
            }
        }
    }

    /// `replaces:` (edition 2) names other flows sharing a mode, none of which replaces a
    /// flow in turn (no chains: what a chain would leave open depends on order).
    pub(super) fn replacements(&self, sink: &mut Sink, raw: &RawProfile, flows: &[Flow]) {
        for (rf, f) in raw.flows.iter().zip(flows) {
            for r in &rf.replaces {
                let targets: Vec<&Flow> = flows
                    .iter()
                    .filter(|o| o.id == r.value && shares_mode(o, f))
                    .collect();
                let problem = if r.value == f.id {
                    Some(format!("flow `{}` replaces itself", f.id))
                } else if targets.is_empty() {
                    Some(format!(
                        "flow `{}` replaces `{}`, which is no flow of the same mode",
                        f.id, r.value
                    ))
                } else if targets.iter().any(|t| !t.replaces.is_empty()) {
                    Some(format!(
                        "flow `{}` replaces `{}`, which replaces flows in turn",
                        f.id, r.value
                    ))
                } else {
                    None
                };
                if let Some(message) = problem {
                    sink.error(
                        pos(r),
                        Code::InvalidReplace,
                        message,
                        "name flows of a shared mode that replace nothing themselves",
                    );
                }
            }
        }
    }
}

pub(super) fn shares_mode(a: &Flow, b: &Flow) -> bool {
    a.modes.is_empty() || b.modes.is_empty() || a.modes.iter().any(|m| b.modes.contains(m))
}

pub(super) fn crypto(sink: &mut Sink, c: &RawCrypto) -> Crypto {
    let versions = c
        .versions
        .iter()
        .filter_map(|v| match v.value {
            1 | 2 => Some(v.value as u8),
            n => {
                sink.error(
                    pos(v),
                    Code::InvalidValue,
                    format!("IKE version {n} does not exist"),
                    "use 1 or 2",
                );
                None
            }
        })
        .collect();
    let dh_groups = c
        .dh_groups
        .iter()
        .filter_map(|g| match u16::try_from(g.value) {
            Ok(v) => Some(v),
            Err(_) => {
                sink.error(
                    pos(g),
                    Code::InvalidValue,
                    format!("DH group {} is not a group number", g.value),
                    "use IANA transform type 4 numbers (14, 19, …)",
                );
                None
            }
        })
        .collect();
    Crypto {
        versions,
        proposals: c.proposals.iter().map(|s| s.value.clone()).collect(),
        encryption: c.encryption.iter().map(|s| s.value.clone()).collect(),
        integrity: c.integrity.iter().map(|s| s.value.clone()).collect(),
        dh_groups,
    }
}
