//! Hand-written flow tables (`tests/data/flows/*.flows`): for a lab fixture, what the kernel
//! must do with chosen packets, written from the site file and the profiles — the expectation
//! that does not come from the IR (the lab's own `expected` column comes from `oracle.rs`,
//! which reads the same IR as the emitter, so it agrees with an IR that is wrong).
//!
//! One row a line, columns separated by `|`: the lab's probe kind, source, destination and
//! traffic as the lab's report writes them, `pass` or `drop`, and why (required: a row says
//! where its verdict comes from). `#` starts a comment line. A row must match at least one
//! probe the lab sent, and every probe it matches must have been observed as the row says.

use std::path::Path;

use portolan_lab::report::Report;

#[derive(Debug)]
pub struct Row {
    pub line: usize,
    pub kind: String,
    pub src: String,
    pub dst: String,
    pub traffic: String,
    pub verdict: String,
    pub why: String,
}

/// The rows of a table, or what is wrong with its text.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [kind, src, dst, traffic, verdict, why] = f.as_slice() else {
            return Err(format!("line {}: six columns, not {}", i + 1, f.len()));
        };
        if !matches!(*verdict, "pass" | "drop") {
            return Err(format!("line {}: verdict `{verdict}`", i + 1));
        }
        if why.is_empty() || src.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("line {}: a source address and a reason", i + 1));
        }
        rows.push(Row {
            line: i + 1,
            kind: kind.to_string(),
            src: src.to_string(),
            dst: dst.to_string(),
            traffic: traffic.to_string(),
            verdict: verdict.to_string(),
            why: why.to_string(),
        });
    }
    if rows.is_empty() {
        return Err("no rows".into());
    }
    Ok(rows)
}

/// Reads and parses `tests/data/flows/<name>`.
pub fn load(name: &str) -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/flows")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every row of table `name` against what the kernel did in `r`; panics listing each row
/// that found no probe or whose probes were observed otherwise.
pub fn check(name: &str, r: &Report) {
    let rows = load(name);
    let mut wrong = Vec::new();
    for row in &rows {
        let seen: Vec<&str> = r
            .rows
            .iter()
            .filter(|x| {
                x.kind.as_str() == row.kind
                    && x.src.to_string() == row.src
                    && x.dst == row.dst
                    && x.traffic == row.traffic
            })
            .map(|x| x.observed.as_str())
            .collect();
        if seen.is_empty() || seen.iter().any(|o| *o != row.verdict) {
            wrong.push(format!(
                "  {name}:{} {} {} -> {} {}: want {} ({}), observed {seen:?}",
                row.line, row.kind, row.src, row.dst, row.traffic, row.verdict, row.why
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the kernel did not do what the hand-written table says:\n{}",
        wrong.join("\n")
    );
    eprintln!("    {name}: {} hand-written rows hold", rows.len());
}

/// The table files present, sorted.
pub fn files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flows");
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".flows"))
        .collect();
    v.sort();
    v
}
