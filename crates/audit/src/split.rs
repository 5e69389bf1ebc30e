//! Plain pcap files read on every core by time (`audit --jobs N`): each file is cut into
//! stretches of consecutive records, each stretch is read by one thread into a table of its
//! own (its packets numbered from 1), and the tables are joined in order, each continuing
//! the one before it ([`crate::flows::Seam`]): the result is what one table reading the files
//! in order gives.
//!
//! A stretch's start is found by looking, near the byte offset that cuts the file evenly, for
//! an offset from which a chain of plausible record headers follows
//! ([`Windows::record_near`]). That is a guess: a record begins there only if the stretch
//! before it, read from a true record start, ends there exactly. When it does not (the guess
//! fell inside a record, or the stretch before stopped at a record it could not take), the
//! stretches after it are not used: the file is read on from where the last good stretch
//! stopped, on one thread, as one table reads it. So a wrong guess costs time, never a
//! different result.
//!
//! Unlike sharding flows by a hash ([`crate::parallel`]'s reader for other captures), no
//! packet is copied or handed between threads: each thread reads its own stretch of the file.
//! A flow open at the cut (one the stretch continues from the stretch before) is continued by
//! adding the stretch's counts to it, unless one of its packets in the stretch is a SYN without
//! ACK, which may reopen or turn a flow ([`crate::flows::FlowTable::seam`]). Only those are
//! continued by what is done twice: reading again, on one thread, the start of the stretch up
//! to their last packet (on the benchmark's capture none; on one whose reused 5-tuples outlive
//! the cuts, up to the whole stretch).
//!
//! The first thread left with nothing to read makes room for the report's flows (as many as
//! the stretches read by then had per byte, and a tenth more), touching its pages while the
//! others still read: the last stretch's flows are then written where they stay without a page
//! fault (room more than twice what is needed is given back instead).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::capture::{Frame, InputProblem, Windows};
use crate::collect::{self, FrameStats};
use crate::decode::Packet;
use crate::dns::Names;
use crate::flows::{FlowTable, ObservedFlow, Wanted};
use crate::time::Nanos;

/// Bytes of file per stretch at the least: a smaller file is read by one thread.
pub const PART: u64 = 8 << 20;
/// How far past the even cut a record start is looked for.
const SCAN: usize = 1 << 20;
/// Plausible record headers in a row that make a guessed record start.
const CHAIN: usize = 16;
/// Flows the report is expected to hold at the least for a thread with nothing left to read
/// to make room for them ([`make_room`]); any number when stretches are cut smaller than
/// [`PART`] (tests).
const ROOM: u64 = 1 << 14;

/// One plain pcap file to read: its index among the inputs and its path.
pub struct Capture {
    pub index: usize,
    pub path: PathBuf,
}

/// One stretch of a file.
struct Stretch {
    /// Which capture (in the list given).
    capture: usize,
    start: u64,
    /// `None`: to the file's end.
    end: Option<u64>,
}

/// What reading one stretch gave.
struct Part {
    table: FlowTable,
    names: Names,
    frames: FrameStats,
    records: u64,
    /// Where the stretch's reading stopped short of its end (a record it could not take, or
    /// one crossing its end).
    stopped: Option<u64>,
    /// The file's problem, for a stretch read to the file's end.
    problem: Option<InputProblem>,
}

/// What reading the captures gave: one table (flows numbered by `place`), the DNS answers
/// (recordings, or one table: see [`read`]), frame counts, and per capture its records and
/// problem.
pub struct Read {
    pub table: FlowTable,
    /// Without `record`: the flows, final (the table is then empty), when the last stretch
    /// was joined apart.
    pub flows: Option<Vec<ObservedFlow>>,
    pub names: Vec<Names>,
    pub frames: FrameStats,
    pub inputs: Vec<(usize, u64, Option<InputProblem>)>,
    /// Stretches read.
    pub stretches: usize,
    /// Stretches not used: a guessed start that was not a record's, or the stretch before
    /// stopped short (their records were read on one thread instead).
    pub unused: usize,
    /// Flows that continued from one stretch into the next.
    pub continued: usize,
    /// Of those, the flows continued by reading the stretch's start again (the others by
    /// adding their counts: [`FlowTable::seam`]).
    pub replayed: usize,
    /// Whether the last stretch's flows were made in room a reading thread made for them.
    pub roomed: bool,
}

