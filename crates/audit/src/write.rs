//! A small, deterministic capture writer: pcap (microsecond or nanosecond) and pcapng files,
//! and the frames to put in them (Ethernet with 802.1Q tags, Linux SLL and SLL2, raw IP, BSD
//! loopback around IPv4/IPv6 with TCP, UDP, ICMP, ESP or any protocol). Tests and the benchmark
//! generator use it so that every capture they read is made by the test itself, byte for byte
//! the same on every run. Checksums: the IPv4 header's is computed; transport checksums are
//! left zero, which readers of flows ignore.

use std::io::{self, Write};
use std::net::IpAddr;

use crate::decode::linktype;
use crate::time::{Nanos, NANOS};

/// A legacy pcap file.
pub struct PcapWriter<W: Write> {
    w: W,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (little-endian; nanosecond timestamps when `nanos`).
    pub fn new(mut w: W, link: u32, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        w.write_all(&magic.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&snaplen.to_le_bytes())?;
        w.write_all(&link.to_le_bytes())?;
        Ok(PcapWriter { w, nanos })
    }

    /// Writes one record; `snap` cuts the data as a capture's snap length would.
    pub fn packet(&mut self, ts: Nanos, frame: &[u8], snap: Option<usize>) -> io::Result<()> {
        let cap = snap.map_or(frame.len(), |s| s.min(frame.len()));
        let sec = u32::try_from(ts.div_euclid(NANOS)).unwrap_or(0);
        let frac = ts.rem_euclid(NANOS);
        let frac = if self.nanos { frac } else { frac / 1000 };
        self.w.write_all(&sec.to_le_bytes())?;
        self.w.write_all(&(frac as u32).to_le_bytes())?;
        self.w.write_all(&(cap as u32).to_le_bytes())?;
        self.w.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.w.write_all(&frame[..cap])
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// A pcapng file (little-endian, one section).
pub struct PcapngWriter<W: Write> {
    w: W,
    /// Units per second of each interface.
    units: Vec<u64>,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header block.
    pub fn new(mut w: W) -> io::Result<Self> {
        w.write_all(&0x0a0d_0d0au32.to_le_bytes())?;
        w.write_all(&28u32.to_le_bytes())?;
        w.write_all(&0x1a2b_3c4du32.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())?;
        w.write_all(&(-1i64).to_le_bytes())?;
        w.write_all(&28u32.to_le_bytes())?;
        Ok(PcapngWriter {
            w,
            units: Vec::new(),
        })
    }

    /// Declares an interface; `tsresol` is the `if_tsresol` option (6: microseconds, 9:
    /// nanoseconds). Returns its id.
    pub fn interface(&mut self, link: u16, snaplen: u32, tsresol: u8) -> io::Result<u32> {
        // Options: if_tsresol (code 9, length 1, padded to 4), opt_endofopt.
        let len: u32 = 20 + 8 + 4;
        self.w.write_all(&1u32.to_le_bytes())?;
        self.w.write_all(&len.to_le_bytes())?;
        self.w.write_all(&link.to_le_bytes())?;
        self.w.write_all(&0u16.to_le_bytes())?;
        self.w.write_all(&snaplen.to_le_bytes())?;
        self.w.write_all(&9u16.to_le_bytes())?;
        self.w.write_all(&1u16.to_le_bytes())?;
        self.w.write_all(&[tsresol, 0, 0, 0])?;
        self.w.write_all(&[0, 0, 0, 0])?;
        self.w.write_all(&len.to_le_bytes())?;
        self.units.push(10u64.pow(u32::from(tsresol.min(19))));
        Ok(u32::try_from(self.units.len() - 1).unwrap_or(0))
    }

    /// Writes an enhanced packet block.
    pub fn packet(
        &mut self,
        iface: u32,
        ts: Nanos,
        frame: &[u8],
        snap: Option<usize>,
    ) -> io::Result<()> {
        let units = self.units.get(iface as usize).copied().unwrap_or(1_000_000);
        let t = u128::try_from(ts.max(0)).unwrap_or(0) * u128::from(units) / 1_000_000_000;
        let t = u64::try_from(t).unwrap_or(u64::MAX);
        let cap = snap.map_or(frame.len(), |s| s.min(frame.len()));
        let len = 32 + cap + pad4(cap);
        self.w.write_all(&6u32.to_le_bytes())?;
        self.w.write_all(&(len as u32).to_le_bytes())?;
        self.w.write_all(&iface.to_le_bytes())?;
        self.w.write_all(&((t >> 32) as u32).to_le_bytes())?;
        self.w.write_all(&(t as u32).to_le_bytes())?;
        self.w.write_all(&(cap as u32).to_le_bytes())?;
        self.w.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.w.write_all(&frame[..cap])?;
        self.w.write_all(&[0u8; 3][..pad4(cap)])?;
        self.w.write_all(&(len as u32).to_le_bytes())
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// The transport part of a packet.
#[derive(Clone, Debug)]
pub enum L4<'a> {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    /// ICMP or ICMPv6 (told by the addresses): type, code, identifier, sequence, payload.
    Icmp {
        ty: u8,
        code: u8,
        id: u16,
        seq: u16,
        payload: &'a [u8],
    },
    Esp {
        spi: u32,
        seq: u32,
        payload: &'a [u8],
    },
    /// Any protocol number with an opaque payload.
    Other { proto: u8, payload: &'a [u8] },
}

impl L4<'_> {
    fn proto(&self, v6: bool) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Icmp { .. } if v6 => 58,
            L4::Icmp { .. } => 1,
            L4::Esp { .. } => 50,
            L4::Other { proto, .. } => *proto,
        }
    }

    fn bytes(&self, out: &mut Vec<u8>) {
        match self {
            L4::Tcp {
                sport,
                dport,
                flags,
                payload,
            } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&1u32.to_be_bytes());
                out.extend_from_slice(&0u32.to_be_bytes());
                out.extend_from_slice(&[0x50, *flags]);
                out.extend_from_slice(&65535u16.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(payload);
            }
            L4::Udp {
                sport,
                dport,
                payload,
            } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(payload);
            }
            L4::Icmp {
                ty,
                code,
                id,
                seq,
                payload,
            } => {
                out.extend_from_slice(&[*ty, *code, 0, 0]);
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(payload);
            }
            L4::Esp { spi, seq, payload } => {
                out.extend_from_slice(&spi.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(payload);
            }
            L4::Other { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

/// An IPv4 or IPv6 packet (both addresses of one family).
pub fn ip(src: IpAddr, dst: IpAddr, l4: &L4<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    l4.bytes(&mut body);
    let mut out = Vec::with_capacity(body.len() + 40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + body.len()) as u16;
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0x40, 0, 64, l4.proto(false), 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let mut sum: u32 = 0;
            for c in out.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            out[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            };
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
            out.extend_from_slice(&[l4.proto(true), 64]);
            out.extend_from_slice(&v6(s));
            out.extend_from_slice(&v6(d));
        }
    }
    out.extend_from_slice(&body);
    out
}

fn ethertype(ip: &[u8]) -> u16 {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    }
}

/// An Ethernet II frame, with 802.1Q tags (outermost first) when `vlans` is not empty.
pub fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ip.len() + 14 + 4 * vlans.len());
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    for (i, v) in vlans.iter().enumerate() {
        let tpid: u16 = if i == 0 && vlans.len() > 1 {
            0x88a8
        } else {
            0x8100
        };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(v & 0x0fff).to_be_bytes());
    }
    out.extend_from_slice(&ethertype(ip).to_be_bytes());
    out.extend_from_slice(ip);
    out
}

