//! Export messages decoded into records, and records folded into flows.
//!
//! **Records to flows.** An exporter reports each direction of a conversation as its own
//! record (softflowd, most routers), and a long conversation as several records (active
//! timeout). Records of one conversation (protocol and both endpoints; for ICMP echo the
//! request and the reply) merge into one flow. Records do not say who initiated: the sender of
//! the record that started first is taken as the initiator ([`Evidence::RecordStart`]); when
//! only one direction was exported or both started in the same millisecond (softflowd gives
//! both directions one start), the side of an ephemeral port facing a port below 1024 stands
//! in, else the sender of the first record, and matching accepts either direction
//! ([`Evidence::Record`]).
//!
//! The [`Decoder`] hands each message to `netflow_parser`, reads the IANA information
//! elements audit needs (and the RFC 5103 reverse ones) into [`Record`]s, turns
//! sysUpTime-relative times into absolute ones with the header's clock, and feeds a
//! [`Folder`]; nfdump and Suricata readers use the [`Folder`] directly.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use netflow_parser::variable_versions::field_value::FieldValue;
use netflow_parser::variable_versions::ipfix::lookup::{
    IANAIPFixField, IPFixField, ReverseInformationElement,
};
use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
use netflow_parser::{AutoScopedParser, NetflowPacket};
use rustc_hash::FxHashMap;

use super::Notes;
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::time::Nanos;

/// One direction of a conversation, as one record reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: u16,
    pub dport: u16,
    pub proto: Option<u8>,
    pub packets: u64,
    pub bytes: u64,
    /// RFC 5103 biflows: the reverse direction's counts.
    pub rpackets: u64,
    pub rbytes: u64,
    /// Absolute times, milliseconds since the epoch.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Times relative to the exporter's boot (sysUpTime), milliseconds.
    pub start_up: Option<u64>,
    pub end_up: Option<u64>,
    /// ICMP type and code (type × 256 + code).
    pub icmp: Option<u16>,
    /// 1-in-N packet sampling the record announces.
    pub sampling: Option<u64>,
    /// Flows the record stands for (absent: 1).
    pub flows: Option<u64>,
    /// `systemInitTimeMilliseconds`: the exporter's boot, in epoch milliseconds.
    pub boot_ms: Option<i64>,
}

impl Record {
    /// Sets one information element (IANA numbering, shared by v9 for these); `reverse` for
    /// RFC 5103 reverse elements.
    fn set(&mut self, id: u16, reverse: bool, v: &FieldValue) {
        let n = || v.as_u64();
        if reverse {
            match id {
                1 | 85 => self.rbytes = self.rbytes.max(n().unwrap_or(0)),
                2 | 86 => self.rpackets = self.rpackets.max(n().unwrap_or(0)),
                _ => {}
            }
            return;
        }
        let ms = || n().and_then(|x| i64::try_from(x).ok());
        match id {
            1 | 85 => self.bytes = self.bytes.max(n().unwrap_or(0)),
            2 | 86 => self.packets = self.packets.max(n().unwrap_or(0)),
            3 => self.flows = n(),
            4 => self.proto = v.as_u8(),
            7 => self.sport = n().and_then(|x| u16::try_from(x).ok()).unwrap_or(0),
            11 => self.dport = n().and_then(|x| u16::try_from(x).ok()).unwrap_or(0),
            8 | 27 => self.src = addr(v).or(self.src),
            12 | 28 => self.dst = addr(v).or(self.dst),
            21 => self.end_up = n(),
            22 => self.start_up = n(),
            32 | 139 => self.icmp = n().and_then(|x| u16::try_from(x).ok()),
            // samplingInterval, samplerRandomInterval, samplingPacketInterval.
            34 | 50 | 305 => self.sampling = n().filter(|&x| x > 1).or(self.sampling),
            150..=157 => {
                // flowStart/End Seconds, Milliseconds, Microseconds, Nanoseconds: the
                // parser gives each in milliseconds.
                if id.is_multiple_of(2) {
                    self.start_ms = ms();
                } else {
                    self.end_ms = ms();
                }
            }
            160 => self.boot_ms = ms(),
            _ => {}
        }
    }
}

