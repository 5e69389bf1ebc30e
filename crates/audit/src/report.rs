//! The audit report: one record per flow (for a SIEM, as JSON lines) and one summary per device
//! group, with the required flows that no observed flow used.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use portolan_model::ir::{Initiator, IpProto, Policy};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::collect::{FrameStats, InputSummary, Observed};
use crate::decode::proto;
use crate::flows::{Evidence, ObservedFlow};
use crate::matcher::{MatchVerdict, Matcher, Mismatch, Options, Status};
use crate::time::rfc3339;

/// One flow and its verdict: a JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct FlowRecord {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `profile/flow` of the admitting rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violation: Vec<Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A connection to the site's proxy: the proxied flows it carries (`reason` names them).
    #[serde(skip)]
    pub proxied: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peer_names: Vec<String>,
    /// `device` or `peer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<Initiator>,
    /// The name (`tcp`) or number; written as the JSON contract's `{"name", "number"}`.
    #[serde(serialize_with = "protocol_json")]
    pub protocol: String,
    /// The initiator.
    pub src: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// The responder.
    pub dst: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Packets and bytes from the initiator, then from the responder.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "is_zero")]
    pub related: u64,
    /// nftables log input: the group the firewall's log prefix named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logged_group: Option<String>,
}

/// A protocol as every `--format json` output writes it: `{"name": "udp", "number": 17}`,
/// the name left out where IANA's number has none Portolan knows.
fn protocol_json<S: serde::Serializer>(p: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let (name, number) = protocol_parts(p);
    let mut m = s.serialize_map(None)?;
    if let Some(n) = name {
        m.serialize_entry("name", n)?;
    }
    if let Some(n) = number {
        m.serialize_entry("number", &n)?;
    }
    m.end()
}

/// A flow's protocol text as its name and IANA number (`jsonl.rs` writes the same object).
pub(crate) fn protocol_parts(p: &str) -> (Option<&str>, Option<u8>) {
    match p.parse::<u8>() {
        Ok(n) => (IpProto::new(n).name(), Some(n)),
        Err(_) => (
            Some(p),
            portolan_model::Protocol::from_name(p).and_then(|x| x.number()),
        ),
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FlowRecord {
    pub fn new(f: &ObservedFlow, v: MatchVerdict) -> FlowRecord {
        let ports = IpProto::new(f.proto).has_ports();
        let (src, sport, dst, dport, packets, bytes) = if v.flipped {
            let [a, b] = f.packets;
            let [c, d] = f.bytes;
            (f.responder, f.rport, f.initiator, f.iport, [b, a], [d, c])
        } else {
            (
                f.initiator,
                f.iport,
                f.responder,
                f.rport,
                f.packets,
                f.bytes,
            )
        };
        FlowRecord {
            kind: "flow",
            status: v.status,
            group: v.group,
            rule: v.rule,
            violation: v.mismatch,
            closest: v.closest,
            reason: v.reason,
            proxied: v.proxied,
            device: v.device,
            peer: v.peer,
            peer_names: v.peer_names,
            initiated_by: v.initiated_by,
            protocol: IpProto::new(f.proto).to_string(),
            src,
            sport: ports.then_some(sport),
            dst,
            dport: ports.then_some(dport),
            icmp_type: f.icmp_type_name().map(str::to_string).or_else(|| {
                f.icmp_type
                    .filter(|_| matches!(f.proto, proto::ICMP | proto::ICMPV6))
                    .map(|t| t.to_string())
            }),
            spi: f.spi.map(|s| format!("0x{s:08x}")),
            vlan: f.vlan,
            packets,
            bytes,
            first: f.first.map(rfc3339),
            last: f.last.map(rfc3339),
            evidence: f.evidence,
            related: f.related,
            logged_group: f.logged_group.clone(),
        }
    }
}

/// One device group's summary.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub group: String,
    pub profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub conforming: u64,
    pub violations: u64,
    /// Required flows (`profile/flow`) that no observed flow used.
    pub unused: Vec<String>,
    /// Optional flows not used.
    pub unused_optional: Vec<String>,
    /// Why `unused` proves nothing: the flow records read are sampled or aggregated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unused_note: Option<String>,
}

/// The whole audit.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub site: String,
    pub flows: Vec<FlowRecord>,
    pub groups: Vec<GroupSummary>,
    pub conforming: u64,
    pub violations: u64,
    pub unknown_device: u64,
    pub inputs: Vec<InputSummary>,
    pub frames: FrameStats,
    /// DNS responses read, and the ones that could not be parsed.
    pub dns_responses: u64,
    pub dns_unparsed: u64,
    /// DNS answers (packets or log lines) whose CNAME chain was cut at `dns::MAX_CHAIN`.
    pub dns_chains_cut: u64,
    /// Set when flow records were sampled or aggregated: "not seen" does not prove "did not
    /// happen", for unused flows and for violations alike.
    pub records_note: Option<String>,
}

