//! Reading on every core (`audit --jobs N`), with the result one core gives.
//!
//! Plain pcap files (when every capture given is one): cut in stretches of time, one thread
//! each, their tables joined in order ([`crate::split`]).
//!
//! Other captures: one reader thread reads the captures in the order given, decodes each frame and
//! hands the packet to the shard [`crate::flows::shard_of`] names: every packet of a flow, both
//! directions, and the ICMP errors quoting it reach one shard, whose table sees them in input
//! order. Each packet carries its place in the inputs (input index, frame index), and a flow
//! the number of the packet that opened it, so the flows of all shards sort back into the
//! order of first appearance that one table gives. DNS answers are read by the shard that
//! receives them into a recording name table; the recordings are replayed into one table in
//! input order before any flow is judged, so a device's DNS answer names the peers of flows
//! that other shards counted. ICMP errors quoting no flow of their shard are counted last, in
//! input order, in a table of their own (see `flows`).
//!
//! Flow logs and flow records: each input is read by one thread into its own table, numbered
//! after its index, with a recording name table; they run beside the captures' shards.
//!
//! Packets go to the shards in batches of [`BATCH`], with the transport payload copied only
//! where a shard reads it (DNS answers, the quote of an ICMP error).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::capture::{self, Frame, InputProblem, Window, Windows};
use crate::collect::{self, FrameStats, InputSummary, Observed};
use crate::decode::{IcmpKind, Packet};
use crate::dns::Names;
use crate::error::AuditError;
use crate::flowlog::netflow::Notes;
use crate::flowlog::Sink;
use crate::flows::{self, FlowTable, ObservedFlow, Orphan};
use crate::input::{self, Opened};
use crate::time::Nanos;

/// Bytes of a plain pcap file per window decoded on every thread: larger than one thread's
/// (`capture::WINDOW`), since each window costs a start of the decoding threads.
pub const WINDOW: usize = 4 << 20;
/// Packets per batch handed to a shard.
pub const BATCH: usize = 4096;
/// Batches queued per shard before the reader waits.
const QUEUE: usize = 8;
/// An input's index, shifted, starts its numbers: up to 2^44 frames or records per input.
const INPUT_SHIFT: u32 = 44;

/// The number a flow or name opened by record `record` (from 1) of input `input` gets.
fn place(input: usize, record: u64) -> u64 {
    ((input as u64) << INPUT_SHIFT) | record
}

/// The cores this machine offers (1 when it cannot tell).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// One packet in a batch: the decoded facts, and where its copied payload lies.
struct Queued {
    seq: u64,
    ts: Nanos,
    packet: Packet<'static>,
    payload: (usize, usize),
}

#[derive(Default)]
struct Batch {
    packets: Vec<Queued>,
    bytes: Vec<u8>,
}

impl Batch {
    fn push(&mut self, p: &Packet<'_>, seq: u64, ts: Nanos) {
        let copy = collect::may_be_dns(p) || matches!(p.icmp, Some((_, _, IcmpKind::Error)));
        let start = self.bytes.len();
        if copy {
            self.bytes.extend_from_slice(p.payload);
        }
        self.packets.push(Queued {
            seq,
            ts,
            packet: Packet {
                src: p.src,
                dst: p.dst,
                proto: p.proto,
                sport: p.sport,
                dport: p.dport,
                flags: p.flags,
                icmp: p.icmp,
                id: p.id,
                ip_len: p.ip_len,
                payload: &[],
                vlan: p.vlan,
            },
            payload: (start, self.bytes.len()),
        });
    }

    fn clear(&mut self) {
        self.packets.clear();
        self.bytes.clear();
    }
}

/// What one shard counted.
struct Shard {
    flows: Vec<(u64, ObservedFlow)>,
    orphans: Vec<Orphan>,
    names: Names,
}

/// What one flow log gave.
struct LogPart {
    index: usize,
    flows: Vec<(u64, ObservedFlow)>,
    names: Names,
    summary: InputSummary,
}

fn shard_worker(rx: mpsc::Receiver<Batch>, back: mpsc::Sender<Batch>) -> Shard {
    let mut table = FlowTable::shard();
    let mut names = Names::recording();
    for mut batch in rx {
        for q in &batch.packets {
            let mut p: Packet<'_> = q.packet.clone();
            p.payload = &batch.bytes[q.payload.0..q.payload.1];
            names.place = q.seq;
            collect::dns_answer(&mut names, &p, q.ts);
            table.observe_seq(&p, q.ts, q.seq);
        }
        batch.clear();
        // The reader may have finished: a batch not taken back is dropped.
        let _ = back.send(batch);
    }
    let orphans = table.orphans.take().unwrap_or_default();
    Shard {
        flows: table.into_numbered(),
        orphans,
        names,
    }
}

