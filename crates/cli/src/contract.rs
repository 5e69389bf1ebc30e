//! The JSON contract of every `--format json` output (README, "JSON contract"): one document
//! per run on standard output, an object whose first key is `"format": "portolan/<kind>/v1"`,
//! described by `schemas/<kind>.v1.json` (printed by `portolan schema KIND`). What the same
//! thing looks like everywhere is decided here once:
//!
//! - **absent, never null**: a key whose value is unknown or does not apply is left out
//!   ([`document`] drops every `null` a command's structs would write);
//! - **protocol**: `{"name": "udp", "number": 17}` ([`protocol`]), name or number left out
//!   where there is none, the string `"unspecified"` where the source leaves it open;
//! - **ports**: a list of `{"lo": 500, "hi": 500}` ranges (`{"param": "id"}` for a profile's
//!   param), the string `"unspecified"` where the source leaves them open, absent for a
//!   protocol without ports ([`ports`]);
//! - **conditions**: `{"feature": "id"}`, `{"version": ">= 2.8"}`, `{"region": "eu"}`;
//! - **failures**: one `portolan/error/v1` document with the diagnostics (code, severity,
//!   file, line, column, message, help), exit 2 ([`Diag`], [`error_document`]); without
//!   `--format json` the same diagnostics as text on standard error.
//!
//! JSON lines outputs (`audit`, `enforce`) are streams: their first line is a header
//! `{"format": "portolan/<kind>/v1", "type": "header"}` and every line an object with a `type`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use portolan_model::{Condition, Diagnostic, PortItem, PortSpec, Protocol, Severity};
use serde::Serialize;
use serde_json::{Map, Value};

/// The version every kind of document is at.
pub const VERSION: &str = "v1";

/// `portolan/<kind>/v1`.
pub fn format_of(kind: &str) -> String {
    format!("portolan/{kind}/{VERSION}")
}

/// Whether this run answers in JSON (set once by `main`).
static JSON: AtomicBool = AtomicBool::new(false);
/// Whether a document was printed to standard output.
static PRINTED: AtomicBool = AtomicBool::new(false);
/// Diagnostics met during a JSON run, printed at its end (in the error document on failure).
static COLLECTED: Mutex<Vec<Diag>> = Mutex::new(Vec::new());

pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// One diagnostic, as every document writes it (`validate`'s files, the error document).
/// `file`, `line`, `column` and `help` are absent when unknown.
#[derive(Clone, Debug, Serialize)]
pub struct Diag {
    pub code: String,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// In a JSON input (a MUD file), where: a JSON Pointer (RFC 6901), `/ietf-mud:mud/...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diag {
    /// An error with a code and a message only.
    pub fn error(code: &str, message: impl Into<String>) -> Diag {
        Diag {
            code: code.to_string(),
            severity: "error",
            file: None,
            line: None,
            column: None,
            pointer: None,
            message: message.into(),
            help: None,
        }
    }

    pub fn file(mut self, file: impl Into<String>) -> Diag {
        self.file = Some(file.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    pub fn warning(mut self) -> Diag {
        self.severity = "warning";
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }
}

impl From<&Diagnostic> for Diag {
    fn from(d: &Diagnostic) -> Diag {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Diag {
            code: d.code.to_string(),
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            file: nonempty(&d.file),
            line: (d.line > 0).then_some(d.line),
            column: (d.line > 0 && d.column > 0).then_some(d.column),
            pointer: None,
            message: d.message.clone(),
            help: nonempty(&d.help),
        }
    }
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(l) = self.line {
                write!(f, ":{l}")?;
                if let Some(c) = self.column {
                    write!(f, ":{c}")?;
                }
            }
            if let Some(p) = &self.pointer {
                write!(f, ":{}", if p.is_empty() { "/" } else { p })?;
            }
            write!(f, ": ")?;
        }
        write!(f, "{}[{}]: {}", self.severity, self.code, self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}

/// A failure a command stops on, with what the error document needs; returned through
/// `anyhow` (`Err(Failure {..}.into())`) and read back by `main`.
#[derive(Debug)]
pub struct Failure(pub Diag);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.message)
    }
}