/// A progress line's callback: called with the frames read so far.
type Tell = Box<dyn FnMut(u64) + Send>;

/// Progress shared by the reading threads.
struct Progress {
    frames: AtomicU64,
    call: Mutex<Option<Tell>>,
}

impl Progress {
    fn add(&self, n: u64) {
        let before = self.frames.fetch_add(n, Ordering::Relaxed);
        if (before + n) >> 20 != before >> 20 {
            if let Ok(mut c) = self.call.try_lock() {
                if let Some(f) = c.as_mut() {
                    f(before + n);
                }
            }
        }
    }
}

/// Reads `captures` (plain pcap files) in order on `jobs` threads, in stretches of at least
/// `part` bytes read in windows of `window` bytes; `place(input, record)` numbers a packet.
/// With `record`, the DNS answers come as recordings numbered by place (to be replayed with
/// other inputs'); without, as one table.
pub fn read(
    captures: &[Capture],
    jobs: usize,
    window: usize,
    part: u64,
    place: fn(usize, u64) -> u64,
    record: bool,
    progress: Option<Tell>,
) -> Read {
    let stretches = &cut(captures, jobs, window, part);
    let progress = Progress {
        frames: AtomicU64::new(0),
        call: Mutex::new(progress),
    };
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Part>>> = stretches.iter().map(|_| Mutex::new(None)).collect();
    // Room for the report's flows, made by the first thread left with nothing to read (while
    // others still read, or this thread joins): the memory is touched then (a page fault per
    // 4 KiB), not by the thread that makes the last stretch's flows.
    let (room_tx, room_rx) = std::sync::mpsc::channel::<Vec<ObservedFlow>>();
    // A stretch read (sent by its thread).
    let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
    let idle = AtomicBool::new(false);
    let least = if part >= PART { ROOM } else { 1 };
    let span = |s: &Stretch| {
        s.end
            .or_else(|| {
                std::fs::metadata(&captures[s.capture].path)
                    .ok()
                    .map(|m| m.len())
            })
            .unwrap_or(s.start)
            .saturating_sub(s.start)
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(stretches.len()) {
            let (room_tx, read_tx) = (room_tx.clone(), read_tx.clone());
            let (next, slots, idle, span, progress) = (&next, &slots, &idle, &span, &progress);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = stretches.get(i) else {
                        // The joining need not wait.
                        drop(read_tx);
                        if !record && stretches.len() > 1 && !idle.swap(true, Ordering::Relaxed) {
                            // The flows and bytes of every stretch read by now.
                            let read = slots.iter().zip(stretches.iter()).fold(
                                (0u64, 0u64),
                                |(f, b), (slot, s)| match slot.lock().ok().as_deref() {
                                    Some(Some(p)) => (f + p.table.len() as u64, b + span(s)),
                                    _ => (f, b),
                                },
                            );
                            if let Some(v) = make_room(read, stretches, span, least) {
                                let _ = room_tx.send(v);
                            }
                        }
                        break;
                    };
                    let first = i == 0;
                    let part = read_stretch(
                        &captures[s.capture].path,
                        s,
                        first,
                        first && !record,
                        window,
                        progress,
                    );
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(part);
                    }
                    let _ = read_tx.send(());
                }
            });
        }
        drop((room_tx, read_tx));
        // Every stretch read (or every reading thread gone: one panicked).
        for _ in 0..stretches.len() {
            if read_rx.recv().is_err() {
                break;
            }
        }
        join(captures, stretches, &slots, place, record, window, room_rx)
    })
}

