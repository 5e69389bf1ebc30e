//! Flow records exported by routers, firewalls and probes: IPFIX (RFC 7011), NetFlow v9
//! (RFC 3954) and NetFlow v5. Messages are decoded by the `netflow_parser` crate, whose
//! `AutoScopedParser` keeps the templates of each exporter and observation domain (v9: source
//! id) apart; this module frames messages and collects what they say about sampling; [`decode`]
//! reads the information elements audit needs and folds the records into flows.
//!
//! **Framing.** A file holds export messages back to back, as a collector writes the UDP
//! datagrams it receives (RFC 5655's IPFIX files are such a stream). An IPFIX message says its
//! length; a v5 message is 24 bytes and 48 per record; a v9 message does not say its length,
//! so its flowsets are walked until the stream ends or the next two bytes are 9 — a flowset id
//! reserved by RFC 3954 (ids 2–255), hence the start of the next message's header.
//!
//!
//! **Sampling.** Packet counts of a sampled export are of the sampled packets; a flow that
//! was never sampled is absent. Sampling intervals (IPFIX `samplingInterval`,
//! `samplingPacketInterval`, `samplerRandomInterval`, v9 options, the v5 header) are collected
//! in [`Notes`], which the report carries: "not seen" then does not prove "did not happen".

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use super::Sink;
use crate::capture::{InputProblem, ProblemKind};

mod decode;

pub use decode::{Decoder, Folder, Record};

/// The largest export message: a UDP datagram's payload.
pub const MAX_MESSAGE: usize = 65_535;

/// What the records said about themselves, beyond flows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notes {
    /// Records read (data records, not templates).
    pub records: u64,
    /// The largest 1-in-N packet sampling interval announced, if any was (N > 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<u64>,
    /// Records that stand for more than one flow (v9/IPFIX `flows` above 1, nfdump
    /// aggregation): counts are summed and single flows are not told apart.
    #[serde(skip_serializing_if = "is_zero")]
    pub aggregated: u64,
    /// Data records whose template was not (yet) known: skipped.
    #[serde(skip_serializing_if = "is_zero")]
    pub no_template: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Notes {
    /// Whether absence of a flow in these records proves nothing.
    pub fn incomplete(&self) -> bool {
        self.sampling.is_some() || self.aggregated > 0
    }

    pub fn merge(&mut self, other: &Notes) {
        self.records += other.records;
        self.sampling = self.sampling.max(other.sampling);
        self.aggregated += other.aggregated;
        self.no_template += other.no_template;
    }

    fn sampled(&mut self, n: u64) {
        if n > 1 {
            self.sampling = Some(self.sampling.map_or(n, |s| s.max(n)));
        }
    }
}

/// The export version a message starts with, if it is one this reader takes.
pub fn version(head: &[u8]) -> Option<u16> {
    let v = u16::from_be_bytes([*head.first()?, *head.get(1)?]);
    matches!(v, 5 | 9 | 10).then_some(v)
}

/// Whether the first bytes of an input look like an export message of `version`'s kind: the
/// header's length or count is plausible.
pub fn sniff(head: &[u8]) -> bool {
    match version(head) {
        Some(10) => {
            head.len() >= 16 && {
                let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                len >= 16 && (len <= head.len() || head.len() >= 8192)
            }
        }
        Some(9) => {
            head.len() >= 24 && {
                let id = u16::from_be_bytes([head[20], head[21]]);
                let len = u16::from_be_bytes([head[22], head[23]]);
                (id <= 1 || id >= 256) && len >= 4
            }
        }
        Some(5) => {
            head.len() >= 24 && {
                let count = u16::from_be_bytes([head[2], head[3]]);
                (1..=30).contains(&count)
            }
        }
        _ => false,
    }
}