/// What the reader of the captures gave: per capture its index, records and problem.
struct Read {
    frames: FrameStats,
    inputs: Vec<(usize, u64, Option<InputProblem>)>,
}

/// What reading the captures gave: frame counts, per capture its index, records and
/// problem, and (read in stretches) the flows and DNS recordings.
#[derive(Default)]
struct Captured {
    frames: FrameStats,
    inputs: Vec<(usize, u64, Option<InputProblem>)>,
    flows: Vec<Vec<(u64, ObservedFlow)>>,
    names: Vec<Names>,
    /// Read in stretches with no flow log beside them: the flows and the DNS answers' table,
    /// final.
    whole: Option<(Vec<ObservedFlow>, Names)>,
}

/// Decodes records `from..from + len` of a window into `out`, one (empty) batch per shard.
fn decode_run(
    win: &Window<'_>,
    from: usize,
    len: usize,
    index: usize,
    mut out: Vec<Batch>,
) -> (FrameStats, Vec<Batch>) {
    let n = out.len();
    let mut stats = FrameStats::default();
    let mut no_progress: Option<Box<dyn FnMut(u64) + Send>> = None;
    for i in from..(from + len).min(win.starts.len()) {
        let f = win.frame(i);
        if let Ok(p) = &stats.decode(&f, &mut no_progress) {
            let s = flows::shard_of(p, n);
            out[s].push(p, place(index, win.before + i as u64 + 1), f.ts);
        }
    }
    (stats, out)
}

/// The reader's side of the shards: a batch per shard being filled.
struct Feed<'a> {
    batches: Vec<Batch>,
    frames: FrameStats,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
    txs: &'a [mpsc::SyncSender<Batch>],
    back: &'a mpsc::Receiver<Batch>,
}

impl Feed<'_> {
    /// Decodes one frame, numbered `seq`, into its shard's batch.
    fn frame(&mut self, f: &Frame<'_>, seq: u64) {
        let Ok(p) = &self.frames.decode(f, &mut self.progress) else {
            return;
        };
        let s = flows::shard_of(p, self.txs.len());
        let b = &mut self.batches[s];
        b.push(p, seq, f.ts);
        if b.packets.len() >= BATCH {
            let fresh = self.back.try_recv().unwrap_or_else(|_| Batch {
                packets: Vec::with_capacity(BATCH),
                bytes: Vec::new(),
            });
            let full = std::mem::replace(b, fresh);
            // A shard only stops when its channel closes; a failed send cannot happen.
            let _ = self.txs[s].send(full);
        }
    }

    /// Sends every batch that holds packets.
    fn flush(&mut self) {
        for (s, b) in self.batches.iter_mut().enumerate() {
            if !b.packets.is_empty() {
                let _ = self.txs[s].send(std::mem::take(b));
            }
        }
    }

    /// Decodes a window's records on one thread per shard, each a consecutive run of them,
    /// and sends their batches run by run: each shard still takes its packets in input order.
    fn window(&mut self, win: &Window<'_>, index: usize) {
        let n = self.txs.len();
        let run = win.starts.len().div_ceil(n);
        // Batches the shards are done with, reused: fresh ones of this size would each be
        // mapped and faulted in anew.
        let mut spare: Vec<Batch> = std::iter::from_fn(|| self.back.try_recv().ok())
            .take(n * n)
            .collect();
        let parts: Vec<(FrameStats, Vec<Batch>)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..win.starts.len())
                .step_by(run.max(1))
                .map(|from| {
                    let out: Vec<Batch> = (0..n).map(|_| spare.pop().unwrap_or_default()).collect();
                    scope.spawn(move || decode_run(win, from, run, index, out))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("a decoding thread panicked"))
                .collect()
        });
        let before = self.frames.frames >> 20;
        for (stats, out) in parts {
            self.frames.add(&stats);
            for (s, b) in out.into_iter().enumerate() {
                if !b.packets.is_empty() {
                    let _ = self.txs[s].send(b);
                }
            }
        }
        if self.frames.frames >> 20 != before {
            if let Some(p) = &mut self.progress {
                p(self.frames.frames);
            }
        }
    }
}