fn addr(v: &FieldValue) -> Option<IpAddr> {
    match v {
        FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
        FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// What an exporter's header says about its clock, for sysUpTime-relative times.
#[derive(Clone, Copy)]
struct Clock {
    /// Export time, epoch milliseconds.
    export_ms: i64,
    /// The exporter's uptime at export (v5, v9), milliseconds.
    uptime: Option<u64>,
    /// The exporter's boot (IPFIX options `systemInitTimeMilliseconds`), epoch milliseconds.
    boot_ms: Option<i64>,
}

impl Clock {
    fn absolute(&self, up: u64) -> Option<i64> {
        let up = i64::try_from(up).ok()?;
        if let Some(b) = self.boot_ms {
            return Some(b + up);
        }
        let now = i64::try_from(self.uptime?).ok()?;
        Some(self.export_ms - (now - up))
    }
}

/// Decodes export messages and folds their records into flows.
pub struct Decoder {
    parser: AutoScopedParser,
    /// Per exporter and observation domain: `systemInitTimeMilliseconds` from options records.
    boots: FxHashMap<(SocketAddr, u32), i64>,
    pub notes: Notes,
    folder: Folder,
    /// When set, records (times made absolute) are kept here instead of folded: the
    /// collector's `--to kafka://` forwards them one by one (crates/kafka).
    pub tap: Option<Vec<Record>>,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder {
            parser: AutoScopedParser::new(),
            boots: FxHashMap::default(),
            notes: Notes::default(),
            folder: Folder::default(),
            tap: None,
        }
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes one message from `exporter` (files: the unspecified address); returns the
    /// parser's error, if any (records decoded before it are kept).
    pub fn message(&mut self, exporter: SocketAddr, msg: &[u8]) -> Result<(), String> {
        let result = self.parser.parse_from_source(exporter, msg);
        for p in &result.packets {
            self.packet(exporter, p);
        }
        match result.error {
            Some(e) => Err(format!("{e}")),
            None => Ok(()),
        }
    }

    fn packet(&mut self, exporter: SocketAddr, p: &NetflowPacket) {
        match p {
            NetflowPacket::V5(v5) => {
                let h = &v5.header;
                let clock = Clock {
                    export_ms: i64::from(h.unix_secs) * 1000 + i64::from(h.unix_nsecs / 1_000_000),
                    uptime: Some(u64::from(h.sys_up_time)),
                    boot_ms: None,
                };
                // The low 14 bits: the interval; the top 2: the mode.
                let sampling = u64::from(h.sampling_interval & 0x3fff);
                for f in &v5.flowsets {
                    let r = Record {
                        src: Some(IpAddr::V4(f.src_addr)),
                        dst: Some(IpAddr::V4(f.dst_addr)),
                        sport: f.src_port,
                        dport: f.dst_port,
                        proto: Some(f.protocol_number),
                        packets: u64::from(f.d_pkts),
                        bytes: u64::from(f.d_octets),
                        start_up: Some(u64::from(f.first)),
                        end_up: Some(u64::from(f.last)),
                        sampling: (sampling > 1).then_some(sampling),
                        ..Record::default()
                    };
                    self.record(r, &clock);
                }
            }
            NetflowPacket::V9(v9) => {
                let h = &v9.header;
                let clock = Clock {
                    export_ms: i64::from(h.unix_secs) * 1000,
                    uptime: Some(u64::from(h.sys_up_time)),
                    boot_ms: None,
                };
                for fs in &v9.flowsets {
                    match &fs.body {
                        V9Body::Data(d) => {
                            for rec in &d.fields {
                                let mut r = Record::default();
                                for (f, v) in rec {
                                    r.set(u16::from(*f), false, v);
                                }
                                self.record(r, &clock);
                            }
                        }
                        V9Body::OptionsData(o) => {
                            for rec in &o.fields {
                                let mut r = Record::default();
                                for (f, v) in &rec.options_fields {
                                    r.set(u16::from(*f), false, v);
                                }
                                if let Some(s) = r.sampling {
                                    self.notes.sampled(s);
                                }
                            }
                        }
                        V9Body::NoTemplate(_) => self.notes.no_template += 1,
                        _ => {}
                    }
                }
            }
            NetflowPacket::IPFix(ipfix) => {
                let h = &ipfix.header;
                let domain = (exporter, h.observation_domain_id);
                let export_ms = i64::from(h.export_time) * 1000;
                // Options first: a message may carry the boot time and the records it dates.
                for fs in &ipfix.flowsets {
                    if let IpfixBody::OptionsData(o) = &fs.body {
                        for rec in &o.fields {
                            let mut r = Record::default();
                            for (f, v) in rec {
                                if let Some((id, rev)) = ipfix_id(f) {
                                    r.set(id, rev, v);
                                }
                            }
                            if let Some(s) = r.sampling {
                                self.notes.sampled(s);
                            }
                            if let Some(b) = r.boot_ms {
                                self.boots.insert(domain, b);
                            }
                        }
                    }
                }
                let clock = Clock {
                    export_ms,
                    uptime: None,
                    boot_ms: self.boots.get(&domain).copied(),
                };
                for fs in &ipfix.flowsets {
                    match &fs.body {
                        IpfixBody::Data(d) => {
                            for rec in &d.fields {
                                let mut r = Record::default();
                                for (f, v) in rec {
                                    if let Some((id, rev)) = ipfix_id(f) {
                                        r.set(id, rev, v);
                                    }
                                }
                                self.record(r, &clock);
                            }
                        }
                        IpfixBody::V9Data(d) => {
                            for rec in &d.fields {
                                let mut r = Record::default();
                                for (f, v) in rec {
                                    r.set(u16::from(*f), false, v);
                                }
                                self.record(r, &clock);
                            }
                        }
                        IpfixBody::NoTemplate(_) => self.notes.no_template += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, mut r: Record, clock: &Clock) {
        self.notes.records += 1;
        if let Some(s) = r.sampling {
            self.notes.sampled(s);
        }
        if r.flows.is_some_and(|n| n > 1) {
            self.notes.aggregated += 1;
        }
        let clock = Clock {
            boot_ms: r.boot_ms.or(clock.boot_ms),
            ..*clock
        };
        if r.start_ms.is_none() {
            r.start_ms = r.start_up.and_then(|u| clock.absolute(u));
        }
        if r.end_ms.is_none() {
            r.end_ms = r.end_up.and_then(|u| clock.absolute(u));
        }
        if let Some(t) = &mut self.tap {
            t.push(r);
            return;
        }
        self.folder.add(&r);
    }

    /// The flows, in order of their first record; the notes.
    pub fn finish(self) -> (Vec<ObservedFlow>, Notes) {
        (self.folder.finish(), self.notes)
    }

    /// Flows held so far.
    pub fn len(&self) -> usize {
        self.folder.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands over the flows folded so far (live mode: a period's flows), keeping the
    /// templates and notes.
    pub fn take_flows(&mut self) -> Vec<ObservedFlow> {
        std::mem::take(&mut self.folder).finish()
    }
}

/// The IANA elements [`Record::set`] reads.
const WANTED: [u16; 27] = [
    1, 2, 3, 4, 7, 8, 11, 12, 21, 22, 27, 28, 32, 34, 50, 85, 86, 139, 150, 151, 152, 153, 154,
    155, 156, 157, 160,
];
/// The RFC 5103 reverse elements it reads.
const WANTED_REVERSE: [u16; 4] = [1, 2, 85, 86];

/// The crate's field enums, by element id (they convert from ids, not back).
struct Ids {
    iana: Vec<(IANAIPFixField, u16)>,
    reverse: Vec<(ReverseInformationElement, u16)>,
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| Ids {
        iana: WANTED
            .iter()
            .chain(&[305])
            .map(|&n| (IANAIPFixField::from(n), n))
            .collect(),
        reverse: WANTED_REVERSE
            .iter()
            .map(|&n| (ReverseInformationElement::from(n), n))
            .collect(),
    })
}

/// IANA element id of an IPFIX field, and whether it is an RFC 5103 reverse element;
/// `None` for elements audit does not read.
fn ipfix_id(f: &IPFixField) -> Option<(u16, bool)> {
    match f {
        IPFixField::IANA(IANAIPFixField::Unknown(n)) => Some((*n, false)),
        IPFixField::IANA(x) => ids()
            .iana
            .iter()
            .find(|(k, _)| k == x)
            .map(|(_, n)| (*n, false)),
        IPFixField::ReverseInformationElement(x) => ids()
            .reverse
            .iter()
            .find(|(k, _)| k == x)
            .map(|(_, n)| (*n, true)),
        _ => None,
    }
}

/// The conversation a record belongs to: protocol and both endpoints, lower first.
type ConvKey = (u8, IpAddr, u16, IpAddr, u16);

/// One conversation being folded.
struct Conv {
    flow: ObservedFlow,
    /// Earliest start of each direction's records, (first-record sender, the other).
    start: [Option<i64>; 2],
    /// Both directions reported.
    both: bool,
}

/// Folds records of one conversation into one flow.
#[derive(Default)]
pub struct Folder {
    convs: FxHashMap<ConvKey, usize>,
    order: Vec<Conv>,
}

/// ICMP types that answer another: echo reply (0, 129), timestamp reply (14),
/// address mask reply (18).
fn icmp_answer(v6: bool, t: u8) -> Option<u8> {
    match (v6, t) {
        (false, 0) => Some(8),
        (false, 14) => Some(13),
        (false, 18) => Some(17),
        (true, 129) => Some(128),
        _ => None,
    }
}

impl Folder {
    pub fn add(&mut self, r: &Record) {
        let (Some(src), Some(dst), Some(p)) = (r.src, r.dst, r.proto) else {
            return;
        };
        let icmp = matches!(p, proto::ICMP | proto::ICMPV6);
        // ICMP: type and code from their element, else (v5, softflowd) from the destination
        // port, where exporters put type × 256 + code.
        let (sport, dport, icmp_type) = if icmp {
            let tc = r.icmp.unwrap_or(r.dport);
            (0, 0, Some((tc >> 8) as u8))
        } else {
            (r.sport, r.dport, None)
        };
        // ICMP: an answer's sender is the responder of its request's conversation.
        let (sender, receiver, icmp_type) = match icmp_type {
            Some(t) => match icmp_answer(p == proto::ICMPV6, t) {
                Some(req) => ((dst, 0), (src, 0), Some(req)),
                None => ((src, 0), (dst, 0), Some(t)),
            },
            None => ((src, sport), (dst, dport), None),
        };
        let lo_first = sender <= receiver;
        let key: ConvKey = if lo_first {
            (p, sender.0, sender.1, receiver.0, receiver.1)
        } else {
            (p, receiver.0, receiver.1, sender.0, sender.1)
        };
        let key = match icmp_type {
            // Different ICMP types between one pair are different flows; fold the type into
            // the key's port slot.
            Some(t) => (key.0, key.1, u16::from(t), key.3, 0),
            None => key,
        };
        let i = *self.convs.entry(key).or_insert_with(|| {
            let mut flow = ObservedFlow::new(p, sender, receiver);
            flow.evidence = Evidence::Record;
            flow.icmp_type = icmp_type;
            self.order.push(Conv {
                flow,
                start: [None, None],
                both: false,
            });
            self.order.len() - 1
        });
        let c = &mut self.order[i];
        // Direction of this record: 0 when its sender is the conversation's first sender
        // (for ICMP, the requester; an answer's sender is the other side).
        let dir = if icmp {
            usize::from(src != c.flow.initiator)
        } else {
            usize::from((src, sport) != (c.flow.initiator, c.flow.iport))
        };
        if dir == 1 {
            c.both = true;
        }
        c.flow.packets[dir] = c.flow.packets[dir].saturating_add(r.packets);
        c.flow.bytes[dir] = c.flow.bytes[dir].saturating_add(r.bytes);
        c.flow.packets[1 - dir] = c.flow.packets[1 - dir].saturating_add(r.rpackets);
        c.flow.bytes[1 - dir] = c.flow.bytes[1 - dir].saturating_add(r.rbytes);
        if r.rpackets > 0 {
            c.both = true;
        }
        let ns = |ms: i64| -> Nanos { ms.saturating_mul(1_000_000) };
        if let Some(s) = r.start_ms {
            c.start[dir] = Some(c.start[dir].map_or(s, |x| x.min(s)));
            c.flow.first = Some(c.flow.first.map_or(ns(s), |x| x.min(ns(s))));
        }
        if let Some(e) = r.end_ms.or(r.start_ms) {
            c.flow.last = Some(c.flow.last.map_or(ns(e), |x| x.max(ns(e))));
        }
    }

    /// The flows, in order of their first record. ICMP errors sent back to a conversation's
    /// initiator by its responder count on that conversation (`related`), as a capture's
    /// errors quoting a flow do: a record does not quote the packet, the address pair stands
    /// in.
    pub fn finish(self) -> Vec<ObservedFlow> {
        let mut flows: Vec<ObservedFlow> = self
            .order
            .into_iter()
            .map(|mut c| {
                match c.start {
                    [Some(a), Some(b)] if c.both && a != b => {
                        if b < a && c.flow.icmp_type.is_none() {
                            flip(&mut c.flow);
                        }
                        c.flow.evidence = Evidence::RecordStart;
                    }
                    _ => {
                        // No order to go by: a service port (below 1024) facing an
                        // ephemeral one names the responder. Still uncertain.
                        let f = &c.flow;
                        if f.icmp_type.is_none() && f.iport < 1024 && f.rport >= 1024 {
                            flip(&mut c.flow);
                        }
                    }
                }
                if c.flow.icmp_type.is_some() && c.both {
                    // Request and answer seen: the requester asked.
                    c.flow.evidence = Evidence::RecordStart;
                }
                c.flow
            })
            .collect();
        let mut pairs: FxHashMap<(IpAddr, IpAddr), usize> = FxHashMap::default();
        for (i, f) in flows.iter().enumerate() {
            if f.icmp_type.is_none() {
                pairs.entry((f.initiator, f.responder)).or_insert(i);
            }
        }
        let mut drop = vec![false; flows.len()];
        for i in 0..flows.len() {
            let f = &flows[i];
            let error = match (f.proto, f.icmp_type) {
                (proto::ICMP, Some(t)) => matches!(t, 3 | 4 | 5 | 11 | 12),
                (proto::ICMPV6, Some(t)) => (1..=4).contains(&t),
                _ => false,
            };
            if !error {
                continue;
            }
            if let Some(&j) = pairs.get(&(f.responder, f.initiator)) {
                let n = f.total_packets();
                flows[j].related = flows[j].related.saturating_add(n);
                drop[i] = true;
            }
        }
        let mut keep = drop.into_iter().map(|d| !d);
        flows.retain(|_| keep.next().unwrap_or(true));
        flows
    }
}

fn flip(f: &mut ObservedFlow) {
    std::mem::swap(&mut f.initiator, &mut f.responder);
    std::mem::swap(&mut f.iport, &mut f.rport);
    f.packets.swap(0, 1);
    f.bytes.swap(0, 1);
}
