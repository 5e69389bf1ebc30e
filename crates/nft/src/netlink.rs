//! `device . peer` elements written straight to the kernel over nfnetlink: one batch
//! (`NFNL_MSG_BATCH_BEGIN`, the element messages, `NFNL_MSG_BATCH_END`) per transaction, the
//! kernel's acknowledgement read back for every element message. No libnftables and so no
//! cache: libnftables lists the table's sets (and the elements of its interval sets) before
//! every command, a cost that grows with the policy, not with what is written.
//!
//! The messages are those of the kernel's uapi header `linux/netfilter/nf_tables.h`
//! (`NFT_MSG_NEWSETELEM`, `NFT_MSG_DELSETELEM`, the `NFTA_SET_ELEM_LIST_*` and
//! `NFTA_SET_ELEM_*` attributes) and `linux/netfilter/nfnetlink.h` (the batch messages, the
//! `nfgenmsg` header); netlink framing per `linux/netlink.h` and RFC 3549 section 2.3.2. A
//! concatenated key (`ipv4_addr . ipv4_addr`) is its fields in network order, each padded to
//! four bytes (nftables' register size), so two IPv4 addresses make 8 bytes and two IPv6
//! addresses 32. An element's timeout is milliseconds, big-endian.
//!
//! Only the elements [`crate::elements`] allows reach this module (an enforce set's name,
//! one family): the set names come from the compiled policy, never from a device.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{SocketAddrNetlink, NETFILTER};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::elements::Pair;
use crate::error::{Error, Result};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_INET: u8 = 1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;

