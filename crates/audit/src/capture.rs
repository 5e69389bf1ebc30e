//! Streaming pcap and pcapng reading with `pcap-parser`: one pass, a fixed buffer (grown only
//! for a record larger than it), each frame handed on with its time and link type. A corrupt
//! record or a file cut short stops the reading with the byte offset of the record; every
//! frame before it has been handed on.
//!
//! A plain legacy pcap file (not compressed, not standard input) is read by [`Windows`]
//! instead: large reads, the record headers walked by hand (a record is a 16-byte header and
//! its captured bytes, in the file's byte order: libpcap's `pcap-savefile(5)`), so that the
//! records of a window can be handed to several threads at once. The first record it cannot
//! take whole (cut short, longer than the snap length allows, or after a read error), and
//! everything after it, goes through [`read`], so problems are found and told exactly as for
//! any other capture.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

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

/// Bytes read per window of [`Windows`]: 128 KiB, so that the window, and the flow table's
/// lines the packets touch, stay in the core's cache while its records are decoded (1 MiB
/// windows took 10 % more CPU time on `bench/audit-few.sh`'s capture). A record larger than a
/// window grows it (up to the largest record taken).
pub const WINDOW: usize = 128 << 10;

/// A plain legacy pcap file, read in windows of whole records (see the module doc).
pub struct Windows {
    file: File,
    header: [u8; 24],
    link: u32,
    nanos: bool,
    big: bool,
    /// The largest record length taken (as [`read`]: the snap length, at least libpcap's).
    limit: u32,
    buf: Vec<u8>,
    /// `buf[..filled]` holds file data; `buf[..used]` the records of the current window.
    filled: usize,
    used: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Records in the windows before the current one.
    before: u64,
    /// Offsets in `buf` of the current window's records.
    starts: Vec<u32>,
    eof: bool,
    failed: bool,
    /// File offset of the first record the windows leave to [`read`].
    tail: Option<u64>,
    /// File offset the windows end at ([`Windows::range`]): what lies after is not read.
    end: Option<u64>,
}

/// What a look at part of a file found ([`Windows::record_near`]).
enum Near {
    At(u64),
    /// No record start within the bytes looked at.
    Nowhere,
    /// A chain ran past the bytes looked at: more must be read.
    Open,
}

/// One window of records.
pub struct Window<'a> {
    data: &'a [u8],
    /// Offsets of the records in `data`.
    pub starts: &'a [u32],
    /// Records of the file before this window's first.
    pub before: u64,
    link: u32,
    nanos: bool,
    big: bool,
}

impl Window<'_> {
    fn word(&self, at: usize) -> u32 {
        let b = [
            self.data[at],
            self.data[at + 1],
            self.data[at + 2],
            self.data[at + 3],
        ];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// The `i`th record of the window, as [`read`] hands it on.
    #[inline]
    pub fn frame(&self, i: usize) -> Frame<'_> {
        let at = self.starts[i] as usize;
        let (sec, frac, caplen, orig) = (
            self.word(at),
            self.word(at + 4),
            self.word(at + 8),
            self.word(at + 12),
        );
        let frac = if self.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1000
        };
        Frame {
            ts: i64::from(sec) * NANOS + frac,
            link: self.link,
            data: &self.data[at + 16..at + 16 + caplen as usize],
            orig_len: orig,
        }
    }
}

impl Windows {
    /// The file at `path` when it is a plain legacy pcap file (`None` for anything else:
    /// standard input, gzip, pcapng, a file that cannot be opened; [`read`] takes those).
    pub fn open(path: &Path) -> Option<Windows> {
        Windows::open_with(path, WINDOW)
    }

