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
    ) -> Alternative {
        if a.flows.value.is_empty() {
            sink.error(
                pos(&a.flows),
                Code::EmptyAlternative,
                format!("alternative group `{}` lists no flow", a.id.value),
                "list the flows of which at least one must work",
            );
        }
        for fl in &a.flows.value {
            if !raw.flows.iter().any(|f| f.id.value == fl.value) {
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
        Alternative {
            id: a.id.value.clone(),
            description: a.description.clone(),
            flows: a.flows.value.iter().map(|f| f.value.clone()).collect(),
            source: self.cite(sink, &a.source),
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
