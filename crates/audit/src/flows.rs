//! Packets → flows. A flow is one conversation: a 5-tuple for TCP, UDP and SCTP, an echo
//! identifier for ICMP echo, an SPI for ESP (each direction of an IPsec SA pair is its own
//! flow, and the pair shares the initiator of its first SA), and the address pair for other
//! protocols. Who initiated: the sender of the TCP SYN (or the receiver of a SYN-ACK when the
//! SYN was not captured), else the sender of the first packet. ICMP errors that quote a known
//! flow are counted on that flow (`related`), as connection tracking would relate them.
//!
//! Memory grows with the number of flows, never with packets: one table entry per flow.
//!
//! Sharding (`audit --jobs`): [`shard_of`] names, for a packet, the one shard whose table sees
//! every packet of its flow: the hash of the key both directions share (of the address pair for
//! ESP, whose two SAs share an initiator; of the quoted flow's key for ICMP errors, which are
//! counted on it). A shard's table is told the packet's place in the input
//! ([`FlowTable::observe_seq`]), so flows of all shards sort back into one order; the ICMP
//! errors that quote no flow of the shard are set aside ([`FlowTable::orphans`]) and counted
//! afterwards in input order, as one table would have.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::decode::{self, proto, tcp, IcmpKind, Packet};
use crate::time::Nanos;

/// What the initiator was told by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// The TCP SYN was captured.
    Syn,
    /// Only the SYN-ACK was: its receiver initiated.
    SynAck,
    /// A TCP connection already open when the capture started: the initiator is unknown, and
    /// the first packet's sender stands in.
    Midstream,
    /// The first packet's sender (UDP and portless protocols).
    FirstPacket,
    /// The echo request's sender.
    EchoRequest,
    /// Only the echo reply was captured: its receiver asked.
    EchoReply,
    /// An ESP SA whose reverse SA was seen first: the pair's initiator.
    SaPair,
    /// A flow log says so (conntrack's original direction, Zeek's originator).
    Log,
    /// Flow records (IPFIX, NetFlow, nfdump, Suricata) of both directions: the sender of the
    /// one that started first.
    RecordStart,
    /// Flow records that do not tell (one direction exported, or both started in the same
    /// millisecond): the sender of the first record stands in, as for `Midstream`.
    Record,
}

impl Evidence {
    /// Whether the initiator is a guess (matching then accepts either direction).
    pub fn uncertain(self) -> bool {
        matches!(self, Evidence::Midstream | Evidence::Record)
    }
}

/// One observed flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedFlow {
    pub proto: u8,
    pub initiator: IpAddr,
    /// The initiator's port (0 for portless protocols).
    pub iport: u16,
    pub responder: IpAddr,
    /// The responder's port: the service port.
    pub rport: u16,
    /// ICMP: the initiator's message type (echo request for echo pairs).
    pub icmp_type: Option<u8>,
    /// ESP: the security parameter index.
    pub spi: Option<u32>,
    pub vlan: Option<u16>,
    /// Packets sent by the initiator, by the responder.
    pub packets: [u64; 2],
    /// IP bytes sent by the initiator, by the responder.
    pub bytes: [u64; 2],
    /// First and last packet; `None` when the input has no times (`conntrack -L`).
    pub first: Option<Nanos>,
    pub last: Option<Nanos>,
    pub evidence: Evidence,
    /// ICMP errors quoting this flow.
    pub related: u64,
    /// For flows read from nftables log lines: the device group the log prefix names.
    pub logged_group: Option<String>,
    /// TCP from a capture: the responder sent a SYN-ACK (the handshake was answered).
    pub answered: bool,
}

impl ObservedFlow {
    /// A flow with no packets counted yet.
    pub fn new(proto: u8, initiator: (IpAddr, u16), responder: (IpAddr, u16)) -> ObservedFlow {
        ObservedFlow {
            proto,
            initiator: initiator.0,
            iport: initiator.1,
            responder: responder.0,
            rport: responder.1,
            icmp_type: None,
            spi: None,
            vlan: None,
            packets: [0; 2],
            bytes: [0; 2],
            first: None,
            last: None,
            evidence: Evidence::FirstPacket,
            related: 0,
            logged_group: None,
            answered: false,
        }
    }

    pub fn total_packets(&self) -> u64 {
        self.packets[0].saturating_add(self.packets[1])
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes[0].saturating_add(self.bytes[1])
    }

    /// The ICMP type's nftables name.
    pub fn icmp_type_name(&self) -> Option<&'static str> {
        let t = self.icmp_type?;
        decode::icmp_type_name(self.proto == proto::ICMPV6, t)
    }
}

/// An address as a number, IPv4 in the low 32 bits.
fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The hash key: addresses and ports in canonical order (lower first), except ESP whose key is
/// directional (source first), so that both directions of a conversation find one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    a: u128,
    b: u128,
    pa: u16,
    pb: u16,
    id: u32,
    proto: u8,
    v6: bool,
}

impl Key {
    /// One well-mixed word: the hash is per packet, and hashbrown reads its bucket from the
    /// low bits and a tag from the top seven, so every input bit must reach both (with Fx
    /// over separate words the tags were blind to the ports: every flow of an address pair
    /// shared one, and each probe compared whole keys).
    #[inline]
    fn hash(&self) -> u64 {
        let fold = |x: u128| (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
        let ports = u64::from(self.pa) << 48
            | u64::from(self.pb) << 32
            | u64::from(self.id) ^ u64::from(self.proto) << 40 ^ u64::from(self.v6) << 56;
        let z = finalize(
            fold(self.a).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ fold(self.b).rotate_left(32) ^ ports,
        );
        spread((z >> 32) as u32)
    }
}

/// A 32-bit hash as the 64 bits hashbrown takes: twice over, so that the bucket (low bits)
/// and the tag (top seven bits) both come from it. The flow tables keep the 32 bits in their
/// slots ([`Slot`]) and grow and sweep from them, without reading the entries (a cache miss
/// each). The top seven bits and the low 25 are apart up to 2^25 buckets.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h) * 0x1_0000_0001
}

/// A flow table's slot: the entry's index and its key's hash ([`spread`]).
#[derive(Clone, Copy, Debug)]
struct Slot {
    i: u32,
    h: u32,
}

impl Slot {
    #[inline]
    fn hash(&self) -> u64 {
        spread(self.h)
    }
}

/// The splitmix64 finaliser: every input bit reaches every output bit.
#[inline]
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const ST_FIN_I: u8 = 1;
const ST_FIN_R: u8 = 2;
const ST_RST: u8 = 4;
/// A SYN without ACK was counted on the flow (it may have reopened or turned it: a part's
/// flow that saw one is continued by reading it again, not by adding its counts).
const ST_SYN: u8 = 8;
/// A SYN-ACK was counted on the flow from the key's side `a`, from its side `b` (sides of
/// the key, not of the flow: the flow's initiator may turn).
const ST_SYNACK_A: u8 = 16;
const ST_SYNACK_B: u8 = 32;

/// A live flow: what a packet reads and writes, 128 bytes aligned to 128, so that a packet
/// touches one pair of adjacent cache lines (which the hardware fetches together). The
/// addresses, ports and SPI the flow reports are the key's, told apart by `init_is_a`; the
/// [`ObservedFlow`] is built when the table is read out. (Entries that held an `ObservedFlow`
/// took 224 bytes across up to five lines; this one is 128. The gain measured on
/// `bench/audit-few.sh`'s capture was small, 2–4 % of one core's CPU time: the entry's line is
/// still a cache miss per packet on a 100,000-flow table, as are the hash table's control
/// bytes and slot before it. Reading a few packets ahead and looking their flows up early, so
/// that the misses overlap, was tried and made one core 20 % slower: the early look-ups stall
/// as the late ones did.)
#[repr(align(128))]
struct Entry {
    key: Key,
    /// Packets sent by the initiator, by the responder.
    packets: [u64; 2],
    /// IP bytes sent by the initiator, by the responder.
    bytes: [u64; 2],
    first: Nanos,
    last: Nanos,
    /// Order of creation, for the output.
    seq: u64,
    /// ICMP errors quoting this flow (saturating).
    related: u32,
    /// The table's packet count when the flow was last touched: flows idle for long move out
    /// of the hash table packets probe first ([`FlowTable::sweep`]).
    tick: u32,
    /// The first packet's VLAN.
    vlan: Option<u16>,
    /// ICMP: the initiator's message type.
    icmp_type: Option<u8>,
    evidence: Evidence,
    /// Whether the initiator is the key's `a` side.
    init_is_a: bool,
    /// TCP: the responder sent a SYN-ACK.
    answered: bool,
    state: u8,
    /// The number (`seq`, as far as it fits) of the last packet counted on the flow or
    /// related to it: how far a part read apart must be read again to continue the flow in
    /// the table before it ([`FlowTable::seam`]).
    last_rec: u32,
}