    /// [`Windows::open`] with windows of `window` bytes (tests read with small ones).
    pub fn open_with(path: &Path, window: usize) -> Option<Windows> {
        if path.as_os_str() == "-" {
            return None;
        }
        let mut file = File::open(path).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut header = [0u8; 24];
        file.read_exact(&mut header).ok()?;
        // The magic as `pcap-parser` reads it (little-endian): microseconds or nanoseconds,
        // in either byte order.
        let (big, nanos) = match u32::from_le_bytes([header[0], header[1], header[2], header[3]]) {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let word = |at: usize| {
            let b = [header[at], header[at + 1], header[at + 2], header[at + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (snaplen, link) = (word(16), word(20));
        Some(Windows {
            file,
            header,
            link,
            nanos,
            big,
            limit: snaplen.max(MAX_SNAPLEN),
            buf: vec![0; window.max(16)],
            filled: 0,
            used: 0,
            base: 24,
            before: 0,
            starts: Vec::new(),
            eof: false,
            failed: false,
            tail: None,
            end: None,
        })
    }

    /// Reads the records from file offset `start` (where a record must begin) up to `end`
    /// (`None`: the file's end) instead of the whole file: one part of a file read on several
    /// threads (`parallel`). A record that crosses `end` is not taken: the windows stop
    /// before it, as before a record they cannot take ([`Windows::stopped_at`]).
    pub fn range(mut self, start: u64, end: Option<u64>) -> Option<Windows> {
        self.file.seek(SeekFrom::Start(start)).ok()?;
        self.base = start;
        self.end = end;
        Some(self)
    }

    /// Where the windows stopped before the end of their range (a record they could not
    /// take, or one crossing the range's end), if they did; `None` while windows remain, and
    /// after a range read to its end exactly.
    pub fn stopped_at(&self) -> Option<u64> {
        self.tail
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> Option<u64> {
        self.file.metadata().ok().map(|m| m.len())
    }

    /// Where near `guess` (or after it, within `scan` bytes) a record seems to begin: the
    /// first offset from which `chain` record headers in a row are plausible (a captured
    /// length within the snap length and the wire length, a fraction of a second under one
    /// second, a time within a year of `near`'s seconds) and lie within the file (a chain
    /// that runs past what is read, `scan` bytes and 256 KiB, counts after 4 headers). A guess:
    /// reading the part before it tells whether a record really begins there (it ends
    /// there exactly), and `split` reads on from there when not.
    pub fn record_near(&self, guess: u64, scan: usize, chain: usize, near: u32) -> Option<u64> {
        let len = self.file_len()?;
        let want = scan + (256 << 10);
        // Most records are short: a first look at 64 KiB decides, unless a chain it finds
        // runs past it (the whole read then decides, as it alone would).
        let first = 64 << 10;
        if first < want {
            match self.chain_near(guess, len, first, scan, chain, near, false)? {
                Near::At(at) => return Some(at),
                Near::Nowhere if first >= scan => return None,
                _ => {}
            }
        }
        match self.chain_near(guess, len, want, scan, chain, near, true)? {
            Near::At(at) => Some(at),
            _ => None,
        }
    }

    /// [`Windows::record_near`] on `want` bytes from `guess`; with `whole`, a chain that
    /// runs past them counts after 4 headers, without, it leaves the answer open.
    #[allow(clippy::too_many_arguments)]
    fn chain_near(
        &self,
        guess: u64,
        len: u64,
        want: usize,
        scan: usize,
        chain: usize,
        near: u32,
        whole: bool,
    ) -> Option<Near> {
        use std::os::unix::fs::FileExt as _;
        let mut buf = vec![0u8; want.min(usize::try_from(len.saturating_sub(guess)).ok()?)];
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], guess + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        let buf = &buf[..got];
        // Read to the file's end: nothing lies past the buffer.
        let whole = whole || guess + got as u64 >= len;
        let word = |at: usize| -> Option<u32> {
            let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
            Some(if self.big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let frac_max = if self.nanos { 1_000_000_000 } else { 1_000_000 };
        let plausible = |at: usize| -> Option<usize> {
            let (sec, frac, cap, orig) = (word(at)?, word(at + 4)?, word(at + 8)?, word(at + 12)?);
            let ok = frac < frac_max
                && sec.abs_diff(near) < 366 * 86_400
                && cap <= self.limit
                && cap <= orig
                && guess + (at + 16) as u64 + u64::from(cap) <= len;
            ok.then_some(at + 16 + cap as usize)
        };
        for start in 0..scan.min(buf.len()) {
            let mut at = start;
            let mut k = 0;
            let found = loop {
                if k == chain || guess + at as u64 == len {
                    break true;
                }
                // A chain that reaches the file's end is whole.
                if at + 16 > buf.len() {
                    if !whole {
                        return Some(Near::Open);
                    }
                    if k >= 4 {
                        break true;
                    }
                }
                match plausible(at) {
                    Some(next) => at = next,
                    None => break false,
                }
                k += 1;
            };
            if found {
                return Some(Near::At(guess + start as u64));
            }
        }
        Some(Near::Nowhere)
    }

    /// The seconds of the first record's time, if the file has a record.
    pub fn first_seconds(&self) -> Option<u32> {
        use std::os::unix::fs::FileExt as _;
        let mut b = [0u8; 4];
        self.file.read_exact_at(&mut b, 24).ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// The next window of whole records; `None` at the end of what windows take.
    pub fn next_window(&mut self) -> Option<Window<'_>> {
        if self.tail.is_some() {
            return None;
        }
        self.buf.copy_within(self.used..self.filled, 0);
        self.base += self.used as u64;
        self.filled -= self.used;
        self.used = 0;
        self.before += self.starts.len() as u64;
        self.starts.clear();
        let room = match self.end {
            Some(end) => usize::try_from(end.saturating_sub(self.base))
                .unwrap_or(usize::MAX)
                .min(self.buf.len()),
            None => self.buf.len(),
        };
        while !self.eof && self.filled < room {
            match self.file.read(&mut self.buf[self.filled..room]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    self.failed = true;
                }
            }
        }
        if self
            .end
            .is_some_and(|end| self.base + self.filled as u64 >= end)
        {
            // The range's end: nothing after it is read.
            self.eof = true;
        }
        let big = self.big;
        let word = |b: &[u8]| {
            let b = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let mut p = 0usize;
        let mut grow = false;
        let stop = loop {
            if self.filled - p < 16 {
                break self.eof && (self.filled > p || self.failed);
            }
            let caplen = word(&self.buf[p + 8..p + 12]);
            // A record longer than the snap length allows: for `read`.
            if caplen > self.limit {
                break true;
            }
            // Longer than the window: the window ends before it, and grows when the record
            // comes first.
            if 16 + caplen as usize > self.buf.len() {
                grow = p == 0;
                break false;
            }
            let end = p + 16 + caplen as usize;
            if end > self.filled {
                break self.eof;
            }
            self.starts.push(p as u32);
            p = end;
        };
        self.used = p;
        if grow {
            self.buf.resize(16 + self.limit as usize, 0);
            return self.next_window();
        }
        if stop {
            self.tail = Some(self.base + p as u64);
        }
        if self.starts.is_empty() {
            return None;
        }
        Some(Window {
            data: &self.buf[..p],
            starts: &self.starts,
            before: self.before,
            link: self.link,
            nanos: self.nanos,
            big: self.big,
        })
    }

    /// Records in the windows so far.
    pub fn records(&self) -> u64 {
        self.before + self.starts.len() as u64
    }

    /// After the last window: reads what the windows left with [`read`] (frames to `each`),
    /// and returns the file's records and problem as [`read`] gives them for the whole file.
    pub fn finish<F: FnMut(&Frame<'_>)>(mut self, each: F) -> (u64, Option<InputProblem>) {
        let records = self.before + self.starts.len() as u64;
        let Some(at) = self.tail else {
            return (records, None);
        };
        if let Err(e) = self.file.seek(SeekFrom::Start(at)) {
            let problem = InputProblem {
                offset: at,
                kind: ProblemKind::Corrupt,
                message: format!("read error: {e}"),
            };
            return (records, Some(problem));
        }
        // The file's header, then the file from the record on: offsets in this stream are
        // the file's, less `at - 24`.
        let rest = std::io::Cursor::new(self.header).chain(self.file);
        let (n, problem) = read(rest, each);
        let problem = problem.map(|mut p| {
            p.offset = p.offset + at - 24;
            p
        });
        (records + n, problem)
    }
}

/// Reads a plain legacy pcap file window by window, calling `each` per frame: what [`read`]
/// gives for the same file.
pub fn read_windows<F: FnMut(&Frame<'_>)>(
    mut w: Windows,
    mut each: F,
) -> (u64, Option<InputProblem>) {
    while let Some(win) = w.next_window() {
        for i in 0..win.starts.len() {
            each(&win.frame(i));
        }
    }
    w.finish(each)
}