/// Room for the report's flows, touched (a page fault per 4 KiB) and empty: as many flows
/// per byte of the inputs as `read` (the flows and bytes of the stretches read), and a tenth
/// more; none for fewer than `least` flows, or more than [`crate::flows::TRACE`].
fn make_room(
    read: (u64, u64),
    stretches: &[Stretch],
    span: impl Fn(&Stretch) -> u64,
    least: u64,
) -> Option<Vec<ObservedFlow>> {
    let (flows, bytes) = read;
    let all: u64 = stretches.iter().map(span).sum();
    let expect = u128::from(flows) * u128::from(all) * 11 / (u128::from(bytes).max(1) * 10);
    let expect = u64::try_from(expect).ok()?;
    if !(least..=crate::flows::TRACE).contains(&expect) {
        return None;
    }
    let n = usize::try_from(expect).ok()?;
    let mut v = Vec::with_capacity(n);
    v.resize(n, blank());
    v.clear();
    Some(v)
}

/// The second half of [`read`]: the stretches' parts (in `slots`) joined in order; `room`
/// may bring room made for the report's flows.
fn join(
    captures: &[Capture],
    stretches: &[Stretch],
    slots: &[Mutex<Option<Part>>],
    place: fn(usize, u64) -> u64,
    record: bool,
    window: usize,
    room: std::sync::mpsc::Receiver<Vec<ObservedFlow>>,
) -> Read {
    let mut room = Some(room);
    let mut parts: Vec<Option<Part>> = slots
        .iter()
        .map(|m| m.lock().ok().and_then(|mut p| p.take()))
        .collect();
    // Joined in order.
    let mut table: Option<FlowTable> = None;
    let mut names = Vec::new();
    let mut frames = FrameStats::default();
    let mut inputs = Vec::new();
    let (mut used, mut continued, mut replayed) = (0usize, 0usize, 0usize);
    let mut roomed = false;
    // The flows, when the last stretch was joined without taking its flows in.
    let mut direct: Option<Vec<ObservedFlow>> = None;
    for (c, cap) in captures.iter().enumerate() {
        let mut records = 0u64;
        let mut problem = None;
        // Where the last stretch read stopped short, from a true record start.
        let mut stopped = None;
        for (i, s) in stretches.iter().enumerate() {
            if s.capture != c || stopped.is_some() {
                continue;
            }
            let Some(mut p) = parts[i].take() else {
                // A reading thread panicked: read on from the stretch's start.
                stopped = Some(s.start);
                break;
            };
            used += 1;
            // The stretch's DNS answers were taken in while it was joined.
            let mut names_taken = false;
            let base = place(cap.index, records);
            let more = i + 1 < stretches.len();
            match &mut table {
                None => {
                    p.table.renumber(base);
                    table = Some(p.table);
                }
                Some(t) => {
                    let mut seam = t.seam(&mut p.table, base);
                    continued += seam.continued();
                    replayed += seam.replayed();
                    if !more && !record {
                        // The last stretch: while this thread reads its start again and takes
                        // its DNS answers in, another makes the report's flows from it, with
                        // room first for the table's (made in place once the replay is done:
                        // no flow is copied twice).
                        let keys = seam.keys().clone();
                        let part = &p.table;
                        let made = t.made();
                        let ahead = t.len();
                        let mut part_names = std::mem::take(&mut p.names);
                        let names = &mut names;
                        names_taken = true;
                        let room = room.take();
                        let (ok, all) = std::thread::scope(|scope| {
                            let apart = scope.spawn(move || {
                                let need = ahead + part.len();
                                // The room made, or coming (none: no reading thread made it).
                                let made = room.and_then(|r| r.recv().ok());
                                let (mut all, roomed) = match made {
                                    // Room far beyond the need (a stretch denser in flows
                                    // than the rest) is given back, not kept with the report.
                                    Some(v)
                                        if v.capacity() >= need
                                            && v.capacity() <= need.saturating_mul(2) =>
                                    {
                                        (v, true)
                                    }
                                    _ => (Vec::with_capacity(need), false),
                                };
                                all.resize(ahead, blank());
                                part.flows_apart(&keys, base, &mut all);
                                (all, roomed)
                            });
                            if seam.until > 0 {
                                let wanted = seam.wanted();
                                read_again(
                                    &cap.path,
                                    s,
                                    window,
                                    seam.until,
                                    &wanted,
                                    |q, ts, rec| {
                                        t.replay(&mut seam, q, ts, rec);
                                    },
                                );
                            }
                            t.close_seam(&mut seam);
                            part_names.shift(base);
                            follow(names, part_names, record);
                            let (mut all, made_room) =
                                apart.join().expect("a converting thread panicked");
                            roomed = made_room;
                            // No flow made since: every flow of the table comes before the
                            // stretch's (the table is taken only then).
                            let ok = t.made() == made
                                && t.len() == ahead
                                && std::mem::take(t).into_flows_over(&mut all[..ahead]);
                            (ok, all)
                        });
                        if ok {
                            direct = Some(all);
                        } else {
                            t.take_part(std::mem::take(&mut p.table), &seam, false);
                        }
                    } else {
                        if seam.until > 0 {
                            let wanted = seam.wanted();
                            read_again(&cap.path, s, window, seam.until, &wanted, |q, ts, rec| {
                                t.replay(&mut seam, q, ts, rec);
                            });
                        }
                        t.absorb(std::mem::take(&mut p.table), seam, more);
                    }
                }
            }
            if !names_taken {
                p.names.shift(base);
                follow(&mut names, p.names, record);
            }
            frames.add(&p.frames);
            records += p.records;
            problem = p.problem;
            stopped = p.stopped;
        }
        if let Some(at) = stopped {
            // The rest of the file, on this thread, as one table reads it.
            let t = table.get_or_insert_with(FlowTable::new);
            let mut rec_names = Names::recording();
            let mut none = None;
            let first = records;
            let mut rec = records;
            let (n, p) = match Windows::open_with(&cap.path, window).and_then(|w| w.range(at, None))
            {
                Some(mut w) => {
                    let mut each = |f: &Frame<'_>| {
                        rec += 1;
                        if let Ok(q) = &frames.decode(f, &mut none) {
                            let seq = place(cap.index, rec);
                            rec_names.place = seq;
                            collect::dns_answer(&mut rec_names, q, f.ts);
                            t.observe_seq(q, f.ts, seq);
                        }
                    };
                    while let Some(win) = w.next_window() {
                        for i in 0..win.starts.len() {
                            each(&win.frame(i));
                        }
                    }
                    w.finish(each)
                }
                None => (
                    0,
                    Some(InputProblem {
                        offset: at,
                        kind: crate::capture::ProblemKind::Corrupt,
                        message: "read error: the file could not be opened again".into(),
                    }),
                ),
            };
            follow(&mut names, rec_names, record);
            records = first + n;
            problem = p;
        }
        inputs.push((cap.index, records, problem));
    }
    Read {
        table: table.unwrap_or_default(),
        flows: direct,
        names,
        frames,
        inputs,
        stretches: stretches.len(),
        unused: stretches.len() - used,
        continued,
        replayed,
        roomed,
    }
}