impl Report {
    pub fn has_violations(&self) -> bool {
        self.violations > 0
    }
}

/// Audits the observed flows against a compiled site.
pub fn audit(policy: &Policy, obs: Observed, opts: &Options) -> Report {
    audit_jobs(policy, obs, opts, 1)
}

/// [`audit`] on `jobs` threads: the flows are judged in `jobs` consecutive runs, each on its
/// own thread, and the records joined in order; the report is the same for any `jobs`.
pub fn audit_jobs(policy: &Policy, obs: Observed, opts: &Options, jobs: usize) -> Report {
    let m = Matcher::new(policy, opts);
    let index = group_index(policy);
    let judge = |fs: &[ObservedFlow]| -> (Vec<FlowRecord>, Tally) {
        let mut tally = Tally::new(&index);
        let records = fs
            .iter()
            .map(|f| {
                let r = FlowRecord::new(f, m.judge(f, &|a| obs.names_at(a, f.first)));
                tally.add(&r);
                r
            })
            .collect();
        (records, tally)
    };
    let jobs = jobs.clamp(1, obs.flows.len().max(1));
    let (flows, tally) = if jobs == 1 {
        judge(&obs.flows)
    } else {
        let run = obs.flows.len().div_ceil(jobs);
        std::thread::scope(|scope| {
            let threads: Vec<_> = obs
                .flows
                .chunks(run)
                .map(|c| scope.spawn(|| judge(c)))
                .collect();
            // Into one vector made at its size: collecting the runs' records through
            // `flat_map` grew it by doubling, copying and faulting in every record again.
            let mut all = Vec::with_capacity(obs.flows.len());
            let mut tally = Tally::new(&index);
            for t in threads {
                let (records, part) = t.join().expect("a judging thread panicked");
                all.extend(records);
                tally.merge(part);
            }
            (all, tally)
        })
    };
    let mut report = summarise(policy, &m, obs, tally);
    report.flows = flows;
    report
}