/// Whether a slot of the hash tables points at the entry of `key`, whose hash is `h`.
#[inline]
fn holds<'a>(
    entries: &'a [Option<Entry>],
    key: &'a Key,
    h: u64,
) -> impl Fn(&Slot) -> bool + Copy + 'a {
    let h = h as u32;
    move |s| {
        s.h == h
            && entries
                .get(s.i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| e.key == *key)
    }
}

/// Packets between two sweeps of idle flows out of the first hash table.
const SWEEP: u32 = 1 << 15;
/// Packets after which an untouched flow is idle.
const IDLE: u32 = 1 << 16;

impl Default for FlowTable {
    fn default() -> FlowTable {
        FlowTable {
            live: hashbrown::HashTable::new(),
            cold: hashbrown::HashTable::new(),
            tick: 0,
            sweep: SWEEP,
            idle: IDLE,
            entries: Vec::new(),
            done: Vec::new(),
            seq: 0,
            esp_pairs: FxHashMap::default(),
            orphans: None,
            trace: None,
            trace_limit: 0,
        }
    }
}

/// An address from its number (IPv4 in the low 32 bits).
fn addr(n: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(n.into())
    } else {
        IpAddr::V4((n as u32).into())
    }
}

impl Entry {
    /// Continues this flow with `later`, the same key's flow in a part read apart (numbered
    /// after `base`), by adding its counts, when counting its packets here would do just that:
    /// none of them was a SYN without ACK (which may reopen or turn a flow). Every other field
    /// a packet touches adds up in any order: packets and bytes per side (the part's sides
    /// matched to this flow's), the first and last times, the FIN and RST flags, a SYN-ACK
    /// from this flow's responder (kept by the key's side: the part's flow may have taken the
    /// other side for the initiator), ICMP errors related, the last packet's number. `false`:
    /// nothing changed.
    fn adds_up(&mut self, later: &Entry, base: u64) -> bool {
        if later.state & ST_SYN != 0 {
            return false;
        }
        // The part's sides as this flow's: the same, or turned.
        let same = later.init_is_a == self.init_is_a;
        for d in 0..2 {
            let from = if same { d } else { 1 - d };
            self.packets[d] = self.packets[d].saturating_add(later.packets[from]);
            self.bytes[d] = self.bytes[d].saturating_add(later.bytes[from]);
        }
        let l = later;
        let state = if same {
            l.state
        } else {
            (l.state & (ST_RST | ST_SYNACK_A | ST_SYNACK_B))
                | ((l.state & ST_FIN_I) << 1)
                | ((l.state & ST_FIN_R) >> 1)
        };
        self.first = self.first.min(l.first);
        self.last = self.last.max(l.last);
        self.state |= state;
        let from_responder = if self.init_is_a {
            ST_SYNACK_B
        } else {
            ST_SYNACK_A
        };
        if later.state & from_responder != 0 {
            self.answered = true;
        }
        self.related = self.related.saturating_add(l.related);
        let last = if l.last_rec == u32::MAX {
            u32::MAX
        } else {
            rec(base + u64::from(l.last_rec))
        };
        self.last_rec = self.last_rec.max(last);
        true
    }

    /// The flow this entry counted.
    fn flow(&self) -> ObservedFlow {
        let k = &self.key;
        let (a, b) = ((addr(k.a, k.v6), k.pa), (addr(k.b, k.v6), k.pb));
        let (i, r) = if self.init_is_a { (a, b) } else { (b, a) };
        let mut f = ObservedFlow::new(k.proto, i, r);
        f.icmp_type = self.icmp_type;
        f.spi = (k.proto == proto::ESP).then_some(k.id);
        f.vlan = self.vlan;
        f.packets = self.packets;
        f.bytes = self.bytes;
        f.first = Some(self.first);
        f.last = Some(self.last);
        f.evidence = self.evidence;
        f.related = u64::from(self.related);
        f.answered = self.answered;
        f
    }
}

/// The flow table. The hash table holds entry indices into `entries`, hashed and compared
/// through the entry's key, so its buckets are 4 bytes (100,000 flows: half a megabyte, in
/// cache, where key-and-index buckets took 8 MB and missed on most packets); `entries` holds
/// the entries in order of creation, so the flows of a busy moment sit together in memory and
/// come out already in order.
pub struct FlowTable {
    /// Flows touched in the last [`FlowTable::idle`] packets: every packet probes this first,
    /// and it stays small (cached) however many flows the capture has.
    live: hashbrown::HashTable<Slot>,
    /// The other flows: probed when `live` has not the key, and moved back when found.
    cold: hashbrown::HashTable<Slot>,
    /// Packets counted (wrapping): the clock of [`FlowTable::sweep`].
    tick: u32,
    /// Every `sweep` packets, flows untouched for `idle` packets move from `live` to `cold`.
    sweep: u32,
    idle: u32,
    /// Entries by creation; a flow moved to `done` leaves `None`.
    entries: Vec<Option<Entry>>,
    /// Flows out of the table: read from logs, or ended TCP connections whose 5-tuple a new
    /// connection reused (with their key); with their creation order.
    done: Vec<(u64, ObservedFlow, Option<Key>)>,
    seq: u64,
    /// ESP: (lower, higher address) → initiator of the pair's first SA.
    esp_pairs: FxHashMap<(u128, u128), u128>,
    /// A shard's table: ICMP errors quoting no flow of this table, with their place and time,
    /// instead of flows of their own (see the module doc).
    pub orphans: Option<Vec<Orphan>>,
    /// A stretch's table ([`FlowTable::traced`]): for each of its first `trace_limit` packets
    /// (by number, from 1), 16 bits of the hash of the key [`FlowTable::replay`] would look
    /// up, so that reading the stretch again decodes only the packets that may continue a
    /// flow of the table before it ([`Seam::wanted`]).
    trace: Option<Vec<u16>>,
    trace_limit: u64,
}

/// The fewest bytes of a pcap record that makes a flow: its 16-byte header and an IPv4 header
/// ([`FlowTable::reserve_for`]).
pub const FLOW_RECORD: u64 = 16 + 20;

/// The most flows [`FlowTable::reserve_for`] makes room for at once: 2^21, 256 MiB of address
/// space (a flow's entry takes 128 bytes); more flows grow the table as before.
pub const RESERVE: u64 = 1 << 21;

/// Packets of a stretch whose keys' hashes are kept (2 bytes each: 8 MiB); past them, reading
/// a stretch again decodes every packet (a stretch's flows that continue the one before
/// usually end within its first few thousand packets).
pub const TRACE: u64 = 1 << 22;

/// An ICMP error set aside by a shard: what counting it needs (the quoted packet is not: it
/// quoted no flow of the shard that holds its flow).
#[derive(Clone, Debug)]
pub struct Orphan {
    pub seq: u64,
    pub ts: Nanos,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub icmp: (u8, u8),
    pub ip_len: u32,
    pub vlan: Option<u16>,
    /// The key of the flow its quote names, when the quote is readable: the flow it is
    /// counted on when a table read before this one has it ([`FlowTable::seam`]).
    quoted: Option<Key>,
}

