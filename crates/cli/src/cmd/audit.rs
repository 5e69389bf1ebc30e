//! `portolan audit SITE INPUT...`: observed traffic (captures and flow logs) against the site's
//! policy. Every flow of a site device is conforming (with the `profile/flow` that admits it),
//! a violation (unexpected peer, port, protocol or initiation), or of an unknown device; per
//! device group, the required flows never seen. A table for people, or JSON lines for a SIEM.
//! Exit 1 on any violation, 2 on bad input (an unreadable input, or a corrupt one — what was
//! read before the damage is still audited and reported).

use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use comfy_table::Table;
use portolan_audit::{
    audit_jobs, audit_streamed, Collector, FlowRecord, Observed, Options, ProblemKind, Report,
    Status,
};

use crate::cli::{AuditArgs, CatalogArgs};
use crate::output::Outcome;
use crate::report;

/// Reads every input into one collector; `None` when one could not be opened.
pub fn collect(inputs: &[PathBuf]) -> Option<Collector> {
    let mut c = Collector::new();
    let tty = std::io::stderr().is_terminal();
    if tty {
        c.progress = Some(Box::new(|n| eprint!("\rread {n} packets")));
    }
    for path in inputs {
        match c.read(path) {
            Ok(s) => {
                if let Some(p) = &s.problem {
                    problem(&path.display().to_string(), p, s.records);
                }
            }
            Err(e) => {
                unreadable(&e.to_string(), Some(path));
                return None;
            }
        }
    }
    if tty && c.frames.frames >= 1 << 20 {
        eprintln!("\rread {} packets", c.frames.frames);
    }
    Some(c)
}

/// Starts reading every input on `jobs` threads (`portolan_audit::parallel`) on a thread of
/// its own, so that the site loads meanwhile; [`read_parallel`] takes the result. Progress is
/// told (on a terminal) once `shown` is set: not among the site's diagnostics.
fn start_parallel(inputs: &[PathBuf], jobs: usize, shown: Arc<AtomicBool>) -> Reading {
    let tty = std::io::stderr().is_terminal();
    let progress: Option<Box<dyn FnMut(u64) + Send>> = if tty {
        Some(Box::new(move |n| {
            if shown.load(Ordering::Relaxed) {
                eprint!("\rread {n} packets");
            }
        }))
    } else {
        None
    };
    let inputs = inputs.to_vec();
    // Not scoped: when the site turns out not to load, the command ends without waiting.
    std::thread::spawn(move || portolan_audit::parallel::read_all(&inputs, jobs, progress))
}

/// The reading [`start_parallel`] started.
type Reading = std::thread::JoinHandle<Result<Observed, portolan_audit::AuditError>>;