/// [`audit_jobs`] for writing the flow records as they are made, without keeping them: the
/// flows are judged in runs of `run` flows, each taken by the next free one of `jobs` threads
/// (this one among them), which hands every record to `render` with the run's buffer; `write`
/// takes the buffers in the flows' order, called by one thread at a time. The report's `flows`
/// is left empty; its counts are those of every flow, and the number of flows comes beside it.
/// (100,000 records kept took 50 MB, and joining the threads' runs copied them once more.)
pub fn audit_streamed<E: Send>(
    policy: &Policy,
    obs: Observed,
    opts: &Options,
    jobs: usize,
    run: usize,
    render: &(dyn Fn(&FlowRecord, &mut Vec<u8>) + Sync),
    mut write: impl FnMut(&[u8]) -> Result<(), E> + Send,
) -> Result<(Report, u64), E> {
    let m = Matcher::new(policy, opts);
    let index = group_index(policy);
    let run = run.max(1);
    // No more threads than runs (`--jobs` takes up to 65,535).
    let jobs = jobs.clamp(1, obs.flows.len().div_ceil(run).max(1));
    let judge = |fs: &[ObservedFlow], tally: &mut Tally, buf: &mut Vec<u8>| {
        buf.clear();
        for f in fs {
            let r = FlowRecord::new(f, m.judge(f, &|a| obs.names_at(a, f.first)));
            tally.add(&r);
            render(&r, buf);
        }
    };
    let mut tally = Tally::new(&index);
    if jobs == 1 {
        let mut buf = Vec::new();
        for fs in obs.flows.chunks(run) {
            judge(fs, &mut tally, &mut buf);
            write(&buf)?;
        }
    } else {
        // `jobs` threads (this one and `jobs - 1` more) take the next run not taken, judge it
        // into a buffer and leave the buffer in its place in the order; a thread that finds
        // nobody writing then writes, in order, every run that is ready, and goes back to
        // judging once the next one is not. No thread only writes: one that did (handed every
        // buffer across, a third thread on two cores) left the judging threads waiting, and
        // made the writing as slow as on one core. A thread waits only when the runs taken
        // are `jobs * RUNS_AHEAD` ahead of the writing, so that a slow reader of the output
        // does not make the records pile up in memory.
        let flows = &obs.flows;
        let runs = flows.len().div_ceil(run);
        let next = AtomicUsize::new(0);
        let order = Mutex::new(Order {
            at: 0,
            ready: vec![None; runs],
            spare: Vec::new(),
            writing: false,
            failed: None,
            stopped: false,
        });
        let written = Condvar::new();
        let writer = Mutex::new(&mut write);
        let ahead = jobs * RUNS_AHEAD;
        let work = |tally: &mut Tally| {
            let _unwinding = Unwinding {
                order: &order,
                written: &written,
            };
            let mut buf = Vec::new();
            loop {
                // Not too far ahead of the writing.
                {
                    let Ok(mut o) = order.lock() else { return };
                    while o.going() && (o.at + ahead..runs).contains(&next.load(Ordering::Relaxed))
                    {
                        let Ok(w) = written.wait(o) else { return };
                        o = w;
                    }
                    if !o.going() {
                        return;
                    }
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(fs) = flows.chunks(run).nth(i) else {
                    return;
                };
                judge(fs, tally, &mut buf);
                let Ok(mut o) = order.lock() else { return };
                if !o.going() {
                    return;
                }
                o.ready[i] = Some(std::mem::take(&mut buf));
                if !o.writing {
                    o.writing = true;
                    loop {
                        let at = o.at;
                        let Some(b) = o.ready.get_mut(at).and_then(Option::take) else {
                            break;
                        };
                        drop(o);
                        let done = match writer.lock() {
                            Ok(mut w) => (**w)(&b),
                            Err(_) => return,
                        };
                        let Ok(again) = order.lock() else { return };
                        o = again;
                        if o.stopped {
                            return;
                        }
                        if let Err(e) = done {
                            o.failed = Some(e);
                            written.notify_all();
                            return;
                        }
                        o.at += 1;
                        o.spare.push(b);
                        written.notify_all();
                    }
                    o.writing = false;
                }
                buf = o.spare.pop().unwrap_or_default();
            }
        };
        let parts: Vec<Tally> = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..jobs)
                .map(|_| {
                    let (index, work) = (&index, &work);
                    scope.spawn(move || {
                        let mut tally = Tally::new(index);
                        work(&mut tally);
                        tally
                    })
                })
                .collect();
            let mut mine = Tally::new(&index);
            work(&mut mine);
            let mut parts = vec![mine];
            parts.extend(
                helpers
                    .into_iter()
                    .map(|t| t.join().expect("a judging thread panicked")),
            );
            parts
        });
        for part in parts {
            tally.merge(part);
        }
        let o = order.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = o.failed {
            return Err(e);
        }
    }
    let flows = tally.flows;
    Ok((summarise(policy, &m, obs, tally), flows))
}

/// How many runs per thread [`audit_streamed`]'s threads may take ahead of the run being
/// written. With 2, a thread often waited for a slower run of the other's (judging the
/// benchmark's capture to `/dev/null` on two threads took 40 ms instead of 30); 4 is enough
/// there, and holds 8 runs of 1,024 records (3.4 MB) on two threads.
pub const RUNS_AHEAD: usize = 4;

/// The order of [`audit_streamed`]'s runs: the next to write, the runs judged and not yet
/// written (by their number), buffers written and free again, whether a thread is writing,
/// the error that stopped the writing, and whether a thread panicked.
struct Order<E> {
    at: usize,
    ready: Vec<Option<Vec<u8>>>,
    spare: Vec<Vec<u8>>,
    writing: bool,
    failed: Option<E>,
    stopped: bool,
}

impl<E> Order<E> {
    fn going(&self) -> bool {
        self.failed.is_none() && !self.stopped
    }
}

/// Held by each of [`audit_streamed`]'s threads: one that panics (in `render` or `write`)
/// stops the others, which would otherwise wait for runs it will never judge or write, and
/// the panic reaches the caller.
struct Unwinding<'a, E> {
    order: &'a Mutex<Order<E>>,
    written: &'a Condvar,
}

impl<E> Drop for Unwinding<'_, E> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut o = self
                .order
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            o.stopped = true;
            self.written.notify_all();
        }
    }
}

/// Device group id → index in the policy.
type GroupIndex<'a> = FxHashMap<&'a str, usize>;

