//! The profile's sections beside its flows: alternatives, listens and notes.

use crate::diag::{Code, Sink};
use crate::document::pos;
use crate::profile::*;
use crate::raw::*;

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn alternative(
        &self,
        sink: &mut Sink,
        a: &RawAlternative,
        raw: &RawProfile,
        flows: &[Flow],
    ) -> Alternative {
        if a.flows.value.is_empty() {
            sink.error(
                pos(&a.flows),
                Code::EmptyAlternative,
                format!("alternative group `{}` lists no flow", a.id.value),
                "list the flows of which at least one must work",
            );
        }
        let policy = match a.policy.as_ref() {
            None => ChoicePolicy::Any,
            Some(w) => {
                self.needs_edition2(sink, pos(w), "a choice group's `policy`");
                match w.value.as_str() {
                    "any" => ChoicePolicy::Any,
                    "one" => ChoicePolicy::One,
                    "ordered" => ChoicePolicy::Ordered,
                    other => {
                        sink.error(
                            pos(w),
                            Code::UnknownValue,
                            format!("choice policy `{other}` is not known"),
                            "use any (at least one), one (exactly one, the site picks) or ordered (fallbacks in the order listed)",
                        );
                        ChoicePolicy::Any
                    }
                }
            }
        };
        let mut known = true;
        for fl in &a.flows.value {
            if !raw.flows.iter().any(|f| f.id.value == fl.value) {
                known = false;
                sink.error(
                    pos(fl),
                    Code::UnknownFlow,
                    format!(
                        "alternative group `{}` names flow `{}`, which does not exist",
                        a.id.value, fl.value
                    ),
                    "use a flow id",
                );
            }
        }
        if known && !a.flows.value.is_empty() {
            self.alternative_modes(sink, a, flows);
        }
        Alternative {
            id: a.id.value.clone(),
            policy,
            description: a.description.clone(),
            flows: a.flows.value.iter().map(|f| f.value.clone()).collect(),
            source: self.cite(sink, &a.source),
        }
    }

    /// A group is checked per mode: in each mode where any of its flows exists, it must hold
    /// two or more (a one-flow group offers no choice: a warning naming the mode).
    fn alternative_modes(&self, sink: &mut Sink, a: &RawAlternative, flows: &[Flow]) {
        let modes: Vec<Option<&str>> = if self.modes.is_empty() {
            vec![None]
        } else {
            self.modes.iter().map(|m| Some(m.as_str())).collect()
        };
        for mode in modes {
            let here: Vec<&str> = a
                .flows
                .value
                .iter()
                .filter(|id| flows.iter().any(|f| f.id == id.value && f.in_mode(mode)))
                .map(|id| id.value.as_str())
                .collect();
            if here.len() == 1 {
                let m = mode.map(|m| format!(" in mode `{m}`")).unwrap_or_default();
                sink.warning(
                    pos(&a.flows),
                    Code::SingleFlowChoice,
                    format!(
                        "alternative group `{}` holds only flow `{}`{m}: there is nothing to choose from",
                        a.id.value, here[0]
                    ),
                    "list two or more flows of that mode, or limit the flows' `modes` so the group is empty there",
                );
            }
        }
    }

    pub(super) fn listens(&self, sink: &mut Sink, raw: &RawProfile) -> Listens {
        match &raw.listens.value {
            RawListens::Word(w) if w == "none" => Listens::Nothing,
            RawListens::Word(w) if w == "unspecified" => Listens::Unspecified,
            RawListens::Word(w) => {
                sink.error(
                    pos(&raw.listens),
                    Code::UnknownValue,
                    format!("listens `{w}` is not known"),
                    "write `none`, `unspecified` or a list of entries",
                );
                Listens::Nothing
            }
            RawListens::List(l) => Listens::Entries(
                l.iter()
                    .map(|e| {
                        let protocol = self.protocol(sink, &e.protocol);
                        let ports = match &e.ports.value {
                            RawPorts::One(Scalar::Str(s)) if s == "none" => ListenPorts::Closed,
                            _ if !protocol.has_ports() => {
                                sink.error(
                                    pos(&e.ports),
                                    Code::PortsNotAllowed,
                                    format!("protocol {protocol} has no ports"),
                                    "listen entries are for tcp, udp or sctp",
                                );
                                ListenPorts::Closed
                            }
                            _ => ListenPorts::Ports(self.ports(sink, &e.ports)),
                        };
                        if let Some(fl) = &e.flow {
                            if !raw.flows.iter().any(|f| f.id.value == fl.value) {
                                sink.error(
                                    pos(fl),
                                    Code::UnknownFlow,
                                    format!(
                                        "listen entry names flow `{}`, which does not exist",
                                        fl.value
                                    ),
                                    "use a flow id",
                                );
                            }
                        }
                        let bind = self.bind(sink, e, &ports);
                        Listen {
                            protocol,
                            ports,
                            flow: e.flow.as_ref().map(|f| f.value.clone()),
                            bind,
                            description: e.description.clone(),
                            source: self.cite(sink, &e.source),
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// A listen entry's `bind:` (edition 2): `loopback` only. A loopback-only listener is not
    /// reached from the network, so it names no flow (a flow would open its port) and states
    /// ports (`ports: none` says nothing listens at all).
    fn bind(&self, sink: &mut Sink, e: &RawListen, ports: &ListenPorts) -> Option<Bind> {
        let b = e.bind.as_ref()?;
        self.needs_edition2(sink, pos(b), "`bind:` on a listen entry");
        if b.value != "loopback" {
            sink.error(
                pos(b),
                Code::UnknownValue,
                format!("bind `{}` is not known", b.value),
                "write `bind: loopback` for a service the source says listens on loopback only; leave `bind` out for every address",
            );
            return None;
        }
        if let Some(fl) = &e.flow {
            sink.error(
                pos(fl),
                Code::InvalidValue,
                format!(
                    "a loopback-only listener is reached by no flow, yet this one names flow `{}`",
                    fl.value
                ),
                "remove `flow:` (the firewall opens nothing for a loopback listener), or `bind: loopback` if peers on the network reach it",
            );
        }
        if matches!(ports, ListenPorts::Closed) {
            sink.error(
                pos(&e.ports),
                Code::InvalidValue,
                "a loopback-only listener needs the ports it listens on, not `none`",
                "write the ports the source names",
            );
        }
        Some(Bind::Loopback)
    }

    /// A source's date, revision and perspective (edition 2).
    pub(super) fn source_facts(&self, sink: &mut Sink, s: &RawSource) {
        if let Some(d) = &s.date {
            self.needs_edition2(sink, pos(d), "a source's `date`");
            if !is_date(&d.value) {
                sink.error(
                    pos(d),
                    Code::InvalidValue,
                    format!("`{}` is not a date YYYY, YYYY-MM or YYYY-MM-DD", d.value),
                    "write the document's date as ISO 8601, e.g. 2024-05 or 2024-05-17",
                );
            }
        }
        if let Some(r) = &s.revision {
            self.needs_edition2(sink, pos(r), "a source's `revision`");
        }
        if let Some(w) = &s.perspective {
            self.needs_edition2(sink, pos(w), "a source's `perspective`");
            if !Perspective::ALL.iter().any(|x| x.name() == w.value) {
                sink.error(
                    pos(w),
                    Code::UnknownValue,
                    format!("perspective `{}` is not known", w.value),
                    "use device, controller, console or server",
                );
            }
        }
    }

    /// A requirement that is not a flow (edition 2): a known kind, cited, each detail only
    /// where its kind takes it.
    pub(super) fn requirement(&self, sink: &mut Sink, r: &RawRequirement) -> Requirement {
        self.needs_edition2(sink, pos(&r.kind), "`requirements`");
        let kind = RequirementKind::ALL
            .into_iter()
            .find(|k| k.name() == r.kind.value);
        if kind.is_none() {
            sink.error(
                pos(&r.kind),
                Code::UnknownValue,
                format!("requirement kind `{}` is not known", r.kind.value),
                "use addressing, link, credentials or dns",
            );
        }
        let kind = kind.unwrap_or(RequirementKind::Link);
        if r.source.0.is_empty() {
            sink.error(
                pos(&r.kind),
                Code::MissingSource,
                "a requirement without `source`",
                "cite where the vendor states it: {doc: ..., ref: ...}",
            );
        }
        let misplaced = |sink: &mut Sink, at, what: &str, owner: &str| {
            sink.error(
                at,
                Code::InvalidValue,
                format!("`{what}` belongs to a requirement of kind {owner}"),
                format!("move it to a `kind: {owner}` requirement"),
            );
        };
        let mut dhcp_options = Vec::new();
        for o in &r.dhcp_options {
            if kind != RequirementKind::Addressing {
                misplaced(sink, pos(o), "dhcp_options", "addressing");
            }
            match u8::try_from(o.value) {
                Ok(v) if (1..=254).contains(&v) => dhcp_options.push(v),
                _ => sink.error(
                    pos(o),
                    Code::InvalidValue,
                    format!("DHCP option {} is outside 1..254 (RFC 2132)", o.value),
                    "use the option's code: 3 router, 6 DNS, 42 NTP",
                ),
            }
        }
        for n in &r.names {
            if kind != RequirementKind::Dns {
                misplaced(sink, pos(n), "names", "dns");
            }
            if !crate::syntax::is_hostname(&n.value) {
                sink.error(
                    pos(n),
                    Code::InvalidHostname,
                    format!("`{}` is not a hostname", n.value),
                    "write the name that must resolve",
                );
            }
        }
        let mut resolvers = Vec::new();
        for a in &r.resolvers {
            if kind != RequirementKind::Dns {
                misplaced(sink, pos(a), "resolvers", "dns");
            }
            match a.value.parse() {
                Ok(ip) => resolvers.push(ip),
                Err(_) => sink.error(
                    pos(a),
                    Code::InvalidAddress,
                    format!("resolver `{}` is not an address", a.value),
                    "write the address the device queries, e.g. 8.8.8.8",
                ),
            }
        }
        Requirement {
            kind,
            text: r.text.clone(),
            dhcp_options,
            names: r.names.iter().map(|n| n.value.clone()).collect(),
            resolvers,
            source: self.cite(sink, &r.source),
        }
    }

    pub(super) fn note(&self, sink: &mut Sink, n: &RawNote) -> Note {
        let topic = match n.topic.value.as_str() {
            "dns-ttl" => NoteTopic::DnsTtl,
            "nat" => NoteTopic::Nat,
            "tls-inspection" => NoteTopic::TlsInspection,
            "keepalive" => NoteTopic::Keepalive,
            "contradiction" => {
                self.needs_edition2(sink, pos(&n.topic), "the note topic `contradiction`");
                let docs: std::collections::BTreeSet<&str> =
                    n.source.0.iter().map(|c| c.doc.value.as_str()).collect();
                if docs.len() < 2 {
                    sink.error(
                        pos(&n.topic),
                        Code::MissingSource,
                        "a contradiction cites at least two different sources",
                        "cite each side: source: [{doc: a, ref: ...}, {doc: b, ref: ...}]",
                    );
                }
                NoteTopic::Contradiction
            }
            "other" => NoteTopic::Other,
            other => {
                sink.error(
                    pos(&n.topic),
                    Code::UnknownValue,
                    format!("note topic `{other}` is not known"),
                    "use dns-ttl, nat, tls-inspection, keepalive, contradiction or other",
                );
                NoteTopic::Other
            }
        };
        Note {
            topic,
            text: n.text.clone(),
            source: self.cite(sink, &n.source),
        }
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with a month 1..12 and a day 1..31.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let num = |p: &str, len: usize, lo: u32, hi: u32| {
        p.len() == len
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v))
    };
    match parts.as_slice() {
        [y] => num(y, 4, 1, 9999),
        [y, m] => num(y, 4, 1, 9999) && num(m, 2, 1, 12),
        [y, m, d] => num(y, 4, 1, 9999) && num(m, 2, 1, 12) && num(d, 2, 1, 31),
        _ => false,
    }
}