/// The length of the message at the start of `buf`: `Ok(None)` when `buf` ends before it does
/// (and `eof` is false), `Err` when it is not a message.
pub fn message_len(buf: &[u8], eof: bool) -> Result<Option<usize>, String> {
    let Some(v) = version(buf) else {
        if buf.len() < 2 && !eof {
            return Ok(None);
        }
        return Err(match buf {
            [a, b, ..] => format!(
                "version {} is not NetFlow v5, v9 or IPFIX",
                u16::from_be_bytes([*a, *b])
            ),
            _ => "a stray byte after the last message".into(),
        });
    };
    let need = |n: usize| -> Result<Option<usize>, String> {
        if buf.len() >= n {
            Ok(Some(n))
        } else if eof {
            Err(format!(
                "the message needs {n} bytes, the input ends after {}",
                buf.len()
            ))
        } else {
            Ok(None)
        }
    };
    match v {
        10 => {
            if buf.len() < 4 {
                return need(16);
            }
            let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if len < 16 {
                return Err(format!("an IPFIX message of {len} bytes (at least 16)"));
            }
            need(len)
        }
        5 => {
            if buf.len() < 4 {
                return need(24);
            }
            let count = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if !(1..=30).contains(&count) {
                return Err(format!("a NetFlow v5 message of {count} records (1 to 30)"));
            }
            need(24 + 48 * count)
        }
        _ => {
            // v9: 20 bytes of header, then flowsets until the stream ends or the next
            // message's version (9, a reserved flowset id) takes a flowset's place.
            let mut off = 20;
            loop {
                if off > MAX_MESSAGE {
                    return Err(format!(
                        "a NetFlow v9 message longer than {MAX_MESSAGE} bytes"
                    ));
                }
                if off == buf.len() {
                    return if eof { Ok(Some(off)) } else { Ok(None) };
                }
                if buf.len() < off + 4 {
                    return if eof {
                        Err(format!(
                            "the input ends inside a NetFlow v9 flowset header at {off}"
                        ))
                    } else {
                        Ok(None)
                    };
                }
                let id = u16::from_be_bytes([buf[off], buf[off + 1]]);
                if id == 9 {
                    return Ok(Some(off));
                }
                let len = usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]]));
                if len < 4 {
                    return Err(format!("a NetFlow v9 flowset of {len} bytes (at least 4)"));
                }
                off += len;
                if off > buf.len() {
                    return if eof {
                        Err(format!(
                            "the input ends inside a NetFlow v9 flowset at {off}"
                        ))
                    } else {
                        Ok(None)
                    };
                }
            }
        }
    }
}

/// The exporter of messages read from a file: unknown.
pub const FILE_EXPORTER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Reads a stream of export messages. Returns the number of messages, the first problem
/// (reading stops at a framing error; a message the parser refuses is skipped) and the notes.
pub fn read<R: BufRead>(mut input: R, sink: &mut Sink<'_>) -> (u64, Option<InputProblem>, Notes) {
    let mut dec = Decoder::new();
    let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_MESSAGE);
    let mut start = 0usize;
    let mut offset = 0u64;
    let mut eof = false;
    let mut messages = 0u64;
    let mut first: Option<InputProblem> = None;
    loop {
        // Keep at least one whole message's worth of bytes ahead, or all that is left.
        if !eof && buf.len() - start < 2 * MAX_MESSAGE {
            buf.drain(..start);
            start = 0;
            let mut chunk = [0u8; 64 * 1024];
            match input.read(&mut chunk) {
                Ok(0) => eof = true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    first.get_or_insert(InputProblem {
                        offset,
                        kind: ProblemKind::Corrupt,
                        message: format!("read error: {e}"),
                    });
                    break;
                }
            }
            continue;
        }
        let rest = &buf[start..];
        if rest.is_empty() {
            break;
        }
        match message_len(rest, eof) {
            Ok(Some(n)) => {
                messages += 1;
                if let Err(why) = dec.message(FILE_EXPORTER, &rest[..n]) {
                    first.get_or_insert(InputProblem {
                        offset,
                        kind: ProblemKind::Corrupt,
                        message: format!("export message: {why}"),
                    });
                }
                start += n;
                offset += n as u64;
            }
            Ok(None) => {
                // Not enough bytes although the buffer holds two messages' worth: cannot be.
                first.get_or_insert(InputProblem {
                    offset,
                    kind: ProblemKind::Corrupt,
                    message: "an export message longer than a UDP datagram".into(),
                });
                break;
            }
            Err(why) => {
                first.get_or_insert(InputProblem {
                    offset,
                    kind: if eof && why.contains("ends") {
                        ProblemKind::Truncated
                    } else {
                        ProblemKind::Corrupt
                    },
                    message: why,
                });
                break;
            }
        }
    }
    let (flows, notes) = dec.finish();
    for f in flows {
        sink.flows.push(f);
    }
    (messages, first, notes)
}