/// Reads the captures in order, handing each packet to its shard. A plain legacy pcap file is
/// read in windows whose records are decoded on as many threads as there are shards
/// ([`Feed::window`]).
fn reader(
    captures: Vec<(usize, Opened, Option<Windows>)>,
    txs: Vec<mpsc::SyncSender<Batch>>,
    back: &mpsc::Receiver<Batch>,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
) -> Read {
    let n = txs.len();
    let mut feed = Feed {
        batches: (0..n).map(|_| Batch::default()).collect(),
        frames: FrameStats::default(),
        progress,
        txs: &txs,
        back,
    };
    let mut inputs = Vec::new();
    for (index, opened, windows) in captures {
        let (count, problem) = match windows {
            None => {
                let mut record = 0u64;
                capture::read(opened.reader, |f: &Frame<'_>| {
                    record += 1;
                    feed.frame(f, place(index, record));
                })
            }
            Some(mut w) => {
                // What earlier captures left in the batches goes first.
                feed.flush();
                while let Some(win) = w.next_window() {
                    feed.window(&win, index);
                }
                // The records the windows left (a record cut short or corrupt, and what
                // follows) are read as any capture's, numbered on.
                let mut record = w.records();
                w.finish(|f: &Frame<'_>| {
                    record += 1;
                    feed.frame(f, place(index, record));
                })
            }
        };
        inputs.push((index, count, problem));
    }
    let Feed {
        batches, frames, ..
    } = feed;
    for (s, b) in batches.into_iter().enumerate() {
        if !b.packets.is_empty() {
            let _ = txs[s].send(b);
        }
    }
    Read { frames, inputs }
}

/// Reads one flow log (any format but a capture) into a table of its own.
fn read_log(index: usize, path: &Path, opened: Opened) -> LogPart {
    let mut table = FlowTable::after(place(index, 0));
    let mut names = Names::recording();
    names.place = place(index, 0);
    let (records, problem, notes) = {
        let mut sink = Sink {
            flows: &mut table,
            names: &mut names,
        };
        collect::read_log(opened.format, opened.reader, &mut sink)
    };
    LogPart {
        index,
        flows: table.into_numbered(),
        names,
        summary: InputSummary {
            path: path.display().to_string(),
            format: opened.format,
            gzip: opened.gzip,
            records,
            problem,
            flow_records: notes,
        },
    }
}

/// Reads every input on `jobs` threads (plain pcap files in stretches of time, other
/// captures in shards, flow logs one per thread at most `jobs` at a time); the result is what
/// [`crate::Collector`] gives reading them in order on one core. An input that cannot be
/// opened is an error before anything is read.
pub fn read_all(
    paths: &[PathBuf],
    jobs: usize,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
) -> Result<Observed, AuditError> {
    read_all_tuned(paths, jobs, progress, WINDOW, crate::split::PART)
}

