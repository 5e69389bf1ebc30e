//! Reading inputs into one flow table and one name table: the first phase of `audit` and
//! `learn`. Each input is read once, streaming; the flows of all inputs are matched together
//! afterwards, so a Zeek `dns.log` names the peers of a `conn.log` given beside it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

use crate::capture::{self, Frame, InputProblem};
use crate::decode::{self, proto, Skip};
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
        let mut notes = None;
        let (records, problem) = match opened.format {
            Format::Pcap | Format::Pcapng => {
                capture::read(opened.reader, |f: &Frame<'_>| self.frame(f))
            }
            fmt => {
                let mut sink = Sink {
                    flows: &mut self.table,
                    names: &mut self.names,
                };
                match fmt {
                    Format::ZeekTsv => flowlog::zeek::read_tsv(opened.reader, &mut sink),
                    Format::ZeekJson => flowlog::zeek::read_json(opened.reader, &mut sink),
                    Format::Conntrack => flowlog::conntrack::read(opened.reader, &mut sink),
                    Format::Ipfix | Format::NetflowV9 | Format::NetflowV5 => {
                        let (n, p, k) = flowlog::netflow::read(opened.reader, &mut sink);
                        notes = Some(k);
                        (n, p)
                    }
                    Format::NfdumpCsv => {
                        let (n, p, k) = flowlog::nfdump::read(opened.reader, &mut sink);
                        notes = Some(k);
                        (n, p)
                    }
                    Format::SuricataEve => {
                        let (n, p, k) = flowlog::suricata::read(opened.reader, &mut sink);
                        notes = Some(k);
                        (n, p)
                    }
                    _ => flowlog::nftlog::read(opened.reader, &mut sink),
                }
            }
        };
        self.inputs.push(InputSummary {
            path: path.display().to_string(),
            format: opened.format,
            gzip: opened.gzip,
            records,
            problem,
            flow_records: notes,
        });
        self.inputs.last().expect("pushed just above")
    }

    /// Counts one captured frame.
    pub fn frame(&mut self, f: &Frame<'_>) {
        self.frames.frames += 1;
        if self.frames.frames & 0xf_ffff == 0 {
            if let Some(p) = &mut self.progress {
                p(self.frames.frames);
            }
        }
        if (f.data.len() as u64) < u64::from(f.orig_len) {
            self.frames.truncated += 1;
        }
        match decode::frame(f.link, f.data) {
            Ok(p) => {
                if p.sport == 53 || p.sport == 5353 {
                    match p.proto {
                        proto::UDP => {
                            self.names.message(p.payload, f.ts);
                        }
                        proto::TCP if p.payload.len() > 2 => {
                            // One DNS message per segment, behind its 2-byte length.
                            let n = usize::from(u16::from_be_bytes([p.payload[0], p.payload[1]]));
                            if let Some(m) = p.payload.get(2..2 + n) {
                                self.names.message(m, f.ts);
                            }
                        }
                        _ => {}
                    }
                }
                self.table.observe(&p, f.ts);
            }
            Err(Skip::NotIp) => self.frames.not_ip += 1,
            Err(Skip::Fragment) => self.frames.fragments += 1,
            Err(Skip::Malformed) => self.frames.malformed += 1,
            Err(Skip::LinkType) => *self.frames.link_types.entry(f.link).or_default() += 1,
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