/// One element operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    /// `add element`: with a timeout (seconds), or the set's default.
    Add(&'a Pair, Option<u64>),
    /// `delete element`.
    Delete(&'a Pair),
}

/// The operations that write `fresh` (one add each) and refresh `refresh` (add, delete, add
/// with the timeout: see [`crate::elements`]).
pub(crate) fn ops<'a>(fresh: &'a [Pair], refresh: &'a [Pair]) -> Vec<Op<'a>> {
    let mut v = Vec::with_capacity(fresh.len() + 3 * refresh.len());
    for p in fresh {
        v.push(Op::Add(p, Some(p.timeout.max(1))));
    }
    for p in refresh {
        v.push(Op::Add(p, None));
        v.push(Op::Delete(p));
        v.push(Op::Add(p, Some(p.timeout.max(1))));
    }
    v
}

/// A `device . peer` key: each address in network order (both of one family); a
/// `device . peer . port` key adds the port in network order, padded to the kernel's 32-bit
/// register like every field of a concatenation (`NFT_REG32_SIZE`).
pub(crate) fn key(p: &Pair) -> Vec<u8> {
    let mut k = Vec::with_capacity(36);
    for a in [p.device, p.peer] {
        match a {
            IpAddr::V4(v) => k.extend_from_slice(&v.octets()),
            IpAddr::V6(v) => k.extend_from_slice(&v.octets()),
        }
    }
    if let Some(port) = p.port {
        k.extend_from_slice(&port.to_be_bytes());
        k.extend_from_slice(&[0, 0]);
    }
    k
}

fn align(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    align(buf);
}

fn nest(buf: &mut Vec<u8>, ty: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    inner(buf);
    let len = u16::try_from(buf.len() - at).unwrap_or(u16::MAX);
    buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    buf[at + 2..at + 4].copy_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
}

/// A netlink message: header, `nfgenmsg`, attributes.
fn message(
    buf: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: impl FnOnce(&mut Vec<u8>),
) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version (NFNETLINK_V0), resource id (big-endian).
    buf.push(family);
    buf.push(0);
    buf.extend_from_slice(&res_id.to_be_bytes());
    attrs(buf);
    align(buf);
    let len = u32::try_from(buf.len() - at).unwrap_or(u32::MAX);
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

/// The batch for `ops` in `table` (an `inet` table), its element messages numbered from
/// `seq`: the bytes, and the sequence numbers whose acknowledgement must come back.
pub(crate) fn batch(table: &str, ops: &[Op<'_>], seq: u32) -> (Vec<u8>, Vec<u32>) {
    let mut buf = Vec::with_capacity(64 + ops.len() * 96);
    let mut acks = Vec::with_capacity(ops.len());
    let mut s = seq;
    message(
        &mut buf,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        s,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    let cstr = |x: &str| {
        let mut v = x.as_bytes().to_vec();
        v.push(0);
        v
    };
    let table_z = cstr(table);
    for op in ops {
        s = s.wrapping_add(1);
        let (p, ty, flags, timeout) = match op {
            Op::Add(p, t) => (
                *p,
                NFT_MSG_NEWSETELEM,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
                *t,
            ),
            Op::Delete(p) => (*p, NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK, None),
        };
        let set_z = cstr(&p.set);
        let k = key(p);
        message(
            &mut buf,
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            flags,
            s,
            NFPROTO_INET,
            0,
            |b| {
                attr(b, NFTA_SET_ELEM_LIST_TABLE, &table_z);
                attr(b, NFTA_SET_ELEM_LIST_SET, &set_z);
                nest(b, NFTA_SET_ELEM_LIST_ELEMENTS, |b| {
                    nest(b, NFTA_LIST_ELEM, |b| {
                        nest(b, NFTA_SET_ELEM_KEY, |b| attr(b, NFTA_DATA_VALUE, &k));
                        if let Some(secs) = timeout {
                            let ms = secs.saturating_mul(1000);
                            attr(b, NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
                        }
                    });
                });
            },
        );
        acks.push(s);
    }
    s = s.wrapping_add(1);
    message(
        &mut buf,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        s,
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    (buf, acks)
}

/// What the kernel answered: `(seq, errno)` of each `NLMSG_ERROR` message in `buf` (errno 0:
/// an acknowledgement).
pub(crate) fn acks_in(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 16 <= buf.len() {
        let word = |i: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(&buf[i..i + 4]);
            w
        };
        let len = u32::from_ne_bytes(word(at)) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if ty == NLMSG_ERROR && len >= 16 + 4 + 16 {
            let err = i32::from_ne_bytes(word(at + 16));
            // The request's own header follows the error code; its sequence number is ours.
            let seq = u32::from_ne_bytes(word(at + 20 + 8));
            out.push((seq, -err));
        }
        at += (len + 3) & !3;
    }
    out
}

/// A netlink socket of the netfilter family, in the namespace of the thread that opened it.
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
    table: String,
}

impl Netlink {
    pub(crate) fn open() -> std::io::Result<Netlink> {
        let fd = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, Some(NETFILTER))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(5)),
        )?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(Netlink {
            fd,
            seq: seed,
            table: crate::table_name().to_string(),
        })
    }

    /// One transaction of `ops`; `Ok` once the kernel acknowledged every element message
    /// (the batch committed), else the first error the kernel gave, naming its set.
    pub(crate) fn run(&mut self, ops: &[Op<'_>]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let (buf, acks) = batch(&self.table, ops, self.seq);
        self.seq = self
            .seq
            .wrapping_add(u32::try_from(ops.len()).unwrap_or(0) + 2);
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.fd, &buf, SendFlags::empty(), &kernel)
            .map_err(|e| Error::io("cannot send to nfnetlink", e.into()))?;
        let mut pending: std::collections::HashSet<u32> = acks.iter().copied().collect();
        let mut first_error: Option<(u32, i32)> = None;
        let mut rbuf = vec![0u8; 65536];
        while !pending.is_empty() {
            if first_error.is_some() {
                // The batch is aborted; the other messages' answers need not be waited for.
                let _ = rustix::net::sockopt::set_socket_timeout(
                    &self.fd,
                    rustix::net::sockopt::Timeout::Recv,
                    Some(Duration::from_millis(50)),
                );
            }
            let n = match rustix::net::recv(&self.fd, &mut rbuf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(e) if first_error.is_some() => {
                    let _ = e;
                    break;
                }
                Err(e) => return Err(Error::io("no answer from nfnetlink", e.into())),
            };
            for (seq, errno) in acks_in(&rbuf[..n.min(rbuf.len())]) {
                if pending.remove(&seq) && errno != 0 && first_error.is_none() {
                    first_error = Some((seq, errno));
                }
            }
        }
        if first_error.is_some() {
            let _ = rustix::net::sockopt::set_socket_timeout(
                &self.fd,
                rustix::net::sockopt::Timeout::Recv,
                Some(Duration::from_secs(5)),
            );
        }
        match first_error {
            None => Ok(()),
            Some((seq, errno)) => {
                let i = seq.wrapping_sub(acks[0]) as usize;
                let what = match ops.get(i) {
                    Some(Op::Add(p, _)) => format!("add element {} {}", crate::TABLE, p.set),
                    Some(Op::Delete(p)) => format!("delete element {} {}", crate::TABLE, p.set),
                    None => "an element".to_string(),
                };
                Err(Error::Rejected {
                    detail: format!("{what}: {}", std::io::Error::from_raw_os_error(errno)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(d: &str, p: &str) -> Pair {
        Pair {
            set: "e_x_v4".into(),
            device: d.parse().expect("addr"),
            peer: p.parse().expect("addr"),
            port: None,
            timeout: 90,
        }
    }

    /// A `device . peer . port` key: the port (1883 = 0x075b) in network order, then two
    /// zero bytes, since every field of a concatenation takes whole 32-bit registers
    /// (`NFT_REG32_SIZE`, include/uapi/linux/netfilter/nf_tables.h; nft's `ip saddr . tcp
    /// dport` sets have 8-byte keys).
    #[test]
    fn a_triple_key_pads_the_port_to_a_register() {
        let p = Pair {
            port: Some(1883),
            ..pair("10.0.0.2", "192.0.2.7")
        };
        assert_eq!(key(&p), [10, 0, 0, 2, 192, 0, 2, 7, 0x07, 0x5b, 0, 0]);
        let p6 = Pair {
            port: Some(443),
            ..pair("2001:db8::2", "2001:db8::7")
        };
        assert_eq!(key(&p6).len(), 36);
        assert_eq!(&key(&p6)[32..], [0x01, 0xbb, 0, 0]);
    }

    /// The bytes of one add, worked out by hand from the uapi headers (x86-64: little-endian
    /// host order for netlink's own fields, big-endian for nfgenmsg's res_id, the key and
    /// the timeout).
    #[test]
    fn one_add_is_the_message_the_headers_describe() {
        let p = pair("10.0.0.2", "192.0.2.7");
        let (buf, acks) = batch("portolan", &[Op::Add(&p, Some(90))], 100);
        assert_eq!(acks, [101]);
        // BEGIN: 16 header + 4 nfgenmsg = 20 bytes.
        assert_eq!(&buf[0..4], &20u32.to_ne_bytes());
        assert_eq!(&buf[4..6], &0x10u16.to_ne_bytes());
        assert_eq!(&buf[16..20], &[0, 0, 0, 10]);
        let m = &buf[20..];
        // NEWSETELEM: type 0x0a0c, flags REQUEST|ACK|CREATE = 0x405, seq 101, inet.
        assert_eq!(&m[4..6], &0x0a0cu16.to_ne_bytes());
        assert_eq!(&m[6..8], &0x0405u16.to_ne_bytes());
        assert_eq!(&m[8..12], &101u32.to_ne_bytes());
        assert_eq!(&m[16..20], &[1, 0, 0, 0]);
        // TABLE "portolan\0": 4 + 9 = 13, padded to 16.
        assert_eq!(&m[20..22], &13u16.to_ne_bytes());
        assert_eq!(&m[22..24], &1u16.to_ne_bytes());
        assert_eq!(&m[24..33], b"portolan\0");
        // SET "e_x_v4\0": 4 + 7 = 11, padded to 12.
        assert_eq!(&m[36..38], &11u16.to_ne_bytes());
        assert_eq!(&m[40..47], b"e_x_v4\0");
        // ELEMENTS { ELEM { KEY { VALUE(8 bytes) } TIMEOUT(u64) } }:
        // VALUE 12, KEY 16, TIMEOUT 12, ELEM 4+16+12 = 32, ELEMENTS 36.
        assert_eq!(&m[48..50], &36u16.to_ne_bytes());
        assert_eq!(&m[50..52], &(3u16 | 0x8000).to_ne_bytes());
        assert_eq!(&m[52..54], &32u16.to_ne_bytes());
        assert_eq!(&m[56..58], &16u16.to_ne_bytes());
        assert_eq!(&m[60..62], &12u16.to_ne_bytes());
        assert_eq!(&m[64..72], &[10, 0, 0, 2, 192, 0, 2, 7]);
        assert_eq!(&m[72..74], &12u16.to_ne_bytes());
        assert_eq!(&m[74..76], &4u16.to_ne_bytes());
        assert_eq!(&m[76..84], &90_000u64.to_be_bytes());
        assert_eq!(&m[0..4], &84u32.to_ne_bytes());
        // END.
        assert_eq!(&buf[104..108], &20u32.to_ne_bytes());
        assert_eq!(&buf[108..110], &0x11u16.to_ne_bytes());
        assert_eq!(buf.len(), 124);
    }

    #[test]
    fn a_refresh_is_add_delete_add_and_v6_keys_are_32_bytes() {
        let p = pair("2001:db8::2", "2001:db8::7");
        assert_eq!(key(&p).len(), 32);
        let o = ops(&[], std::slice::from_ref(&p));
        assert_eq!(
            o,
            [Op::Add(&p, None), Op::Delete(&p), Op::Add(&p, Some(90))]
        );
        let (_, acks) = batch("portolan", &o, u32::MAX);
        assert_eq!(acks, [0, 1, 2]);
    }

    #[test]
    fn acks_are_read_with_their_sequence_and_error() {
        // NLMSG_ERROR: header (16), error -2 (ENOENT), the request's header (16).
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&(-2i32).to_ne_bytes());
        m.extend_from_slice(&84u32.to_ne_bytes());
        m.extend_from_slice(&0x0a0cu16.to_ne_bytes());
        m.extend_from_slice(&0x405u16.to_ne_bytes());
        m.extend_from_slice(&7u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        let mut two = m.clone();
        two.extend_from_slice(&m);
        two[36 + 16..36 + 20].copy_from_slice(&0i32.to_ne_bytes());
        two[36 + 28..36 + 32].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(acks_in(&two), [(7, 2), (8, 0)]);
    }
}