/// A Linux cooked capture (v1) frame.
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 0x01, 0, 0];
    out.extend_from_slice(&ethertype(ip).to_be_bytes());
    out.extend_from_slice(ip);
    out
}

/// A Linux cooked capture v2 frame.
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ip.len() + 20);
    out.extend_from_slice(&ethertype(ip).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
    out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0, 0]);
    out.extend_from_slice(ip);
    out
}

/// A BSD loopback (`DLT_NULL`) frame: the address family in host (here: little-endian) order.
pub fn null(ip: &[u8]) -> Vec<u8> {
    let af: u32 = if ethertype(ip) == 0x86dd { 30 } else { 2 };
    let mut out = af.to_le_bytes().to_vec();
    out.extend_from_slice(ip);
    out
}

/// An OpenBSD loopback (`DLT_LOOP`) frame: the address family in network order.
pub fn r#loop(ip: &[u8]) -> Vec<u8> {
    let af: u32 = if ethertype(ip) == 0x86dd { 24 } else { 2 };
    let mut out = af.to_be_bytes().to_vec();
    out.extend_from_slice(ip);
    out
}

/// Wraps an IP packet for a link type.
pub fn frame(link: u32, ip: &[u8]) -> Vec<u8> {
    match link {
        linktype::ETHERNET => ethernet(ip, &[]),
        linktype::LINUX_SLL => sll(ip),
        linktype::LINUX_SLL2 => sll2(ip),
        linktype::NULL => null(ip),
        linktype::LOOP => r#loop(ip),
        _ => ip.to_vec(),
    }
}

/// A DNS response (with `hickory-proto`): `query` is answered through a CNAME chain
/// (`cnames`, each target with its TTL) ending in A/AAAA records for `addrs` with `ttl`.
pub fn dns_answer(
    id: u16,
    query: &str,
    cnames: &[(&str, u32)],
    addrs: &[IpAddr],
    ttl: u32,
) -> Vec<u8> {
    use hickory_proto::op::{Message, OpCode, Query};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    let name = |s: &str| Name::from_ascii(s).unwrap_or_else(|_| Name::root());
    let mut m = Message::response(id, OpCode::Query);
    let qtype = if addrs.first().is_some_and(IpAddr::is_ipv6) {
        RecordType::AAAA
    } else {
        RecordType::A
    };
    m.add_query(Query::query(name(query), qtype));
    let mut owner = query.to_string();
    for (target, t) in cnames {
        m.add_answer(Record::from_rdata(
            name(&owner),
            *t,
            RData::CNAME(CNAME(name(target))),
        ));
        owner = (*target).to_string();
    }
    for a in addrs {
        let data = match a {
            IpAddr::V4(v) => RData::A(A(*v)),
            IpAddr::V6(v) => RData::AAAA(AAAA(*v)),
        };
        m.add_answer(Record::from_rdata(name(&owner), ttl, data));
    }
    m.to_vec().unwrap_or_default()
}