/// The inputs [`start_parallel`] read; `None` when one could not be opened. Problems are
/// told per input, in the order given, once all are read.
fn read_parallel(reading: Reading) -> Option<Observed> {
    let obs = match reading.join() {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            unreadable(&e.to_string(), None);
            return None;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if std::io::stderr().is_terminal() && obs.frames.frames >= 1 << 20 {
        eprintln!("\rread {} packets", obs.frames.frames);
    }
    for s in &obs.inputs {
        if let Some(p) = &s.problem {
            problem(&s.path, p, s.records);
        }
    }
    Some(obs)
}

/// An input that could not be opened or read: a diagnostic (code `io`), in the run's format.
fn unreadable(message: &str, path: Option<&std::path::Path>) {
    let mut d = crate::contract::Diag::error("io", message);
    if let Some(p) = path {
        d = d.file(p.display().to_string());
    }
    if crate::contract::json() {
        crate::contract::push([d]);
    } else {
        eprintln!("error: {message}");
    }
}

/// A damaged input (`truncated`: a warning; `corrupt`: an error), what was read before it
/// being audited.
fn problem(path: &str, p: &portolan_audit::InputProblem, records: u64) {
    let message = format!("{p}; the {records} record(s) before it are audited");
    if crate::contract::json() {
        let d = crate::contract::Diag::error(
            match p.kind {
                ProblemKind::Truncated => "truncated-input",
                ProblemKind::Corrupt => "corrupt-input",
            },
            message,
        )
        .file(path);
        crate::contract::push([match p.kind {
            ProblemKind::Truncated => d.warning(),
            ProblemKind::Corrupt => d,
        }]);
    } else {
        let what = match p.kind {
            ProblemKind::Truncated => "warning",
            ProblemKind::Corrupt => "error",
        };
        eprintln!("{what}: {path}: {message}");
    }
}

pub fn run(g: &CatalogArgs, a: &AuditArgs) -> anyhow::Result<Outcome> {
    let json = a.out.json();
    let jobs = a
        .jobs
        .map_or_else(portolan_audit::parallel::available, usize::from);
    // Files and standard input audited once: with several jobs, they are read while the
    // site loads (reading needs no policy; the site's diagnostics still come first).
    let once = a.from.is_none() && a.listen.is_none() && a.kafka_options.is_empty();
    let shown = Arc::new(AtomicBool::new(false));
    let reading = (once && jobs > 1).then(|| start_parallel(&a.inputs, jobs, shown.clone()));
    let Some(policy) = super::load_site(g, &a.site, json)? else {
        return Ok(Outcome::BadInput);
    };
    shown.store(true, Ordering::Relaxed);
    if !a.kafka_options.is_empty() && a.from.is_none() && a.to.is_none() {
        return crate::contract::fail("usage", "--kafka-option needs --from or --to");
    }
    if let Some(url) = &a.from {
        return super::audit_kafka::worker(policy, a, url);
    }
    if let (Some(l), Some(to)) = (&a.listen, &a.to) {
        return super::audit_kafka::collector(&policy, a, l, to);
    }
    if let Some(l) = &a.listen {
        return live(&policy, a, l);
    }
    let obs = if jobs == 1 {
        let Some(c) = collect(&a.inputs) else {
            return Ok(Outcome::BadInput);
        };
        c.finish()
    } else {
        let r = reading.unwrap_or_else(|| start_parallel(&a.inputs, jobs, shown));
        let Some(obs) = read_parallel(r) else {
            return Ok(Outcome::BadInput);
        };
        obs
    };
    let corrupt = obs.problems().any(|(_, p)| p.kind == ProblemKind::Corrupt);
    let opts = Options {
        firewall: a.firewall.clone(),
    };
    if json && corrupt {
        // A failure: the error document alone (`crate::contract`), naming the damage.
        return Ok(Outcome::BadInput);
    }
    let report = if json {
        json_lines(&policy, obs, &opts, jobs)?
    } else {
        let report = audit_jobs(&policy, obs, &opts, jobs);
        print!("{}", tables(&report, a.all));
        report
    };
    Ok(if corrupt {
        Outcome::BadInput
    } else if report.has_violations() {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

/// `--listen`: audits records as they arrive until SIGINT or SIGTERM.
fn live(policy: &portolan_model::ir::Policy, a: &AuditArgs, url: &str) -> anyhow::Result<Outcome> {
    let Some(addr) = url.strip_prefix("udp://") else {
        return crate::contract::fail(
            "usage",
            format!("--listen takes udp://ADDR:PORT, not `{url}`"),
        );
    };
    let socket = match std::net::UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            return crate::contract::fail("io", format!("cannot listen on udp://{addr}: {e}"))
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))?;
    }
    // JSON lines whatever --format says: the header first, once a signal ends the run cleanly.
    println!("{}", crate::contract::header_line("audit"));
    eprintln!(
        "listening on udp://{}; a report every {}, Ctrl-C to end",
        socket.local_addr()?,
        crate::duration::show(a.every)
    );
    let opts = Options {
        firewall: a.firewall.clone(),
    };
    let every = a.every;
    let mut failed: Option<std::io::Error> = None;
    let totals = portolan_audit::live::run(&socket, policy, &opts, every, &stop, |r| {
        if let Err(e) = period_lines(r) {
            failed.get_or_insert(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let out = std::io::stdout();
    let mut w = out.lock();
    serde_json::to_writer(&mut w, &totals)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(if totals.violations > 0 {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

/// One period of live mode: its violations and flows of unknown devices, then a summary line.
fn period_lines(r: &Report) -> std::io::Result<()> {
    let out = std::io::stdout();
    let mut w = out.lock();
    for f in r.flows.iter().filter(|f| f.status != Status::Conforming) {
        serde_json::to_writer(&mut w, f)?;
        w.write_all(b"\n")?;
    }
    let mut line = serde_json::json!({
        "type": "period",
        "flows": r.flows.len(),
        "conforming": r.conforming,
        "violations": r.violations,
        "unknown_device": r.unknown_device,
        "records": r.inputs.first().and_then(|i| i.flow_records.as_ref()),
        "records_note": r.records_note,
    });
    crate::contract::drop_nulls(&mut line);
    serde_json::to_writer(&mut w, &line)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// Flows rendered per round on each thread of `json_lines`.
const JSON_RUN: usize = 1024;

fn json_lines(
    policy: &portolan_model::ir::Policy,
    obs: Observed,
    opts: &Options,
    jobs: usize,
) -> anyhow::Result<Report> {
    // Not locked for the whole run: the judging threads write the lines by turns.
    let mut w = BufWriter::new(std::io::stdout());
    writeln!(w, "{}", crate::contract::header_line("audit"))?;
    // Each flow's line is rendered on the thread that judged it, in runs of `JSON_RUN`
    // flows, and the runs are written in order; the records are not kept.
    let render = |f: &FlowRecord, buf: &mut Vec<u8>| {
        portolan_audit::jsonl::flow(buf, f);
        buf.push(b'\n');
    };
    let (r, flows) = audit_streamed(policy, obs, opts, jobs, JSON_RUN, &render, |b| {
        w.write_all(b)
    })?;
    for g in &r.groups {
        serde_json::to_writer(&mut w, g)?;
        w.write_all(b"\n")?;
    }
    let mut summary = serde_json::json!({
        "type": "summary",
        "site": r.site,
        "flows": flows,
        "conforming": r.conforming,
        "violations": r.violations,
        "unknown_device": r.unknown_device,
        "inputs": r.inputs,
        "frames": r.frames,
        "dns_responses": r.dns_responses,
        "dns_unparsed": r.dns_unparsed,
        "dns_chains_cut": r.dns_chains_cut,
        "records_note": r.records_note,
    });
    crate::contract::drop_nulls(&mut summary);
    serde_json::to_writer(&mut w, &summary)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(r)
}

/// The house table, wrapped to the terminal's width: peer names and reasons can be long.
fn new_table(header: &[&str]) -> Table {
    let mut t = report::table(header);
    crate::table::fit(&mut t);
    t
}

fn endpoint(a: IpAddr, port: Option<u16>) -> String {
    let a = match a {
        IpAddr::V6(v) => format!("[{v}]"),
        v => v.to_string(),
    };
    port.map_or(a.clone(), |p| format!("{a}:{p}"))
}

/// The summary per device group, then the violations (and with `all` every flow of a device).
pub fn tables(r: &Report, all: bool) -> String {
    let mut out = String::new();
    let mut g = new_table(&["group", "profile", "conforming", "violations", "unused"]);
    for s in &r.groups {
        let mut unused = s.unused.join("\n");
        if !s.unused_optional.is_empty() {
            if !unused.is_empty() {
                unused.push('\n');
            }
            unused.push_str(&format!("({} optional)", s.unused_optional.len()));
        }
        g.add_row(vec![
            s.group.clone(),
            s.profile.clone()
                + &s.mode
                    .as_ref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
            s.conforming.to_string(),
            s.violations.to_string(),
            unused,
        ]);
    }
    out.push_str(&format!("{g}\n"));
    let shown: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.status == Status::Violation || all)
        .collect();
    if !shown.is_empty() {
        let mut t = new_table(&["group", "flow", "peer names", "verdict", "why"]);
        for f in shown {
            let mut flow = format!(
                "{} {} → {}",
                f.protocol,
                endpoint(f.src, f.sport),
                endpoint(f.dst, f.dport)
            );
            if let Some(i) = &f.icmp_type {
                flow.push_str(&format!(" {i}"));
            }
            if let Some(s) = &f.spi {
                flow.push_str(&format!(" spi {s}"));
            }
            let verdict = match f.status {
                Status::Conforming => f.rule.clone().unwrap_or_else(|| "conforming".into()),
                Status::UnknownDevice => "unknown device".into(),
                _ => {
                    let kinds: Vec<&str> = f.violation.iter().map(|k| k.name()).collect();
                    format!("unexpected {}", kinds.join(", "))
                }
            };
            t.add_row(vec![
                f.group.clone().unwrap_or_default(),
                flow,
                f.peer_names.join("\n"),
                verdict,
                f.reason.clone().unwrap_or_default(),
            ]);
        }
        // The flow (`10.20.0.33:41000 → 203.0.113.66:8080`) and the verdict (the rule,
        // `profile/flow`) stay whole: people and scripts search for them; the rest wraps.
        crate::table::keep_whole(&mut t, &[1, 3]);
        out.push_str(&format!("{t}\n"));
    }
    out.push_str(&format!(
        "{} flow(s): {} conforming, {} violation(s), {} of unknown devices",
        r.flows.len(),
        r.conforming,
        r.violations,
        r.unknown_device
    ));
    out.push_str(&format!(
        "; {} frame(s), {} DNS answer(s)\n",
        r.frames.frames, r.dns_responses
    ));
    if let Some(n) = &r.records_note {
        out.push_str(&format!(
            "note: {n}; unused flows are not proof of absence\n"
        ));
    }
    if r.dns_chains_cut > 0 {
        out.push_str(&format!(
            "{} DNS answer(s) had a CNAME chain longer than {} names: their addresses carry only the {} names nearest to them\n",
            r.dns_chains_cut,
            portolan_audit::dns::MAX_CHAIN,
            portolan_audit::dns::MAX_CHAIN
        ));
    }
    let f = &r.frames;
    if f.not_ip + f.fragments + f.malformed > 0 || !f.link_types.is_empty() {
        out.push_str(&format!(
            "not counted in flows: {} non-IP, {} later fragments, {} malformed, {} of unknown link types\n",
            f.not_ip,
            f.fragments,
            f.malformed,
            f.link_types.values().sum::<u64>()
        ));
    }
    out
}
