//! Live mode: flow records received on a UDP socket, audited period by period.
//!
//! Each datagram is one export message, decoded with the templates of its exporter (its
//! source address) and observation domain. Every period the flows folded so far are audited
//! and handed over, and the decoder keeps only templates (bounded by `netflow_parser`'s LRU of
//! exporters) and counters; a period also ends early when it holds [`MAX_FLOWS`] flows. What
//! the whole run keeps is bounded by the policy: counts, and per group the required flows no
//! period has used yet.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use portolan_model::ir::Policy;
use serde::Serialize;

use crate::collect::{FrameStats, InputSummary, Observed};
use crate::dns::Names;
use crate::flowlog::netflow::{Decoder, Notes, MAX_MESSAGE};
use crate::input::Format;
use crate::matcher::Options;
use crate::report::{audit, Report};

/// The most flows one period holds before it is audited early.
pub const MAX_FLOWS: usize = 200_000;

/// The whole run, summed over periods.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub periods: u64,
    pub datagrams: u64,
    /// Datagrams the decoder refused (first reason kept).
    pub refused: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_refusal: Option<String>,
    pub flows: u64,
    pub conforming: u64,
    pub violations: u64,
    pub unknown_device: u64,
    pub records: Notes,
    /// Per device group: required flows (`profile/flow`) no period used.
    pub unused: Vec<(String, Vec<String>)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records_note: Option<String>,
}

/// Receives records on `socket` until `stop` is set, calling `period` with each period's
/// report (every `every`, and a last one at the stop); returns the totals.
pub fn run(
    socket: &UdpSocket,
    policy: &Policy,
    opts: &Options,
    every: Duration,
    stop: &AtomicBool,
    mut period: impl FnMut(&Report),
) -> std::io::Result<Totals> {
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let name = format!("udp://{}", socket.local_addr()?);
    let mut dec = Decoder::new();
    let mut totals = Totals {
        kind: "live-summary",
        ..Totals::default()
    };
    let mut unused: Option<Vec<(String, BTreeSet<String>)>> = None;
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut since = Instant::now();
    let mut last_notes = Notes::default();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    totals.datagrams += 1;
                    if let Err(why) = dec.message(from, &buf[..n]) {
                        totals.refused += 1;
                        totals.first_refusal.get_or_insert(format!("{from}: {why}"));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        if stopping || since.elapsed() >= every || dec.len() >= MAX_FLOWS {
            since = Instant::now();
            // This period's notes: the decoder's counters since the last period.
            let mut notes = dec.notes.clone();
            notes.records -= last_notes.records;
            notes.aggregated -= last_notes.aggregated;
            notes.no_template -= last_notes.no_template;
            last_notes = dec.notes.clone();
            let obs = Observed {
                flows: dec.take_flows(),
                names: Names::new(),
                frames: FrameStats::default(),
                inputs: vec![InputSummary {
                    path: name.clone(),
                    format: Format::ExportUdp,
                    gzip: false,
                    records: notes.records,
                    problem: None,
                    flow_records: Some(notes),
                }],
            };
            let r = audit(policy, obs, opts);
            totals.periods += 1;
            totals.flows += r.flows.len() as u64;
            totals.conforming += r.conforming;
            totals.violations += r.violations;
            totals.unknown_device += r.unknown_device;
            let now: Vec<(String, BTreeSet<String>)> = r
                .groups
                .iter()
                .map(|g| (g.group.clone(), g.unused.iter().cloned().collect()))
                .collect();
            unused = Some(match unused {
                None => now,
                Some(before) => before
                    .into_iter()
                    .zip(now)
                    .map(|((g, a), (_, b))| (g, a.intersection(&b).cloned().collect()))
                    .collect(),
            });
            period(&r);
            if stopping {
                break;
            }
        }
    }
    totals.records = dec.notes.clone();
    totals.records_note = crate::report::records_note(&[InputSummary {
        path: name,
        format: Format::ExportUdp,
        gzip: false,
        records: totals.records.records,
        problem: None,
        flow_records: Some(totals.records.clone()),
    }]);
    totals.unused = unused
        .unwrap_or_default()
        .into_iter()
        .map(|(g, s)| (g, s.into_iter().collect()))
        .collect();
    Ok(totals)
}