/// A flow to be written over.
fn blank() -> ObservedFlow {
    let nowhere = (std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    ObservedFlow::new(0, nowhere, nowhere)
}

/// Keeps a part's DNS answers: as a recording, or taken into the one table.
fn follow(names: &mut Vec<Names>, part: Names, record: bool) {
    if record {
        names.push(part);
    } else if let Some(table) = names.first_mut() {
        table.follow(part);
    } else if part.is_recording() {
        let mut table = Names::new();
        table.follow(part);
        names.push(table);
    } else {
        names.push(part);
    }
}

/// The stretches of every capture, in order: a file of `n * part` bytes or more is cut in up
/// to `jobs` stretches at guessed record starts.
fn cut(captures: &[Capture], jobs: usize, window: usize, part: u64) -> Vec<Stretch> {
    let mut out = Vec::new();
    for (c, cap) in captures.iter().enumerate() {
        let mut starts = vec![24u64];
        if let Some(w) = Windows::open_with(&cap.path, window) {
            let len = w.file_len().unwrap_or(0);
            let n = (len / part.max(1)).clamp(1, jobs.max(1) as u64);
            if let Some(near) = w.first_seconds() {
                for k in 1..n {
                    let guess = 24 + (len - 24) * k / n;
                    if let Some(at) = w.record_near(guess, SCAN, CHAIN, near) {
                        if at > *starts.last().unwrap_or(&0) && at < len {
                            starts.push(at);
                        }
                    }
                }
            }
        }
        for (k, &start) in starts.iter().enumerate() {
            out.push(Stretch {
                capture: c,
                start,
                end: starts.get(k + 1).copied(),
            });
        }
    }
    out
}

/// Reads one stretch into a table of its own (a plain one for the very first stretch, whose
/// table the others continue; [`FlowTable::shard`] ones for the rest).
fn read_stretch(
    path: &std::path::Path,
    s: &Stretch,
    first: bool,
    keep_names: bool,
    window: usize,
    progress: &Progress,
) -> Part {
    let mut table = if first {
        FlowTable::new()
    } else {
        // A packet's record takes 16 bytes and more: room for what the stretch can hold.
        FlowTable::shard().traced(
            crate::flows::TRACE,
            s.end.map_or(crate::flows::TRACE, |e| (e - s.start) / 16),
        )
    };
    let len = s
        .end
        .or_else(|| std::fs::metadata(path).ok().map(|m| m.len()))
        .unwrap_or(s.start);
    table.reserve_for(len.saturating_sub(s.start));
    let mut names = if keep_names {
        Names::new()
    } else {
        Names::recording()
    };
    let mut frames = FrameStats::default();
    let Some(mut w) = Windows::open_with(path, window).and_then(|w| w.range(s.start, s.end)) else {
        return Part {
            table,
            names,
            frames,
            records: 0,
            stopped: Some(s.start),
            problem: None,
        };
    };
    let mut none = None;
    let mut rec = 0u64;
    let mut each = |f: &Frame<'_>| {
        rec += 1;
        if let Ok(p) = &frames.decode(f, &mut none) {
            names.place = rec;
            collect::dns_answer(&mut names, p, f.ts);
            table.observe_seq(p, f.ts, rec);
        }
    };
    while let Some(win) = w.next_window() {
        for i in 0..win.starts.len() {
            each(&win.frame(i));
        }
        progress.add(win.starts.len() as u64);
    }
    let (records, problem, stopped) = if s.end.is_none() {
        let (n, p) = w.finish(each);
        (n, p, None)
    } else {
        (w.records(), None, w.stopped_at())
    };
    Part {
        table,
        names,
        frames,
        records,
        stopped,
        problem,
    }
}

/// Reads a stretch again from its start to its packet number `until`, handing each packet
/// `wanted` lets through with its number (from 1) to `each`; the others are not decoded.
fn read_again<F: FnMut(&Packet<'_>, Nanos, u64)>(
    path: &std::path::Path,
    s: &Stretch,
    window: usize,
    until: u64,
    wanted: &Wanted,
    mut each: F,
) {
    let Some(mut w) = Windows::open_with(path, window).and_then(|w| w.range(s.start, s.end)) else {
        return;
    };
    let mut frames = FrameStats::default();
    let mut none = None;
    let mut rec = 0u64;
    let mut one = |f: &Frame<'_>| {
        rec += 1;
        if rec <= until && wanted.wanted(rec) {
            if let Ok(p) = &frames.decode(f, &mut none) {
                each(p, f.ts, rec);
            }
        }
    };
    while let Some(win) = w.next_window() {
        let n = win.starts.len();
        for i in 0..n {
            one(&win.frame(i));
        }
        if win.before + n as u64 >= until {
            return;
        }
    }
    if s.end.is_none() {
        w.finish(one);
    }
}
