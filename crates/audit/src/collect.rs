//! Reading inputs into one flow table and one name table: the first phase of `audit` and
//! `learn`. Each input is read once, streaming; the flows of all inputs are matched together
//! afterwards, so a Zeek `dns.log` names the peers of a `conn.log` given beside it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

use crate::capture::{self, Frame, InputProblem};
use crate::decode::{self, proto, Packet, Skip};
use crate::dns::Names;
use crate::error::AuditError;
use crate::flowlog::netflow::Notes;
use crate::flowlog::{self, Sink};
use crate::flows::{FlowTable, ObservedFlow};
use crate::input::{self, Format};
use crate::time::Nanos;

/// What reading one input gave.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub path: String,
    pub format: Format,
    pub gzip: bool,
    /// Frames (captures) or lines (logs) read.
    pub records: u64,
    /// Where reading stopped early, if it did.
    pub problem: Option<InputProblem>,
    /// Flow records (IPFIX, NetFlow, nfdump, Suricata): records read, sampling, aggregation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_records: Option<Notes>,
}

/// Frames that gave no flow, by reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FrameStats {
    pub frames: u64,
    /// Frames shorter than on the wire (snap length).
    pub truncated: u64,
    pub not_ip: u64,
    pub fragments: u64,
    pub malformed: u64,
    /// Link types this reader does not know, with their frame counts.
    pub link_types: BTreeMap<u32, u64>,
}

/// The flows and names of every input read so far.
#[derive(Default)]
pub struct Collector {
    pub table: FlowTable,
    pub names: Names,
    pub frames: FrameStats,
    pub inputs: Vec<InputSummary>,
    /// Called every 1,048,576 frames with the number read so far, for a progress line.
    pub progress: Option<Box<dyn FnMut(u64) + Send>>,
}

/// The result of reading: flows, and the names their peers had.
pub struct Observed {
    pub flows: Vec<ObservedFlow>,
    pub names: Names,
    pub frames: FrameStats,
    pub inputs: Vec<InputSummary>,
}

impl Observed {
    /// The names `addr` had when the flow started (any time for flows without times).
    pub fn names_at(&self, addr: IpAddr, t: Option<Nanos>) -> Vec<String> {
        self.names.at(addr, t)
    }

    /// Whether any input stopped early.
    pub fn problems(&self) -> impl Iterator<Item = (&str, &InputProblem)> {
        self.inputs
            .iter()
            .filter_map(|i| i.problem.as_ref().map(|p| (i.path.as_str(), p)))
    }
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Reads one input to its end (or to its first problem, for captures).
    pub fn read(&mut self, path: &Path) -> Result<&InputSummary, AuditError> {
        let opened = input::open(path)?;
        if opened.format == Format::Pcap && !opened.gzip {
            if let Some(w) = capture::Windows::open(path) {
                if let Some(len) = w.file_len() {
                    self.table.reserve_for(len);
                }
                let (records, problem) = capture::read_windows(w, |f: &Frame<'_>| self.frame(f));
                self.inputs.push(InputSummary {
                    path: path.display().to_string(),
                    format: opened.format,
                    gzip: false,
                    records,
                    problem,
                    flow_records: None,
                });
                return Ok(self.inputs.last().expect("pushed just above"));
            }
        }
        Ok(self.read_opened(path, opened))
    }

    /// Reads an input from any reader (standard input, a decompressor, a test's bytes);
    /// `name` stands for it in errors and summaries.
    pub fn read_from(
        &mut self,
        name: &Path,
        reader: Box<dyn std::io::Read + Send>,
    ) -> Result<&InputSummary, AuditError> {
        let opened = input::open_reader(name, reader)?;
        Ok(self.read_opened(name, opened))
    }

    fn read_opened(&mut self, path: &Path, opened: input::Opened) -> &InputSummary {
        let format = opened.format;
        let gzip = opened.gzip;
        let (records, problem, notes) = match format {
            Format::Pcap | Format::Pcapng => {
                let (n, p) = capture::read(opened.reader, |f: &Frame<'_>| self.frame(f));
                (n, p, None)
            }
            fmt => {
                let mut sink = Sink {
                    flows: &mut self.table,
                    names: &mut self.names,
                };
                read_log(fmt, opened.reader, &mut sink)
            }
        };
        self.inputs.push(InputSummary {
            path: path.display().to_string(),
            format,
            gzip,
            records,
            problem,
            flow_records: notes,
        });
        self.inputs.last().expect("pushed just above")
    }

    /// Counts one captured frame.
    pub fn frame(&mut self, f: &Frame<'_>) {
        if let Ok(p) = &self.frames.decode(f, &mut self.progress) {
            dns_answer(&mut self.names, p, f.ts);
            self.table.observe(p, f.ts);
        }
    }

    pub fn finish(self) -> Observed {
        Observed {
            flows: self.table.into_flows(),
            names: self.names,
            frames: self.frames,
            inputs: self.inputs,
        }
    }
}

impl FrameStats {
    /// Counts one captured frame and decodes it; why not (counted by reason) when it gives no
    /// packet. Calls `progress` every 1,048,576 frames.
    ///
    /// Inlined always, with the simple decoding it calls: left a call, the packet came back
    /// through memory written field by field, and the caller's wide reads of it waited for
    /// those writes (perf put 4 % of one core's time on two such loads); and it hands on the
    /// decoder's `Result` as it is (turned into an `Option`, the packet was copied once more).
    /// Callers borrow the packet inside the `Result` (`if let Ok(p) = &…`): moved out of it,
    /// it was copied with the same wide reads of the same narrow writes, which cost 5 % of one
    /// core's time on `bench/audit-few.sh`'s capture (this attribute had also been lost).
    #[inline(always)]
    pub fn decode<'a>(
        &mut self,
        f: &Frame<'a>,
        progress: &mut Option<Box<dyn FnMut(u64) + Send>>,
    ) -> Result<Packet<'a>, Skip> {
        self.frames += 1;
        if self.frames & 0xf_ffff == 0 {
            if let Some(p) = progress {
                p(self.frames);
            }
        }
        if (f.data.len() as u64) < u64::from(f.orig_len) {
            self.truncated += 1;
        }
        let p = decode::frame(f.link, f.data);
        if let Err(skip) = &p {
            self.skipped(*skip, f.link);
        }
        p
    }