impl std::error::Error for Failure {}

/// `Err` of a failure with this code and message.
pub fn fail<T>(code: &str, message: impl Into<String>) -> anyhow::Result<T> {
    Err(Failure(Diag::error(code, message)).into())
}

/// A file that cannot be read: code `io`, the file named.
pub fn unreadable(path: &std::path::Path, e: &std::io::Error) -> anyhow::Error {
    Failure(
        Diag::error("io", format!("cannot read {}: {e}", path.display()))
            .file(path.display().to_string())
            .help("check the path and its permissions"),
    )
    .into()
}

/// Reads a file whole; an error is [`unreadable`].
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| unreadable(path, &e))
}

/// Reads a text file whole; an error is [`unreadable`].
pub fn read_to_string(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))
}

/// In a JSON run, keeps `diags` for the end of the run and returns true; else false (the
/// caller prints them as text).
pub fn collect(diags: &[Diagnostic]) -> bool {
    if !json() {
        return false;
    }
    push(diags.iter().map(Diag::from));
    true
}

/// Keeps diagnostics of a JSON run (see [`collect`]); in a run for people, prints them.
pub fn push(diags: impl IntoIterator<Item = Diag>) {
    if json() {
        COLLECTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(diags);
    } else {
        for d in diags {
            eprintln!("{d}");
        }
    }
}

/// The diagnostics kept so far, taken.
pub fn take() -> Vec<Diag> {
    std::mem::take(
        &mut *COLLECTED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Whether an error is among the diagnostics kept.
pub fn has_error() -> bool {
    COLLECTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(Diag::is_error)
}

/// Whether a document reached standard output.
pub fn printed() -> bool {
    PRINTED.load(Ordering::Relaxed)
}

/// `value` as a document of `kind`: an object with `format` first, every `null` dropped. A
/// value that is not an object is put under `items`.
pub fn document<T: Serialize + ?Sized>(kind: &str, value: &T) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(value)?;
    drop_nulls(&mut v);
    protocols(&mut v);
    let body = match v {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("items".into(), other);
            m
        }
    };
    #[derive(Serialize)]
    struct Doc<'a> {
        format: String,
        #[serde(flatten)]
        body: &'a Map<String, Value>,
    }
    Ok(serde_json::to_value(Doc {
        format: format_of(kind),
        body: &body,
    })?)
}

/// Prints `value` as a pretty document of `kind` on standard output.
pub fn print<T: Serialize + ?Sized>(kind: &str, value: &T) -> anyhow::Result<()> {
    let doc = document(kind, value)?;
    println!("{}", pretty(&doc)?);
    PRINTED.store(true, Ordering::Relaxed);
    Ok(())
}

/// A document as pretty JSON, `format` first (`to_value` sorted the other keys).
pub fn pretty(doc: &Value) -> serde_json::Result<String> {
    let Value::Object(m) = doc else {
        return serde_json::to_string_pretty(doc);
    };
    let Some(fmt) = m.get("format") else {
        return serde_json::to_string_pretty(doc);
    };
    let mut rest = m.clone();
    rest.remove("format");
    let fmt = serde_json::to_string(fmt)?;
    if rest.is_empty() {
        return Ok(format!("{{\n  \"format\": {fmt}\n}}"));
    }
    let inner = serde_json::to_string_pretty(&rest)?;
    Ok(format!("{{\n  \"format\": {fmt},{}", &inner[1..]))
}

/// The header line of a JSON lines output of `kind`.
pub fn header_line(kind: &str) -> String {
    PRINTED.store(true, Ordering::Relaxed);
    serde_json::json!({"format": format_of(kind), "type": "header"}).to_string()
}

/// The error document: `diags` and, when the run stopped on an error, that error last.
pub fn error_document(diags: &[Diag]) -> Value {
    serde_json::json!({ "format": format_of("error"), "diagnostics": diags })
}