impl Orphan {
    /// The packet it stands for, without its quote.
    pub fn packet(&self) -> Packet<'static> {
        Packet {
            src: self.src,
            dst: self.dst,
            proto: self.proto,
            sport: 0,
            dport: 0,
            flags: 0,
            icmp: Some((self.icmp.0, self.icmp.1, IcmpKind::Error)),
            id: 0,
            ip_len: self.ip_len,
            payload: &[],
            vlan: self.vlan,
        }
    }
}

/// The flow key of a packet, and whether its source is the key's `a` side.
#[inline]
fn key_of(p: &Packet<'_>, id: u32) -> (Key, bool) {
    let (sa, da) = (num(p.src), num(p.dst));
    let v6 = p.src.is_ipv6();
    let (sp, dp) = match p.proto {
        proto::TCP | proto::UDP | proto::SCTP => (p.sport, p.dport),
        _ => (0, 0),
    };
    let src_is_a = p.proto == proto::ESP || (sa, sp) <= (da, dp);
    let key = if src_is_a {
        Key {
            a: sa,
            b: da,
            pa: sp,
            pb: dp,
            id,
            proto: p.proto,
            v6,
        }
    } else {
        Key {
            a: da,
            b: sa,
            pa: dp,
            pb: sp,
            id,
            proto: p.proto,
            v6,
        }
    };
    (key, src_is_a)
}

/// The key's id field for a packet that is not an ICMP error: echo identifier, ICMP type and
/// code, ESP SPI, or 0.
#[inline]
fn id_of(p: &Packet<'_>) -> u32 {
    match p.proto {
        proto::ICMP | proto::ICMPV6 => match p.icmp {
            Some((_, _, IcmpKind::EchoRequest | IcmpKind::EchoReply)) => p.id,
            Some((t, c, _)) => 0x1_0000 | u32::from(t) << 8 | u32::from(c),
            None => 0,
        },
        proto::ESP => p.id,
        _ => 0,
    }
}

/// The key of the flow an ICMP error's quoted packet belongs to, if the quote is readable.
fn quoted_key(p: &Packet<'_>) -> Option<Key> {
    let q = decode::ip_packet(p.payload).ok()?;
    let id = match q.proto {
        proto::ESP | proto::ICMP | proto::ICMPV6 => q.id,
        _ => 0,
    };
    Some(key_of(&q, id).0)
}

/// A 64-bit mix of a key (the splitmix64 finaliser), so that shards get even shares.
fn mix(k: &Key) -> u64 {
    let fold = |x: u128| (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
    let (a, b) = if k.proto == proto::ESP {
        // Both SAs of a pair in one shard: the pair's first SA names their initiator.
        (fold(k.a.min(k.b)), fold(k.a.max(k.b)))
    } else {
        (fold(k.a), fold(k.b))
    };
    let ports = if k.proto == proto::ESP {
        0
    } else {
        u64::from(k.pa) << 48 | u64::from(k.pb) << 32 | u64::from(k.id)
    };
    finalize(
        a.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31)
            ^ b
            ^ ports.rotate_left(17)
            ^ u64::from(k.proto) << 8,
    )
}