/// [`read_all`] reading captures in windows of `window` bytes (a stretch's windows are at
/// most `capture::WINDOW`) and cutting plain pcap files into stretches of at least `part`
/// bytes: tests use small ones, so that a capture spans many.
pub fn read_all_tuned(
    paths: &[PathBuf],
    jobs: usize,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
    window: usize,
    part: u64,
) -> Result<Observed, AuditError> {
    let jobs = jobs.max(1);
    let mut captures = Vec::new();
    let mut logs = Vec::new();
    let mut formats = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let opened = input::open(path)?;
        formats.push((opened.format, opened.gzip));
        if opened.format.is_capture() {
            let windows = (opened.format == input::Format::Pcap && !opened.gzip)
                .then(|| Windows::open_with(path, window))
                .flatten();
            captures.push((i, opened, windows));
        } else {
            logs.push((i, path.as_path(), opened));
        }
    }
    // Flow logs: `jobs` threads take them in turn.
    // Without flow logs the stretches' result is final: nothing to merge it with by place.
    let alone = logs.is_empty();
    let queue = std::sync::Mutex::new(logs);
    let queue = &queue;
    let (read, shards, mut parts) = std::thread::scope(|scope| {
        let log_threads: Vec<_> = (0..jobs.min(paths.len()))
            .map(|_| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let next = match queue.lock() {
                            Ok(mut q) => q.pop(),
                            Err(_) => None,
                        };
                        let Some((i, path, opened)) = next else {
                            break;
                        };
                        out.push(read_log(i, path, opened));
                    }
                    out
                })
            })
            .collect();
        let plain = captures.iter().all(|(_, _, w)| w.is_some());
        let (read, shards) = if captures.is_empty() {
            (Captured::default(), Vec::new())
        } else if plain {
            let list: Vec<crate::split::Capture> = captures
                .iter()
                .map(|(i, _, _)| crate::split::Capture {
                    index: *i,
                    path: paths[*i].clone(),
                })
                .collect();
            // The stretches reopen the files: these handles are closed first.
            drop(captures);
            // Each thread reads its stretch in windows of one thread's size.
            let w = window.min(capture::WINDOW);
            let r = crate::split::read(&list, jobs, w, part, place, !alone, progress);
            let (flows, names, whole) = if alone {
                let names = r.names.into_iter().next().unwrap_or_default();
                let flows = r.flows.unwrap_or_else(|| r.table.into_flows());
                (Vec::new(), Vec::new(), Some((flows, names)))
            } else {
                (vec![r.table.into_numbered()], r.names, None)
            };
            (
                Captured {
                    frames: r.frames,
                    inputs: r.inputs,
                    flows,
                    names,
                    whole,
                },
                Vec::new(),
            )
        } else {
            let (back_tx, back_rx) = mpsc::channel();
            let mut txs = Vec::new();
            let mut workers = Vec::new();
            for _ in 0..jobs {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                txs.push(tx);
                let back = back_tx.clone();
                workers.push(scope.spawn(move || shard_worker(rx, back)));
            }
            drop(back_tx);
            let read = reader(captures, txs, &back_rx, progress);
            let shards: Vec<Shard> = workers
                .into_iter()
                .map(|w| w.join().expect("a shard thread panicked"))
                .collect();
            (
                Captured {
                    frames: read.frames,
                    inputs: read.inputs,
                    flows: Vec::new(),
                    names: Vec::new(),
                    whole: None,
                },
                shards,
            )
        };
        let parts: Vec<LogPart> = log_threads
            .into_iter()
            .flat_map(|t| t.join().expect("a flow-log thread panicked"))
            .collect();
        (read, shards, parts)
    });
    // Inputs, in the order given.
    parts.sort_by_key(|p| p.index);
    let mut summaries: Vec<Option<InputSummary>> = vec![None; paths.len()];
    for (i, records, problem) in read.inputs {
        summaries[i] = Some(InputSummary {
            path: paths[i].display().to_string(),
            format: formats[i].0,
            gzip: formats[i].1,
            records,
            problem,
            flow_records: None::<Notes>,
        });
    }
    for p in &parts {
        summaries[p.index] = Some(p.summary.clone());
    }
    let inputs = summaries.into_iter().flatten().collect();
    if let Some((flows, names)) = read.whole {
        return Ok(Observed {
            flows,
            names,
            frames: read.frames,
            inputs,
        });
    }
    let mut lists: Vec<Vec<(u64, ObservedFlow)>> = read.flows;
    let mut recordings = read.names;
    for p in parts {
        lists.push(p.flows);
        recordings.push(p.names);
    }
    let mut orphans = Vec::new();
    for s in shards {
        lists.push(s.flows);
        orphans.extend(s.orphans);
        recordings.push(s.names);
    }
    // ICMP errors that quoted no flow: counted in input order, as one table counts them.
    orphans.sort_by_key(|o| o.seq);
    let mut errors = FlowTable::new();
    for o in &orphans {
        errors.observe_seq(&o.packet(), o.ts, o.seq);
    }
    lists.push(errors.into_numbered());
    Ok(Observed {
        flows: merge(lists),
        names: Names::replay(recordings),
        frames: read.frames,
        inputs,
    })
}

/// Sorted lists of numbered flows → one list in order of number, each flow moved once.
fn merge(lists: Vec<Vec<(u64, ObservedFlow)>>) -> Vec<ObservedFlow> {
    // One list (or one that is not empty), as stretches of plain pcap files give: already
    // in order.
    if lists.iter().filter(|l| !l.is_empty()).count() <= 1 {
        return lists.into_iter().flatten().map(|(_, f)| f).collect();
    }
    let total = lists.iter().map(Vec::len).sum();
    let mut order: Vec<(u64, u32, u32)> = Vec::with_capacity(total);
    for (l, list) in lists.iter().enumerate() {
        for (i, (seq, _)) in list.iter().enumerate() {
            order.push((*seq, l as u32, i as u32));
        }
    }
    order.sort_unstable();
    let mut slots: Vec<Vec<Option<ObservedFlow>>> = lists
        .into_iter()
        .map(|l| l.into_iter().map(|(_, f)| Some(f)).collect())
        .collect();
    order
        .into_iter()
        .filter_map(|(_, l, i)| slots[l as usize][i as usize].take())
        .collect()
}