/// The diagnostic of an error a command stopped on: a [`Failure`]'s own, `io` when an I/O
/// error is its cause, else `invalid-input` with the whole chain as the message.
pub fn diag_of(e: &anyhow::Error) -> Diag {
    if let Some(Failure(d)) = e.downcast_ref::<Failure>() {
        return d.clone();
    }
    let io = e
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some());
    Diag::error(if io { "io" } else { "invalid-input" }, format!("{e:#}"))
}

/// Drops every `null` member of every object (and keeps `null` list items, which no output
/// writes).
pub fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Every `protocol` member written as a name (`"udp"`) or a number (`17`) by a command's
/// structs becomes `{"name", "number"}`; a profile in the file format (`profile`) and a MUD
/// file (`mud`) inside a document keep their own formats.
fn protocols(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match k.as_str() {
                    "profile" | "mud" => {}
                    "protocol" => {
                        let p = match x {
                            Value::String(s) => Protocol::from_name(s),
                            Value::Number(n) => n
                                .as_u64()
                                .and_then(|n| u8::try_from(n).ok())
                                .map(Protocol::from_number),
                            _ => None,
                        };
                        if let Some(p) = p {
                            *x = protocol(&p);
                        }
                    }
                    _ => protocols(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(protocols),
        _ => {}
    }
}

/// A profile's protocol: `{"name", "number"}`, or `"unspecified"`.
pub fn protocol(p: &Protocol) -> Value {
    match p {
        Protocol::Unspecified => return Value::from("unspecified"),
        Protocol::Param(id) => return serde_json::json!({ "param": id }),
        _ => {}
    }
    let mut m = Map::new();
    if !matches!(p, Protocol::Number(_)) {
        m.insert("name".into(), Value::from(p.to_string()));
    }
    if let Some(n) = p.number() {
        m.insert("number".into(), Value::from(n));
    }
    Value::Object(m)
}

/// A profile's ports: a list of ranges and params, `"unspecified"`, or `None` (no ports).
pub fn ports(p: &PortSpec) -> Option<Value> {
    match p {
        PortSpec::None => None,
        PortSpec::Unspecified => Some(Value::from("unspecified")),
        PortSpec::List(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| match i {
                    PortItem::Single(p) => serde_json::json!({"lo": p, "hi": p}),
                    PortItem::Range(a, b) => serde_json::json!({"lo": a, "hi": b}),
                    PortItem::Param(id) => serde_json::json!({"param": id}),
                })
                .collect(),
        )),
    }
}

/// A flow's condition as an object.
pub fn condition(c: &Condition) -> Value {
    match c {
        Condition::Feature(f) => serde_json::json!({"feature": f}),
        Condition::Version(v) => serde_json::json!({"version": v.to_string()}),
        Condition::Region(r) => serde_json::json!({"region": r}),
        Condition::Not(c) => serde_json::json!({"not": condition(c)}),
        Condition::Any(l) => {
            serde_json::json!({"any": l.iter().map(condition).collect::<Vec<_>>()})
        }
        Condition::All(l) => {
            serde_json::json!({"all": l.iter().map(condition).collect::<Vec<_>>()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_first_nulls_dropped() {
        let v = serde_json::json!({"b": null, "a": [{"x": null, "y": 1}]});
        let d = document("show", &v).expect("document");
        assert_eq!(
            d,
            serde_json::json!({"format": "portolan/show/v1", "a": [{"y": 1}]})
        );
        let arr = document("catalog", &[1, 2]).expect("document");
        assert_eq!(arr["items"], serde_json::json!([1, 2]));
        // IANA: UDP is 17, ESP 50; a profile inside keeps the file format's name.
        let p = serde_json::json!({"checks": [{"protocol": "udp"}, {"protocol": 50}],
            "profile": {"protocol": "udp"}});
        let d = document("probe", &p).expect("document");
        assert_eq!(
            d["checks"],
            serde_json::json!([{"protocol": {"name": "udp", "number": 17}},
                {"protocol": {"name": "esp", "number": 50}}])
        );
        assert_eq!(d["profile"]["protocol"], "udp");
    }
}
