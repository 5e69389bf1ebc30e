//! Streaming pcap and pcapng reading with `pcap-parser`: one pass, a fixed buffer (grown only
//! for a record larger than it), each frame handed on with its time and link type. A corrupt
//! record or a file cut short stops the reading with the byte offset of the record; every
//! frame before it has been handed on.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use serde::Serialize;

use crate::time::{Nanos, NANOS};

/// Where and why reading an input stopped early.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputProblem {
    /// Byte offset of the record that could not be read (in the decompressed stream for gzip
    /// input).
    pub offset: u64,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The input ends inside a record (a capture still being written, or cut off).
    Truncated,
    /// A record that is not what the format says.
    Corrupt,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            ProblemKind::Truncated => "truncated",
            ProblemKind::Corrupt => "corrupt",
        };
        write!(f, "{k} at byte {}: {}", self.offset, self.message)
    }
}

/// One captured frame.
pub struct Frame<'a> {
    pub ts: Nanos,
    pub link: u32,
    pub data: &'a [u8],
    /// Length on the wire (more than `data.len()` when the snap length cut it).
    pub orig_len: u32,
}

const START: usize = 1 << 20;
const MAX: usize = 64 << 20;
/// Largest legacy record a sane capture holds (libpcap's maximum snap length).
const MAX_SNAPLEN: u32 = 262_144;

/// Reads a pcap or pcapng stream, calling `each` per frame. Returns the number of frames and
/// the problem that stopped the reading early, if one did.
pub fn read<R, F>(input: R, mut each: F) -> (u64, Option<InputProblem>)
where
    R: Read + Send,
    F: FnMut(&Frame<'_>),
{
    let mut reader = match create_reader(START, input) {
        Ok(r) => r,
        Err(e) => {
            return (
                0,
                // Without a file header nothing can be read: not a capture cut short but no
                // capture at all, which must not pass as an audit of nothing.
                Some(InputProblem {
                    offset: 0,
                    kind: ProblemKind::Corrupt,
                    message: format!("file header unreadable: {e}"),
                }),
            );
        }
    };
    let mut frames = 0u64;
    // Legacy: link type, nanosecond timestamps, snap length.
    let mut legacy = (1u32, false, MAX_SNAPLEN);
    // pcapng: per interface of the current section, link type, units per second, offset.
    let mut ifaces: Vec<(u32, u64, i64)> = Vec::new();
    let mut last_ts: Nanos = 0;
    let mut capacity = START;
    let mut stalls = 0;
    let problem = |offset: usize, kind, message: String| {
        Some(InputProblem {
            offset: offset as u64,
            kind,
            message,
        })
    };
    loop {
        let at = reader.consumed();
        let result = match reader.next() {
            Ok((n, block)) => {
                stalls = 0;
                let mut bad: Option<String> = None;
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy = (
                            h.network.0 as u32,
                            h.is_nanosecond_precision(),
                            h.snaplen.max(MAX_SNAPLEN),
                        );
                    }
                    PcapBlockOwned::Legacy(b) => {
                        if b.caplen > legacy.2 {
                            bad = Some(format!(
                                "record length {} exceeds the snap length; not a pcap record",
                                b.caplen
                            ));
                        } else {
                            let frac = if legacy.1 {
                                i64::from(b.ts_usec)
                            } else {
                                i64::from(b.ts_usec) * 1000
                            };
                            last_ts = i64::from(b.ts_sec) * NANOS + frac;
                            frames += 1;
                            each(&Frame {
                                ts: last_ts,
                                link: legacy.0,
                                data: b.data,
                                orig_len: b.origlen,
                            });
                        }
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let units = idb.ts_resolution().unwrap_or(1_000_000);
                        ifaces.push((idb.linktype.0 as u32, units, idb.ts_offset()));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match ifaces.get(epb.if_id as usize) {
                            Some(&(link, units, offset)) => {
                                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                last_ts = to_nanos(raw, units, offset);
                                frames += 1;
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                each(&Frame {
                                    ts: last_ts,
                                    link,
                                    data: &epb.data[..caplen],
                                    orig_len: epb.origlen,
                                });
                            }
                            None => {
                                bad = Some(format!(
                                    "packet of interface {}, which no interface block declares",
                                    epb.if_id
                                ))
                            }
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => match ifaces.first() {
                        Some(&(link, _, _)) => {
                            frames += 1;
                            each(&Frame {
                                ts: last_ts,
                                link,
                                data: spb.data,
                                orig_len: spb.origlen,
                            });
                        }
                        None => bad = Some("simple packet before any interface block".into()),
                    },
                    _ => {}
                }
                if let Some(m) = bad {
                    return (frames, problem(at, ProblemKind::Corrupt, m));
                }
                reader.consume(n);
                continue;
            }
            Err(e) => e.to_owned_vec(),
        };
        match result {
            PcapError::Eof => return (frames, None),
            PcapError::Incomplete(_) => {
                let before = reader.data().len();
                if let Err(e) = reader.refill() {
                    let m = format!("read error: {e}");
                    return (frames, problem(at, ProblemKind::Corrupt, m));
                }
                if reader.data().len() == before {
                    if reader.reader_exhausted() {
                        if before == 0 {
                            return (frames, None);
                        }
                        let m = format!("the input ends inside a record ({before} bytes left)");
                        return (frames, problem(at, ProblemKind::Truncated, m));
                    }
                    stalls += 1;
                    if stalls > 2 && !grow(&mut *reader, &mut capacity) {
                        let m = "a record longer than 64 MiB: corrupt length field".to_string();
                        return (frames, problem(at, ProblemKind::Corrupt, m));
                    }
                }
            }
            PcapError::UnexpectedEof => {
                let left = reader.data().len();
                let m = format!("the input ends inside a record ({left} bytes left)");
                return (frames, problem(at, ProblemKind::Truncated, m));
            }
            PcapError::BufferTooSmall => {
                if !grow(&mut *reader, &mut capacity) {
                    let m = "a record longer than 64 MiB: corrupt length field".to_string();
                    return (frames, problem(at, ProblemKind::Corrupt, m));
                }
            }
            PcapError::ReadError => {
                let m = "read error (a corrupt gzip stream, or a failing device)".to_string();
                return (frames, problem(at, ProblemKind::Corrupt, m));
            }
            PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
                let m = format!("unreadable record ({k:?})");
                return (frames, problem(at, ProblemKind::Corrupt, m));
            }
            e => return (frames, problem(at, ProblemKind::Corrupt, e.to_string())),
        }
    }
}

fn grow(reader: &mut dyn PcapReaderIterator, capacity: &mut usize) -> bool {
    if *capacity >= MAX {
        return false;
    }
    *capacity *= 2;
    reader.grow(*capacity)
}

/// A pcapng timestamp in `units` per second, plus `offset` seconds, as nanoseconds.
fn to_nanos(raw: u64, units: u64, offset: i64) -> Nanos {
    let units = units.max(1);
    let secs = i64::try_from(raw / units).unwrap_or(i64::MAX / NANOS);
    let frac = u128::from(raw % units) * 1_000_000_000 / u128::from(units);
    (secs.saturating_add(offset))
        .saturating_mul(NANOS)
        .saturating_add(i64::try_from(frac).unwrap_or(0))
}