    /// Counts a frame that gave no packet, by reason.
    #[cold]
    fn skipped(&mut self, skip: Skip, link: u32) {
        match skip {
            Skip::NotIp => self.not_ip += 1,
            Skip::Fragment => self.fragments += 1,
            Skip::Malformed => self.malformed += 1,
            Skip::LinkType => *self.link_types.entry(link).or_default() += 1,
        }
    }

    /// Adds another part's counts.
    pub fn add(&mut self, o: &FrameStats) {
        self.frames += o.frames;
        self.truncated += o.truncated;
        self.not_ip += o.not_ip;
        self.fragments += o.fragments;
        self.malformed += o.malformed;
        for (k, v) in &o.link_types {
            *self.link_types.entry(*k).or_default() += v;
        }
    }
}

/// Whether a packet may carry a DNS answer: from port 53 or 5353, over UDP or TCP.
#[inline]
pub fn may_be_dns(p: &Packet<'_>) -> bool {
    (p.sport == 53 || p.sport == 5353) && (p.proto == proto::UDP || p.proto == proto::TCP)
}

/// Reads the DNS answer a packet from port 53 or 5353 carries, if it does.
#[inline]
pub fn dns_answer(names: &mut Names, p: &Packet<'_>, ts: Nanos) {
    if !may_be_dns(p) {
        return;
    }
    match p.proto {
        proto::UDP => {
            names.message(p.payload, ts);
        }
        proto::TCP if p.payload.len() > 2 => {
            // One DNS message per segment, behind its 2-byte length.
            let n = usize::from(u16::from_be_bytes([p.payload[0], p.payload[1]]));
            if let Some(m) = p.payload.get(2..2 + n) {
                names.message(m, ts);
            }
        }
        _ => {}
    }
}

/// Reads a flow log or flow records (any format but a capture) into `sink`: records read, the
/// problem that stopped reading early, the flow records' notes.
pub fn read_log(
    fmt: Format,
    reader: Box<dyn std::io::BufRead + Send>,
    sink: &mut Sink<'_>,
) -> (u64, Option<InputProblem>, Option<Notes>) {
    match fmt {
        Format::ZeekTsv => with_no_notes(flowlog::zeek::read_tsv(reader, sink)),
        Format::ZeekJson => with_no_notes(flowlog::zeek::read_json(reader, sink)),
        Format::Conntrack => with_no_notes(flowlog::conntrack::read(reader, sink)),
        Format::Ipfix | Format::NetflowV9 | Format::NetflowV5 => {
            let (n, p, k) = flowlog::netflow::read(reader, sink);
            (n, p, Some(k))
        }
        Format::NfdumpCsv => {
            let (n, p, k) = flowlog::nfdump::read(reader, sink);
            (n, p, Some(k))
        }
        Format::SuricataEve => {
            let (n, p, k) = flowlog::suricata::read(reader, sink);
            (n, p, Some(k))
        }
        _ => with_no_notes(flowlog::nftlog::read(reader, sink)),
    }
}

fn with_no_notes(
    (n, p): (u64, Option<InputProblem>),
) -> (u64, Option<InputProblem>, Option<Notes>) {
    (n, p, None)
}