fn group_index(policy: &Policy) -> GroupIndex<'_> {
    policy
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id.as_str(), i))
        .collect()
}

/// Counts of judged flows, per device group and in all, and the rules they used.
struct Tally<'a> {
    index: &'a GroupIndex<'a>,
    /// Per group: conforming, violations.
    counts: Vec<(u64, u64)>,
    /// Per group: the rules (`profile/flow`) some conforming flow used.
    used: Vec<FxHashSet<String>>,
    ok: u64,
    bad: u64,
    unknown: u64,
    flows: u64,
}

impl<'a> Tally<'a> {
    fn new(index: &'a GroupIndex<'a>) -> Tally<'a> {
        Tally {
            index,
            counts: vec![(0, 0); index.len()],
            used: vec![FxHashSet::default(); index.len()],
            ok: 0,
            bad: 0,
            unknown: 0,
            flows: 0,
        }
    }

    fn add(&mut self, v: &FlowRecord) {
        self.flows += 1;
        let gi = v.group.as_deref().and_then(|g| self.index.get(g).copied());
        match v.status {
            Status::Conforming => {
                self.ok += 1;
                if let Some(i) = gi {
                    self.counts[i].0 += 1;
                    let used = &mut self.used[i];
                    // A connection to the proxy uses every proxied flow it carries.
                    for r in v.rule.iter().chain(&v.proxied) {
                        if !used.contains(r.as_str()) {
                            used.insert(r.clone());
                        }
                    }
                }
            }
            Status::Violation => {
                self.bad += 1;
                if let Some(i) = gi {
                    self.counts[i].1 += 1;
                }
            }
            Status::UnknownDevice => self.unknown += 1,
        }
    }

    fn merge(&mut self, o: Tally<'_>) {
        self.ok += o.ok;
        self.bad += o.bad;
        self.unknown += o.unknown;
        self.flows += o.flows;
        for (c, d) in self.counts.iter_mut().zip(o.counts) {
            c.0 += d.0;
            c.1 += d.1;
        }
        for (u, v) in self.used.iter_mut().zip(o.used) {
            u.extend(v);
        }
    }
}

/// The report of judged flows (without their records): per group, the rules no flow used.
fn summarise(policy: &Policy, m: &Matcher<'_>, obs: Observed, tally: Tally<'_>) -> Report {
    let note = records_note(&obs.inputs);
    let groups = policy
        .groups
        .iter()
        .zip(&tally.counts)
        .enumerate()
        .map(|(i, (g, &(c, v)))| {
            let mut unused = Vec::new();
            let mut unused_optional = Vec::new();
            for r in m.rules_of(i) {
                let p = r.provenance();
                if tally.used[i].contains(p.as_str()) {
                    continue;
                }
                let list = if r.optional {
                    &mut unused_optional
                } else {
                    &mut unused
                };
                if !list.contains(&p) {
                    list.push(p);
                }
            }
            GroupSummary {
                kind: "group",
                group: g.id.clone(),
                profile: g.profile.clone(),
                mode: g.mode.clone(),
                conforming: c,
                violations: v,
                unused_note: (!unused.is_empty() || !unused_optional.is_empty())
                    .then(|| note.clone())
                    .flatten(),
                unused,
                unused_optional,
            }
        })
        .collect();
    Report {
        site: policy.site.clone(),
        flows: Vec::new(),
        groups,
        conforming: tally.ok,
        violations: tally.bad,
        unknown_device: tally.unknown,
        dns_responses: obs.names.responses,
        dns_unparsed: obs.names.unparsed,
        dns_chains_cut: obs.names.chains_cut,
        records_note: note,
        inputs: obs.inputs,
        frames: obs.frames,
    }
}

/// What sampled or aggregated flow records leave unproven, if any input was such.
pub fn records_note(inputs: &[InputSummary]) -> Option<String> {
    let mut notes = crate::flowlog::netflow::Notes::default();
    for i in inputs {
        if let Some(n) = &i.flow_records {
            notes.merge(n);
        }
    }
    let mut why = Vec::new();
    if let Some(n) = notes.sampling {
        why.push(format!("sampled (1 in {n} packets)"));
    }
    if notes.aggregated > 0 {
        why.push(format!(
            "aggregated ({} record(s) stand for several flows)",
            notes.aggregated
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "the flow records are {}: a flow not seen may still have happened",
            why.join(" and ")
        )
    })
}
