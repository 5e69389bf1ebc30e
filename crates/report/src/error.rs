//! The crate's error type: why a report could not be made.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An overlay file (`--lab`, `--verify`, …) could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An overlay file is not the JSON its command writes; `line`/`column` from the parser,
    /// `field` the path it was reading.
    #[error("{path}:{line}:{column}: not the JSON `portolan {command} --format json` writes (at `{field}`): {reason}")]
    Shape {
        path: PathBuf,
        command: &'static str,
        line: usize,
        column: usize,
        field: String,
        reason: String,
    },
    /// The overlay is about another site.
    #[error("{path}: `site` is `{found}`, but this report is of site `{expected}`")]
    OtherSite {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("cannot emit the nftables ruleset: {0}")]
    Emit(#[from] portolan_emit::EmitError),
    #[error("template: {0:#}")]
    Template(#[from] minijinja::Error),
}
