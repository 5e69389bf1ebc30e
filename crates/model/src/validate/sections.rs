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
                        Listen {
                            protocol,
                            ports,
                            flow: e.flow.as_ref().map(|f| f.value.clone()),
                            description: e.description.clone(),
                            source: self.cite(sink, &e.source),
                        }
                    })
                    .collect(),
            ),
        }
    }

    pub(super) fn note(&self, sink: &mut Sink, n: &RawNote) -> Note {
        let topic = match n.topic.value.as_str() {
            "dns-ttl" => NoteTopic::DnsTtl,
            "nat" => NoteTopic::Nat,
            "tls-inspection" => NoteTopic::TlsInspection,
            "keepalive" => NoteTopic::Keepalive,
            "other" => NoteTopic::Other,
            other => {
                sink.error(
                    pos(&n.topic),
                    Code::UnknownValue,
                    format!("note topic `{other}` is not known"),
                    "use dns-ttl, nat, tls-inspection, keepalive or other",
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