/// The shard (of `n`) whose table counts packet `p`: every packet of one flow, both
/// directions, the ICMP errors quoting it and, for ESP, the reverse SA, go to one shard.
pub fn shard_of(p: &Packet<'_>, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let key = match p.icmp {
        Some((_, _, IcmpKind::Error)) => quoted_key(p).unwrap_or_else(|| key_of(p, id_of(p)).0),
        _ => key_of(p, id_of(p)).0,
    };
    (mix(&key) % n as u64) as usize
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable::default()
    }

    /// A table that sweeps every `sweep` packets the flows idle for `idle` packets out of
    /// its first hash table (tests sweep often; results never depend on it).
    pub fn sweeping(sweep: u32, idle: u32) -> FlowTable {
        FlowTable {
            sweep: sweep.max(1),
            idle,
            ..FlowTable::default()
        }
    }

    /// A table whose flows are numbered after `base` (the flows of one input, read apart from
    /// the others, sort back into the order one table would have given them).
    pub fn after(base: u64) -> FlowTable {
        FlowTable {
            seq: base,
            ..FlowTable::default()
        }
    }

    /// A shard's table: ICMP errors quoting none of its flows are set aside.
    pub fn shard() -> FlowTable {
        FlowTable {
            orphans: Some(Vec::new()),
            ..FlowTable::default()
        }
    }

    /// Room for as many flows as `bytes` of a plain pcap file can make at the most (a record
    /// that makes a flow takes [`FLOW_RECORD`] bytes and more), up to [`RESERVE`], made at
    /// once: room not written to costs no memory, and the entries are then neither copied
    /// nor written to new pages as the table grows (doubling wrote each page about twice, a
    /// page fault each). Nothing when the system refuses the room (no overcommit, a limit on
    /// address space): the table then grows as it would have.
    pub fn reserve_for(&mut self, bytes: u64) {
        let n = (bytes / FLOW_RECORD).min(RESERVE);
        if self.entries.is_empty() {
            if let Ok(n) = usize::try_from(n) {
                let _ = self.entries.try_reserve_exact(n);
            }
        }
    }

    /// A table that keeps the hash of its first `limit` packets' keys (numbered from 1;
    /// [`TRACE`] for a stretch), for [`FlowTable::seam`], with room for `expect` of them made
    /// at once (room not written to costs no memory; growing by doubling wrote every page
    /// twice).
    pub fn traced(mut self, limit: u64, expect: u64) -> FlowTable {
        let room = usize::try_from(limit.min(expect)).unwrap_or(0);
        self.trace = Some(Vec::with_capacity(room));
        self.trace_limit = limit;
        self
    }

    /// Keeps 16 bits of `hash`, the hash of the key packet `seq` is looked up by (once per
    /// packet: a second call for the same packet does nothing).
    #[inline]
    fn trace_hash(&mut self, seq: u64, hash: u64) {
        if let Some(t) = &mut self.trace {
            if t.len() as u64 + 1 == seq && seq <= self.trace_limit {
                t.push(hash as u16);
            } else if seq > t.len() as u64 && seq <= self.trace_limit {
                // Packets that were not decoded (or not given) before this one.
                t.resize(seq as usize - 1, 0);
                t.push(hash as u16);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.live.len() + self.cold.len() + self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a flow read from a log, as it is.
    pub fn push(&mut self, flow: ObservedFlow) {
        self.seq += 1;
        self.done.push((self.seq, flow, None));
    }

    /// Counts one packet captured at `ts`.
    #[inline]
    pub fn observe(&mut self, p: &Packet<'_>, ts: Nanos) {
        let seq = self.seq + 1;
        self.observe_seq(p, ts, seq);
    }

    /// Counts one packet captured at `ts`; a flow it opens is numbered `seq` (increasing with
    /// the packet's place in the inputs).
    #[inline]
    pub fn observe_seq(&mut self, p: &Packet<'_>, ts: Nanos, seq: u64) {
        self.tick = self.tick.wrapping_add(1);
        if self.tick.is_multiple_of(self.sweep) {
            self.sweep_idle();
        }
        let id = match p.icmp {
            Some((t, c, IcmpKind::Error)) => {
                let quoted = quoted_key(p);
                self.trace_hash(seq, quoted.as_ref().map_or(0, Key::hash));
                if self.relate(quoted.as_ref(), seq) {
                    return;
                }
                if let Some(o) = &mut self.orphans {
                    o.push(Orphan {
                        quoted,
                        seq,
                        ts,
                        src: p.src,
                        dst: p.dst,
                        proto: p.proto,
                        icmp: (t, c),
                        ip_len: p.ip_len,
                        vlan: p.vlan,
                    });
                    return;
                }
                0x1_0000 | u32::from(t) << 8 | u32::from(c)
            }
            _ => id_of(p),
        };
        let (key, src_is_a) = key_of(p, id);
        let hash = key.hash();
        self.trace_hash(seq, hash);
        let syn_only = p.proto == proto::TCP && p.flags & (tcp::SYN | tcp::ACK) == tcp::SYN;
        let tick = self.tick;
        match self.locate_hashed(&key, hash) {
            Some(i) => {
                let Some(e) = self.entries.get_mut(i as usize).and_then(Option::as_mut) else {
                    return;
                };
                e.tick = tick;
                if syn_only {
                    let from_init = src_is_a == e.init_is_a;
                    let closed = e.state & ST_RST != 0 || e.state & (ST_FIN_I | ST_FIN_R) == 3;
                    if closed && (from_init || e.evidence != Evidence::Syn) {
                        // The 5-tuple is reused by a new connection.
                        self.seq = seq;
                        let mut fresh = create(&mut self.esp_pairs, seq, &key, p, ts, src_is_a);
                        fresh.tick = tick;
                        count(&mut fresh, p, ts, seq, src_is_a);
                        if let Some(old) = self.entries[i as usize].take() {
                            self.done.push((old.seq, old.flow(), Some(old.key)));
                        }
                        let n = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                        self.entries.push(Some(fresh));
                        if let Some(slot) = self.live.find_mut(hash, |s| s.i == i) {
                            slot.i = n;
                        }
                        return;
                    }
                    if e.evidence != Evidence::Syn && !from_init {
                        flip(e);
                    }
                    e.evidence = Evidence::Syn;
                }
                count(e, p, ts, seq, src_is_a);
            }
            None => {
                self.seq = seq;
                let mut e = create(&mut self.esp_pairs, seq, &key, p, ts, src_is_a);
                e.tick = tick;
                count(&mut e, p, ts, seq, src_is_a);
                self.insert(&key, e);
            }
        }
    }

    /// The index of the entry of `key`, without moving it.
    fn find(&self, key: &Key) -> Option<u32> {
        let h = key.hash();
        let is = holds(&self.entries, key, h);
        self.live
            .find(h, is)
            .or_else(|| self.cold.find(h, is))
            .map(|s| s.i)
    }

    /// The index of the entry of `key`; an entry found among the idle ones moves back to
    /// `live`.
    #[inline]
    fn locate(&mut self, key: &Key) -> Option<u32> {
        self.locate_hashed(key, key.hash())
    }

    /// [`FlowTable::locate`] of a key whose hash is `h`.
    #[inline]
    fn locate_hashed(&mut self, key: &Key, h: u64) -> Option<u32> {
        let is = holds(&self.entries, key, h);
        if let Some(s) = self.live.find(h, is) {
            return Some(s.i);
        }
        if self.cold.is_empty() {
            return None;
        }
        let (s, _) = self.cold.find_entry(h, is).ok()?.remove();
        self.live.insert_unique(h, s, Slot::hash);
        Some(s.i)
    }

    /// Moves the flows untouched for `idle` packets from `live` to `cold`.
    #[cold]
    fn sweep_idle(&mut self) {
        let (now, idle) = (self.tick, self.idle);
        let entries = &self.entries;
        let mut idle_ones = Vec::new();
        self.live.retain(|s| {
            let keep = entries
                .get(s.i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|e| now.wrapping_sub(e.tick) < idle);
            if !keep {
                idle_ones.push(*s);
            }
            keep
        });
        for s in idle_ones {
            self.cold.insert_unique(s.hash(), s, Slot::hash);
        }
    }

    /// Adds a new entry and points its key at it.
    fn insert(&mut self, key: &Key, e: Entry) {
        // More than 4 billion flows in one table: the index saturates, and the key is left
        // pointing at the last one (never reached with the memory of today's machines).
        let i = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.entries.push(Some(e));
        let h = key.hash();
        self.live
            .insert_unique(h, Slot { i, h: h as u32 }, Slot::hash);
    }

    /// Counts an ICMP error (numbered `seq`) on the flow whose packet it quotes (`quoted`);
    /// false when none is known.
    fn relate(&mut self, quoted: Option<&Key>, seq: u64) -> bool {
        let Some(key) = quoted else {
            return false;
        };
        match self
            .locate(key)
            .and_then(|i| self.entries.get_mut(i as usize))
            .and_then(Option::as_mut)
        {
            Some(e) => {
                e.related = e.related.saturating_add(1);
                e.tick = self.tick;
                e.last_rec = e.last_rec.max(rec(seq));
                true
            }
            None => false,
        }
    }

    /// The flows, in order of first appearance.
    pub fn into_flows(self) -> Vec<ObservedFlow> {
        let mut out = Vec::with_capacity(self.len());
        if self.in_order() {
            out.extend(self.entries.iter().flatten().map(Entry::flow));
        } else {
            out.extend(self.into_numbered().into_iter().map(|(_, f)| f));
        }
        out
    }

    /// Entries are made in order, and none left the table: the flows need no sorting.
    fn in_order(&self) -> bool {
        self.done.is_empty() && self.entries.iter().flatten().map(|e| e.seq).is_sorted()
    }

    /// [`FlowTable::into_flows`] written over `out`, which has one place per flow
    /// ([`FlowTable::len`]). False, with nothing written, when it has not: the table is gone
    /// either way, so a caller that needs it checks the length first.
    pub fn into_flows_over(self, out: &mut [ObservedFlow]) -> bool {
        if out.len() != self.len() {
            return false;
        }
        if self.in_order() {
            for (o, e) in out.iter_mut().zip(self.entries.iter().flatten()) {
                *o = e.flow();
            }
        } else {
            for (o, (_, f)) in out.iter_mut().zip(self.into_numbered()) {
                *o = f;
            }
        }
        true
    }

    /// The flows with their numbers, in order of first appearance.
    pub fn into_numbered(self) -> Vec<(u64, ObservedFlow)> {
        let mut all: Vec<(u64, ObservedFlow)> =
            self.done.into_iter().map(|(s, f, _)| (s, f)).collect();
        all.extend(self.entries.iter().flatten().map(|e| (e.seq, e.flow())));
        sort_numbered(all)
    }
}

/// How the flows of a part read apart (a stretch of a capture whose table numbered its
/// packets from 1, in [`FlowTable::shard`] mode) continue in the table of everything read
/// before it, so that the two give what one table reading both in order gives
/// ([`FlowTable::seam`]).
///
/// A flow of the part whose key the earlier table does not have started in the part: its
/// entry is what one table would have made (a table's entry for a key depends only on the
/// packets of that key, and, for ESP, on the first SA of its pair). The others, the part's
/// flows whose key the earlier table has (or whose ESP pair it has), are counted again on the
/// earlier table, packet by packet, from the part's beginning to its last packet of them
/// ([`Seam::until`]): the caller reads that much of the part again and hands every packet to
/// [`FlowTable::replay`] (of a traced part, every packet [`Seam::wanted`] lets through). The
/// part's ICMP errors that quoted none of its flows are counted in their place in that order:
/// on the earlier table's flow they quote, or as flows of their own.
pub struct Seam {
    /// Keys of the part's flows that continue flows of the earlier table.
    keys: Continued,
    /// Those of them continued by reading the part again (the others' counts were added).
    replay: Continued,
    /// The part's packets up to this number must be read again (0: none).
    pub until: u64,
    /// The part's ICMP errors that quoted none of its flows, in order.
    orphans: Vec<Orphan>,
    next: usize,
    /// The part's trace, until [`Seam::wanted`] takes it.
    trace: Option<Vec<u16>>,
    /// Added to the part's numbers to place them among the earlier table's.
    base: u64,
}

/// Which of a traced part's packets reading it again must decode ([`Seam::wanted`]).
pub struct Wanted {
    /// The part's trace (see `FlowTable::trace`).
    trace: Vec<u16>,
    /// Whether the trace was kept (else every packet is wanted).
    traced: bool,
    /// One bit per value of the low [`WANTED_BITS`] bits of the continued keys' hashes.
    bits: Vec<u64>,
}

/// Bits of a key's hash that index [`Wanted::bits`]: all the trace keeps (2^16 bits: 8 KiB,
/// in cache; 2,000 continued flows let through about 3 % of the others' packets).
const WANTED_BITS: u32 = 16;

impl Wanted {
    /// Whether packet `rec` (from 1) of the part may continue a flow of the earlier table:
    /// false only when the hash of its key is none of the continued keys'.
    #[inline]
    pub fn wanted(&self, rec: u64) -> bool {
        if !self.traced {
            return true;
        }
        match usize::try_from(rec)
            .ok()
            .and_then(|r| self.trace.get(r.checked_sub(1)?))
        {
            Some(&h) => {
                let i = usize::from(h);
                self.bits[i / 64] >> (i % 64) & 1 == 1
            }
            None => true,
        }
    }
}

/// The keys of a part's flows that continue flows of the table before it ([`Seam`]).
#[derive(Clone, Default)]
pub struct Continued(hashbrown::HashTable<Key>);

impl Continued {
    fn has(&self, k: &Key) -> bool {
        self.0.find(k.hash(), |x| x == k).is_some()
    }
}

impl Seam {
    fn has(&self, k: &Key) -> bool {
        self.keys.has(k)
    }

    /// How many of the continued flows are continued by reading the part again.
    pub fn replayed(&self) -> usize {
        self.replay.0.len()
    }

    /// How many of the part's flows continue flows of the earlier table.
    pub fn continued(&self) -> usize {
        self.keys.0.len()
    }

    /// The keys of the part's flows that continue flows of the earlier table.
    pub fn keys(&self) -> &Continued {
        &self.keys
    }

    /// Which of the part's packets reading it again must hand to [`FlowTable::replay`] (the
    /// others continue none of the earlier table's flows; an ICMP error the part set aside is
    /// counted in its place either way).
    pub fn wanted(&mut self) -> Wanted {
        let traced = self.trace.is_some();
        let trace = self.trace.take().unwrap_or_default();
        let mut bits = vec![0u64; (1 << WANTED_BITS) / 64];
        for k in self.replay.0.iter() {
            let i = usize::from(k.hash() as u16);
            bits[i / 64] |= 1 << (i % 64);
        }
        Wanted {
            trace,
            traced,
            bits,
        }
    }
}

impl FlowTable {
    /// Adds `base` to the numbers of every flow (a table whose packets were numbered from 1).
    pub fn renumber(&mut self, base: u64) {
        for (s, _, _) in &mut self.done {
            *s += base;
        }
        for e in self.entries.iter_mut().flatten() {
            e.seq += base;
        }
    }

    /// What continuing `part` (its packets numbered from 1; `base` places them after this
    /// table's) needs; `part`'s set-aside ICMP errors move into the seam. A flow of the part
    /// that continues one of this table's is continued here at once, by adding its counts,
    /// when that is what counting its packets here would do (`Entry::adds_up`); the
    /// others are continued by reading the part again ([`Seam::until`]).
    pub fn seam(&mut self, part: &mut FlowTable, base: u64) -> Seam {
        let mut keys = hashbrown::HashTable::new();
        let mut replay = hashbrown::HashTable::new();
        let mut until = 0u64;
        for e in part.entries.iter().flatten() {
            let k = &e.key;
            let here = self.find(k);
            let known = here.is_some()
                || (k.proto == proto::ESP && self.esp_pairs.contains_key(&esp_pair(k)));
            if !known {
                continue;
            }
            if keys.find(k.hash(), |x| x == k).is_none() {
                keys.insert_unique(k.hash(), *k, Key::hash);
            }
            // (A part's flow that reused its 5-tuple was opened by a SYN: never added.)
            let added = here.is_some_and(|i| {
                self.entries
                    .get_mut(i as usize)
                    .and_then(Option::as_mut)
                    .is_some_and(|mine| mine.adds_up(e, base))
            });
            if added {
                continue;
            }
            if replay.find(k.hash(), |x| x == k).is_none() {
                replay.insert_unique(k.hash(), *k, Key::hash);
            }
            until = until.max(if e.last_rec == u32::MAX {
                u64::MAX
            } else {
                u64::from(e.last_rec)
            });
        }
        Seam {
            keys: Continued(keys),
            replay: Continued(replay),
            until,
            orphans: part.orphans.take().unwrap_or_default(),
            next: 0,
            trace: part.trace.take(),
            base,
        }
    }

    /// One packet of the part read again (its number in the part, `rec`, from 1; every packet
    /// up to [`Seam::until`], or every one [`Seam::wanted`] lets through, in order): counted
    /// here when it continues a flow of this table (or is an ICMP error quoting one, or one the
    /// part set aside).
    pub fn replay(&mut self, seam: &mut Seam, p: &Packet<'_>, ts: Nanos, rec: u64) {
        let mut own = false;
        while let Some(o) = seam.orphans.get(seam.next) {
            if o.seq > rec {
                break;
            }
            own |= o.seq == rec;
            let o = o.clone();
            seam.next += 1;
            self.orphan(&o, seam.base);
        }
        if own {
            return;
        }
        let key = match p.icmp {
            Some((_, _, IcmpKind::Error)) => match quoted_key(p) {
                Some(q) => q,
                None => return,
            },
            _ => key_of(p, id_of(p)).0,
        };
        if seam.replay.has(&key) {
            self.observe_seq(p, ts, seam.base + rec);
        }
    }

    /// Takes in the part's flows once it has been read again up to [`Seam::until`]: the ICMP
    /// errors it set aside after that, in order, then its flows that started in it (kept
    /// findable for a part after it when `more` is true).
    pub fn absorb(&mut self, part: FlowTable, mut seam: Seam, more: bool) {
        self.close_seam(&mut seam);
        self.take_part(part, &seam, more);
    }

    /// The first half of [`FlowTable::absorb`]: counts the ICMP errors the part set aside
    /// after [`Seam::until`], in order.
    pub fn close_seam(&mut self, seam: &mut Seam) {
        let rest = std::mem::take(&mut seam.orphans);
        for o in &rest[seam.next..] {
            self.orphan(o, seam.base);
        }
        seam.next = 0;
    }

    /// The second half of [`FlowTable::absorb`]: takes in the part's flows that started in
    /// it.
    pub fn take_part(&mut self, part: FlowTable, seam: &Seam, more: bool) {
        for (s, f, k) in part.done {
            if k.is_some_and(|k| seam.has(&k)) {
                continue;
            }
            self.done.push((s + seam.base, f, k));
        }
        self.entries.reserve(part.entries.len());
        for mut e in part.entries.into_iter().flatten() {
            if seam.has(&e.key) {
                continue;
            }
            e.seq += seam.base;
            if more {
                let key = e.key;
                self.insert(&key, e);
            } else {
                self.entries.push(Some(e));
            }
        }
        for (pair, first) in part.esp_pairs {
            self.esp_pairs.entry(pair).or_insert(first);
        }
    }

    /// The flows of a part that started in it (all but `continued`), numbered after `base`,
    /// in order, added to `out`: what [`FlowTable::take_part`] would add, for joining the last
    /// part without moving its entries (see `split`).
    pub fn flows_apart(&self, continued: &Continued, base: u64, out: &mut Vec<ObservedFlow>) {
        let starts = |k: &Key| !continued.has(k);
        if self.done.is_empty() {
            out.extend(
                self.entries
                    .iter()
                    .flatten()
                    .filter(|e| starts(&e.key))
                    .map(Entry::flow),
            );
            return;
        }
        let mut all: Vec<(u64, ObservedFlow)> = self
            .done
            .iter()
            .filter(|(_, _, k)| k.is_none_or(|k| starts(&k)))
            .map(|(s, f, _)| (s + base, f.clone()))
            .collect();
        all.extend(
            self.entries
                .iter()
                .flatten()
                .filter(|e| starts(&e.key))
                .map(|e| (e.seq + base, e.flow())),
        );
        out.extend(sort_numbered(all).into_iter().map(|(_, f)| f));
    }

    /// How many flows the table has made (live, idle, ended): it grows with every new flow,
    /// so it tells whether a replay made any.
    pub fn made(&self) -> usize {
        self.entries.len() + self.done.len()
    }

    /// Counts an ICMP error a part set aside (its number plus `base`): on the flow it quotes
    /// if this table has it, else as a flow of its own.
    fn orphan(&mut self, o: &Orphan, base: u64) {
        let seq = base + o.seq;
        if self.relate(o.quoted.as_ref(), seq) {
            return;
        }
        self.observe_seq(&o.packet(), o.ts, seq);
    }
}

/// An ESP key's pair: (lower, higher address).
fn esp_pair(k: &Key) -> (u128, u128) {
    (k.a.min(k.b), k.a.max(k.b))
}

/// Flows sorted by number, each moved once: flows are large, and a sort that swaps them moves
/// each many times. Lists already in order (the common case: no reused 5-tuple, no logs)
/// are returned as they are.
pub fn sort_numbered(mut all: Vec<(u64, ObservedFlow)>) -> Vec<(u64, ObservedFlow)> {
    if all.is_sorted_by_key(|(s, _)| *s) {
        return all;
    }
    let mut order: Vec<(u64, usize)> = all.iter().enumerate().map(|(i, (s, _))| (*s, i)).collect();
    order.sort_unstable();
    let mut slots: Vec<Option<(u64, ObservedFlow)>> = all.drain(..).map(Some).collect();
    order
        .into_iter()
        .filter_map(|(_, i)| slots[i].take())
        .collect()
}

/// Counts a packet on its flow.
#[inline]
fn count(e: &mut Entry, p: &Packet<'_>, ts: Nanos, seq: u64, src_is_a: bool) {
    let dir = usize::from(src_is_a != e.init_is_a);
    e.last_rec = e.last_rec.max(rec(seq));
    e.packets[dir] = e.packets[dir].saturating_add(1);
    e.bytes[dir] = e.bytes[dir].saturating_add(u64::from(p.ip_len));
    if ts > e.last {
        e.last = ts;
    }
    if ts < e.first {
        e.first = ts;
    }
    if p.proto == proto::TCP {
        if p.flags & tcp::RST != 0 {
            e.state |= ST_RST;
        }
        match p.flags & (tcp::SYN | tcp::ACK) {
            tcp::SYN => e.state |= ST_SYN,
            f if f == tcp::SYN | tcp::ACK => {
                e.state |= if src_is_a { ST_SYNACK_A } else { ST_SYNACK_B };
            }
            _ => {}
        }
        if p.flags & tcp::FIN != 0 {
            e.state |= if dir == 0 { ST_FIN_I } else { ST_FIN_R };
        }
        if dir == 1 && p.flags & (tcp::SYN | tcp::ACK) == tcp::SYN | tcp::ACK {
            e.answered = true;
        }
    }
}

/// A new entry for the packet that opens a flow.
fn create(
    esp_pairs: &mut FxHashMap<(u128, u128), u128>,
    seq: u64,
    key: &Key,
    p: &Packet<'_>,
    ts: Nanos,
    src_is_a: bool,
) -> Entry {
    let mut ev = Evidence::FirstPacket;
    let mut sender_inits = true;
    match p.proto {
        proto::TCP => {
            let f = p.flags & (tcp::SYN | tcp::ACK);
            if f == tcp::SYN {
                ev = Evidence::Syn;
            } else if f == tcp::SYN | tcp::ACK {
                ev = Evidence::SynAck;
                sender_inits = false;
            } else {
                ev = Evidence::Midstream;
            }
        }
        proto::ICMP | proto::ICMPV6 => match p.icmp {
            Some((_, _, IcmpKind::EchoRequest)) => ev = Evidence::EchoRequest,
            Some((_, _, IcmpKind::EchoReply)) => {
                ev = Evidence::EchoReply;
                sender_inits = false;
            }
            _ => {}
        },
        proto::ESP => {
            let first = *esp_pairs.entry(esp_pair(key)).or_insert(key.a);
            if first != key.a {
                ev = Evidence::SaPair;
                sender_inits = false;
            }
        }
        _ => {}
    }
    let icmp_type = match p.icmp {
        Some((_, _, IcmpKind::EchoRequest | IcmpKind::EchoReply)) => {
            Some(if p.proto == proto::ICMP { 8 } else { 128 })
        }
        Some((t, _, _)) => Some(t),
        None => None,
    };
    Entry {
        key: *key,
        packets: [0; 2],
        bytes: [0; 2],
        first: ts,
        last: ts,
        seq,
        related: 0,
        tick: 0,
        vlan: p.vlan,
        icmp_type,
        evidence: ev,
        init_is_a: src_is_a == sender_inits,
        answered: false,
        state: 0,
        last_rec: 0,
    }
}

/// A packet's number as an entry keeps it: saturated at `u32::MAX` ("to the end").
#[inline]
fn rec(seq: u64) -> u32 {
    u32::try_from(seq).unwrap_or(u32::MAX)
}

/// Makes the other side the initiator.
fn flip(e: &mut Entry) {
    e.packets.swap(0, 1);
    e.bytes.swap(0, 1);
    e.init_is_a = !e.init_is_a;
    e.state = (e.state & (ST_RST | ST_SYN | ST_SYNACK_A | ST_SYNACK_B))
        | ((e.state & ST_FIN_I) << 1)
        | ((e.state & ST_FIN_R) >> 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(src: &str, sp: u16, dst: &str, dp: u16, flags: u8) -> Packet<'static> {
        Packet {
            src: src.parse().expect("address"),
            dst: dst.parse().expect("address"),
            proto: proto::TCP,
            sport: sp,
            dport: dp,
            flags,
            icmp: None,
            id: 0,
            ip_len: 60,
            payload: &[],
            vlan: None,
        }
    }

    /// The layout the table's speed rests on (see [`Entry`]).
    #[test]
    fn a_live_flow_is_one_pair_of_cache_lines() {
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 128);
        assert_eq!(std::mem::align_of::<Entry>(), 128);
    }

    /// Room for the flows a capture can make is made once, by bytes (36 a flow at the most:
    /// 100,000 bytes, 2,777 flows), up to `RESERVE`, and only in an empty table; the flows
    /// then go in without the entries moving.
    #[test]
    fn room_for_a_files_flows_is_made_at_once() {
        let mut t = FlowTable::new();
        t.reserve_for(100_000);
        assert_eq!(t.entries.capacity(), 2_777);
        let at = t.entries.as_ptr();
        for k in 0..2_777u16 {
            t.observe(&pkt("10.0.0.1", 1 + k, "10.0.0.2", 443, tcp::SYN), 0);
        }
        assert_eq!(t.len(), 2_777);
        assert_eq!(t.entries.as_ptr(), at, "the entries moved");
        // A table with flows keeps its room.
        t.reserve_for(1 << 30);
        assert_eq!(t.entries.capacity(), 2_777);
        let mut big = FlowTable::new();
        big.reserve_for(u64::MAX);
        assert_eq!(big.entries.capacity() as u64, RESERVE);
    }

    #[test]
    fn syn_sender_initiates_and_reuse_makes_a_new_flow() {
        let mut t = FlowTable::new();
        t.observe(
            &pkt("10.0.0.2", 80, "10.0.0.1", 5000, tcp::SYN | tcp::ACK),
            1,
        );
        t.observe(&pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::SYN), 0);
        t.observe(&pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::RST), 2);
        t.observe(&pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::SYN), 3);
        let f = t.into_flows();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].initiator.to_string(), "10.0.0.1");
        assert_eq!(f[0].rport, 80);
        assert_eq!(f[0].evidence, Evidence::Syn);
        assert_eq!(f[0].packets, [2, 1]);
        assert_eq!(f[0].first, Some(0));
        assert_eq!(f[1].packets, [1, 0]);
    }

    /// A stretch read again decodes only the packets whose key's hash is a continued flow's,
    /// and every packet past its trace; what it hands the earlier table counts the continued
    /// flow as one table would (by hand: A's SYN, then one packet each way).
    #[test]
    fn reading_a_stretch_again_skips_the_flows_that_started_in_it() {
        // A's SYN is sent again in the stretch: A is continued by reading it again.
        let (a_out, a_back) = (
            pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::SYN),
            pkt("10.0.0.2", 80, "10.0.0.1", 5000, tcp::SYN | tcp::ACK),
        );
        let b = pkt("10.0.0.3", 6000, "10.0.0.2", 80, tcp::SYN);
        let c = pkt("10.0.0.4", 7000, "10.0.0.2", 80, tcp::SYN);
        let mut t = FlowTable::new();
        t.observe_seq(&pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::SYN), 0, 1);
        // The stretch after it: B, A's answer, B, C, A; the hashes of its first 3 are kept.
        let stretch = [&b, &a_back, &b, &c, &a_out];
        let mut part = FlowTable::shard().traced(3, 2);
        for (i, p) in stretch.iter().enumerate() {
            part.observe_seq(p, i as i64 + 1, i as u64 + 1);
        }
        let mut seam = t.seam(&mut part, 1);
        assert_eq!((seam.continued(), seam.replayed(), seam.until), (1, 1, 5));
        let wanted = seam.wanted();
        let let_through: Vec<u64> = (1..=5).filter(|&r| wanted.wanted(r)).collect();
        assert_eq!(
            let_through,
            [2, 4, 5],
            "A's packets, and those past the trace"
        );
        for r in let_through {
            let i = usize::try_from(r - 1).expect("small");
            t.replay(&mut seam, stretch[i], r as i64, r);
        }
        t.absorb(part, seam, false);
        let flows = t.into_flows();
        let a = flows.iter().find(|f| f.iport == 5000).expect("A");
        assert_eq!((a.packets, a.first, a.last), ([2, 1], Some(0), Some(5)));
        assert!(a.answered, "the SYN-ACK was counted on A");
        assert_eq!(a.evidence, Evidence::Syn);
        assert_eq!(flows.len(), 3, "A, B and C");
    }

    /// Each packet with its time (its number, from 1, in its own stretch, is its place).
    fn stretch(ps: &[&Packet<'_>], t0: i64) -> FlowTable {
        let mut part = FlowTable::shard().traced(TRACE, 16);
        for (i, p) in ps.iter().enumerate() {
            part.observe_seq(p, t0 + i as i64, i as u64 + 1);
        }
        part
    }

    /// A flow that continues into a stretch where none of its packets is a SYN is continued
    /// by adding its counts, the stretch's sides matched to the flow's: nothing is read
    /// again. Counted by hand: the client's SYN (before the cut), ACK and FIN; the server's
    /// data, SYN-ACK and FIN. The stretch took the server for the initiator (its first
    /// packet there is the server's data), so its sides and its FIN are turned: the server's
    /// SYN-ACK answers the client, the client's FIN closes the client's side, and after the
    /// server's FIN the client's next SYN opens a new flow, as in one table.
    #[test]
    fn a_continued_flow_without_a_syn_adds_its_counts() {
        let (c, s) = (("10.0.0.1", 5000), ("10.0.0.2", 80));
        let to_s = |f| pkt(c.0, c.1, s.0, s.1, f);
        let to_c = |f| pkt(s.0, s.1, c.0, c.1, f);
        let (syn, synack) = (to_s(tcp::SYN), to_c(tcp::SYN | tcp::ACK));
        let (data, ack, fin) = (to_c(tcp::ACK), to_s(tcp::ACK), to_s(tcp::FIN | tcp::ACK));
        let other = pkt("10.0.0.3", 6000, "10.0.0.2", 80, tcp::SYN);
        let mut t = FlowTable::new();
        t.observe_seq(&syn, 0, 1);
        let mut part = stretch(&[&data, &synack, &other, &ack, &fin], 10);
        let seam = t.seam(&mut part, 1);
        assert_eq!(
            (seam.continued(), seam.replayed(), seam.until),
            (1, 0, 0),
            "continued, by adding: nothing to read again"
        );
        t.absorb(part, seam, true);
        // After the join: the server's FIN, then the client's SYN on the same 5-tuple.
        t.observe_seq(&to_c(tcp::FIN | tcp::ACK), 20, 7);
        t.observe_seq(&syn, 21, 8);
        let flows = t.into_flows();
        let first = &flows[0];
        assert_eq!(
            (first.iport, first.packets, first.first, first.last),
            (5000, [3, 3], Some(0), Some(20)),
            "SYN, ACK, FIN; SYN-ACK, data, FIN"
        );
        assert_eq!(first.bytes, [180, 180]);
        assert_eq!((first.evidence, first.answered), (Evidence::Syn, true));
        assert_eq!(
            flows.len(),
            3,
            "the flow, the other, and the flow the SYN reopened"
        );
        assert_eq!((flows[2].iport, flows[2].packets), (5000, [1, 0]));
    }

    /// A stretch read again in whole (its trace was not kept: every packet is handed to
    /// `replay`) counts again only the flows that are continued by reading again: a flow whose
    /// counts were added is not counted twice. Counted by hand: the added flow X has its SYN
    /// and three ACKs; Y (SYN before; its SYN sent again and the SYN-ACK in the stretch) is
    /// read again.
    #[test]
    fn reading_a_whole_stretch_again_counts_added_flows_once() {
        let x = pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::ACK);
        let y_back = pkt("10.0.0.2", 80, "10.0.0.5", 7000, tcp::SYN | tcp::ACK);
        let y_out = pkt("10.0.0.5", 7000, "10.0.0.2", 80, tcp::SYN);
        let mut t = FlowTable::new();
        t.observe_seq(&pkt("10.0.0.1", 5000, "10.0.0.2", 80, tcp::SYN), 0, 1);
        t.observe_seq(&pkt("10.0.0.5", 7000, "10.0.0.2", 80, tcp::SYN), 1, 2);
        let ps = [&x, &x, &y_out, &x, &y_back];
        let mut part = FlowTable::shard();
        for (i, p) in ps.iter().enumerate() {
            part.observe_seq(p, 10 + i as i64, i as u64 + 1);
        }
        let mut seam = t.seam(&mut part, 2);
        assert_eq!((seam.continued(), seam.replayed(), seam.until), (2, 1, 5));
        let wanted = seam.wanted();
        for (i, p) in ps.iter().enumerate() {
            let r = i as u64 + 1;
            assert!(wanted.wanted(r), "without a trace every packet is wanted");
            t.replay(&mut seam, p, 10 + i as i64, r);
        }
        t.absorb(part, seam, false);
        let flows = t.into_flows();
        assert_eq!(flows.len(), 2);
        assert_eq!((flows[0].packets, flows[0].last), ([4, 0], Some(13)), "X");
        assert_eq!((flows[1].packets, flows[1].answered), ([2, 1], true), "Y");
    }

    /// Found by fuzzing: conntrack's `packets=18446744073709551615` in both directions
    /// overflowed the flow's total (and `learn`'s sum of totals).
    #[test]
    fn totals_saturate() {
        let mut f = ObservedFlow::new(
            proto::UDP,
            ("10.0.0.1".parse().expect("address"), 1),
            ("10.0.0.2".parse().expect("address"), 2),
        );
        f.packets = [u64::MAX, u64::MAX];
        f.bytes = [u64::MAX, 1];
        assert_eq!((f.total_packets(), f.total_bytes()), (u64::MAX, u64::MAX));
    }

    // A differential test of joining stretches: random packets, cut at random places.
    use crate::test_rng::Rng;

    #[derive(Clone)]
    struct Spec {
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
        flags: u8,
        icmp: Option<(u8, u8, IcmpKind)>,
        id: u32,
        ip_len: u32,
        quote: Vec<u8>,
        vlan: Option<u16>,
        ts: i64,
    }

    impl Spec {
        fn packet(&self) -> Packet<'_> {
            Packet {
                src: self.src,
                dst: self.dst,
                proto: self.proto,
                sport: self.sport,
                dport: self.dport,
                flags: self.flags,
                icmp: self.icmp,
                id: self.id,
                ip_len: self.ip_len,
                payload: &self.quote,
                vlan: self.vlan,
            }
        }
    }

    fn gen(r: &mut Rng, n: usize) -> Vec<Spec> {
        let hosts: [IpAddr; 3] = [
            "10.0.0.1".parse().expect("address"),
            "10.0.0.2".parse().expect("address"),
            "10.0.0.3".parse().expect("address"),
        ];
        let ports = [80u16, 5000];
        let flagset = [
            tcp::SYN,
            tcp::SYN | tcp::ACK,
            tcp::ACK,
            tcp::ACK,
            tcp::FIN | tcp::ACK,
            tcp::RST,
            tcp::RST | tcp::ACK,
            tcp::SYN | tcp::FIN,
            tcp::SYN | tcp::RST,
            0,
        ];
        let mut ts = 100i64;
        let mut out = Vec::new();
        for _ in 0..n {
            ts += r.below(5) as i64 - 1;
            let si = r.below(2) as usize;
            let di = if r.below(4) == 0 { 2 } else { 1 - si };
            let (src, dst) = (hosts[si], hosts[di]);
            let (sport, dport) = (ports[r.below(2) as usize], ports[r.below(2) as usize]);
            let mut s = Spec {
                src,
                dst,
                proto: proto::TCP,
                sport,
                dport,
                flags: 0,
                icmp: None,
                id: 0,
                ip_len: 40 + r.below(3) as u32,
                quote: Vec::new(),
                vlan: if r.below(5) == 0 { Some(7) } else { None },
                ts: if r.below(8) == 0 { ts - 3 } else { ts },
            };
            match r.below(16) {
                0..=8 => s.flags = flagset[r.below(flagset.len() as u64) as usize],
                9 => s.proto = proto::UDP,
                10 => {
                    s.proto = proto::ICMP;
                    let req = r.below(2) == 0;
                    s.icmp = Some(if req {
                        (8, 0, IcmpKind::EchoRequest)
                    } else {
                        (0, 0, IcmpKind::EchoReply)
                    });
                    s.id = 1 + r.below(2) as u32;
                    s.sport = 0;
                    s.dport = 0;
                }
                11 => {
                    s.proto = proto::ESP;
                    s.id = 1 + r.below(2) as u32;
                    s.sport = 0;
                    s.dport = 0;
                }
                12 => {
                    s.proto = proto::ICMP;
                    s.icmp = Some((13, 0, IcmpKind::Other));
                    s.sport = 0;
                    s.dport = 0;
                }
                _ => {
                    // An ICMP error quoting a TCP or UDP packet between two of the hosts.
                    s.proto = proto::ICMP;
                    s.icmp = Some((3, 3, IcmpKind::Error));
                    s.sport = 0;
                    s.dport = 0;
                    let qs = r.below(2) as usize;
                    let qd = if r.below(4) == 0 { 2 } else { 1 - qs };
                    let (qa, qb) = (hosts[qs], hosts[qd]);
                    let (qsp, qdp) = (ports[r.below(2) as usize], ports[r.below(2) as usize]);
                    let udp = r.below(3) == 0;
                    let mut q = vec![0u8; 40];
                    q[0] = 0x45;
                    q[2..4].copy_from_slice(&(if udp { 28u16 } else { 40 }).to_be_bytes());
                    q[9] = if udp { proto::UDP } else { proto::TCP };
                    if let (IpAddr::V4(a), IpAddr::V4(b)) = (qa, qb) {
                        q[12..16].copy_from_slice(&a.octets());
                        q[16..20].copy_from_slice(&b.octets());
                    }
                    q[20..22].copy_from_slice(&qsp.to_be_bytes());
                    q[22..24].copy_from_slice(&qdp.to_be_bytes());
                    q[32] = 0x50;
                    if r.below(6) == 0 {
                        q.truncate(10); // unreadable quote
                    } else if udp {
                        q.truncate(28);
                    }
                    s.quote = q;
                }
            }
            out.push(s);
        }
        out
    }

    fn small(mut t: FlowTable, r: &mut Rng) -> FlowTable {
        if r.below(2) == 0 {
            t.sweep = 1 + r.below(3) as u32;
            t.idle = 1 + r.below(4) as u32;
        }
        t
    }

    /// Tables joined at cuts give what one table gives, on 20,000 random captures of up to 30
    /// packets among three hosts and two ports (so that keys meet often): TCP of every flag
    /// mix, UDP, ICMP echo and other messages, ESP, ICMP errors quoting flows (some quotes
    /// unreadable), VLANs, times out of order; 1 to 4 stretches, traces cut short at random,
    /// idle sweeps on tiny tables, and the last stretch joined apart or taken in. The reference
    /// is one table reading every packet in order. (Each of these made it fail within a few
    /// thousand captures: the stretch's sides not turned, ICMP errors not added, the SYN-ACK's
    /// side taken wrong, the FIN bits not turned, a SYN's flow added.)
    #[test]
    fn stretches_joined_anywhere_give_what_one_table_gives() {
        let (iters, seed0) = (20_000u64, 1u64);
        for it in 0..iters {
            let mut r = Rng(0x9e37_79b9_7f4a_7c15
                ^ (seed0 * 1_000_003 + it).wrapping_mul(0x2545_f491_4f6c_dd1d)
                | 1);
            let nmax: u64 = 30;
            let n = 1 + r.below(nmax) as usize;
            let specs = gen(&mut r, n);
            // One table.
            let mut one = small(FlowTable::new(), &mut r);
            for (i, s) in specs.iter().enumerate() {
                one.observe_seq(&s.packet(), s.ts, i as u64 + 1);
            }
            let want = one.into_flows();
            // Cuts.
            let nparts = 1 + r.below(4) as usize;
            let mut cuts: Vec<usize> = (0..nparts - 1)
                .map(|_| r.below(n as u64 + 1) as usize)
                .collect();
            cuts.push(0);
            cuts.push(n);
            cuts.sort();
            let mut t = small(FlowTable::new(), &mut r);
            for (i, s) in specs.iter().enumerate().take(cuts[1]) {
                t.observe_seq(&s.packet(), s.ts, i as u64 + 1);
            }
            let mut got = None;
            let nseg = cuts.len() - 1;
            for k in 1..nseg {
                let (lo, hi) = (cuts[k], cuts[k + 1]);
                let base = lo as u64;
                let limit = if r.below(3) == 0 { r.below(4) } else { TRACE };
                let mut part = small(FlowTable::shard().traced(limit, 2), &mut r);
                for (i, s) in specs[lo..hi].iter().enumerate() {
                    part.observe_seq(&s.packet(), s.ts, i as u64 + 1);
                }
                let mut seam = t.seam(&mut part, base);
                let more = k + 1 < nseg;
                let apart = !more && r.below(2) == 0;
                let keys = seam.keys().clone();
                let (made, ahead) = (t.made(), t.len());
                if seam.until > 0 {
                    let wanted = seam.wanted();
                    for rec in 1..=(hi - lo) as u64 {
                        if rec <= seam.until && wanted.wanted(rec) {
                            let s = &specs[lo + rec as usize - 1];
                            t.replay(&mut seam, &s.packet(), s.ts, rec);
                        }
                    }
                }
                if apart {
                    t.close_seam(&mut seam);
                    if t.made() == made && t.len() == ahead {
                        let mut all = std::mem::take(&mut t).into_flows();
                        part.flows_apart(&keys, base, &mut all);
                        got = Some(all);
                    } else {
                        t.take_part(part, &seam, false);
                    }
                } else {
                    t.absorb(part, seam, more);
                }
            }
            let got = got.unwrap_or_else(|| t.into_flows());
            if got != want {
                eprintln!("iteration {it}: n={n} cuts={cuts:?}");
                for (i, s) in specs.iter().enumerate() {
                    let p = s.packet();
                    eprintln!(
                        "  {}: {} {}:{} -> {}:{} flags={:#x} icmp={:?} id={} len={} quote={:?} vlan={:?} ts={}",
                        i + 1, p.proto, p.src, p.sport, p.dst, p.dport, p.flags, p.icmp, p.id, p.ip_len,
                        quoted_key(&p).map(|k| (k.proto, k.a as u8, k.pa, k.b as u8, k.pb)), p.vlan, s.ts
                    );
                }
                eprintln!("want {want:#?}\ngot {got:#?}");
                panic!("differ at iteration {it}");
            }
        }
    }
}
