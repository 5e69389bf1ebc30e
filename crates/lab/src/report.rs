//! The lab's result: one row per probe (device, flow, kind, traffic, expected, observed) and
//! a summary. Rendering (table, JSON) is the CLI's business.

use std::net::IpAddr;

use serde::Serialize;

use crate::probes::{Fate, Kind, Probe};
use crate::send::Observed;

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub device: String,
    pub flow: String,
    pub kind: Kind,
    /// `tcp/443`, `udp/500`, `icmp echo`, `esp`, `dns NAME`.
    pub traffic: String,
    pub src: IpAddr,
    /// The destination address; `firewall ADDR` for the firewall's own services.
    pub dst: String,
    pub expected: Fate,
    #[serde(flatten)]
    pub observed: Observed,
    /// Expected and observed agree (a skipped probe counts as agreeing).
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a forged probe: the zone it was sent from (and the MAC, when chosen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_from: Option<String>,
    /// For a passing required probe: the comment of the rule that admitted it in the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_by: Option<String>,
}

impl Row {
    pub fn new(p: &Probe, observed: Observed) -> Self {
        let ok = matches!(
            (&p.expected, &observed),
            (_, Observed::Skip(_)) | (Fate::Pass, Observed::Pass) | (Fate::Drop, Observed::Drop)
        );
        let dst = if p.broadcast {
            format!("broadcast {}", p.dst)
        } else if p.to_firewall {
            format!("firewall {}", p.dst)
        } else {
            p.dst.to_string()
        };
        let mut traffic = p.traffic.describe();
        if let Some(s) = p.sport {
            traffic.push_str(&format!(" from port {s}"));
        }
        let sent_from = p.forged.as_ref().map(|f| match &f.mac {
            Some(m) => format!("zone {}, MAC {m}", f.zone),
            None => format!("zone {}", f.zone),
        });
        Row {
            sent_from,
            admitted_by: None,
            device: p.device.clone(),
            flow: p.flow.clone(),
            kind: p.kind,
            traffic,
            src: p.src,
            dst,
            expected: p.expected,
            observed,
            ok,
            note: p.note.clone(),
        }
    }
}

impl Row {
    /// Records the rule that admitted the probe (`by`: its comment, and those of the rules
    /// written alike); a rule that does not carry the probe's `profile/flow` makes the row a
    /// mismatch.
    pub fn admitted(&mut self, by: &[String]) {
        let ours = by.iter().find(|c| crate::trace::names(c, &self.flow));
        let shown = match ours {
            Some(c) => c.clone(),
            None => by.join("; "),
        };
        if ours.is_none() {
            self.ok = false;
            self.note = Some(format!(
                "admitted by a rule for `{shown}`, not by the rule of {}: a wider rule lets it through",
                self.flow
            ));
        }
        self.admitted_by = Some(shown);
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub probes: usize,
    /// Probes whose expectation was pass / drop (sent ones only).
    pub expected_pass: usize,
    pub expected_drop: usize,
    pub matched: usize,
    pub mismatched: usize,
    pub skipped: usize,
    /// Sent probes whose expectation comes from the site's facts, not the IR.
    pub adversarial: usize,
    /// Passing required probes whose admitting rule was read from the kernel's trace.
    pub attributed: usize,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub site: String,
    pub rows: Vec<Row>,
    pub summary: Summary,
    /// The namespaces the lab used (left in place with `--keep`).
    pub namespaces: Vec<String>,
    pub kept: bool,
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(site: &str, rows: Vec<Row>, seconds: f64) -> Self {
        let mut s = Summary {
            probes: rows.len(),
            seconds,
            ..Summary::default()
        };
        for r in &rows {
            if matches!(r.observed, Observed::Skip(_)) {
                s.skipped += 1;
                continue;
            }
            match r.expected {
                Fate::Pass => s.expected_pass += 1,
                Fate::Drop => s.expected_drop += 1,
            }
            if r.kind.adversarial() {
                s.adversarial += 1;
            }
            if r.admitted_by.is_some() {
                s.attributed += 1;
            }
            if r.ok {
                s.matched += 1;
            } else {
                s.mismatched += 1;
            }
        }
        Report {
            site: site.to_string(),
            rows,
            summary: s,
            namespaces: Vec::new(),
            kept: false,
            notes: Vec::new(),
        }
    }

    /// Every sent probe behaved as the policy says.
    pub fn all_match(&self) -> bool {
        self.summary.mismatched == 0
    }
}
