//! The crate's one error type.

use portolan_model::Diagnostic;

use crate::code::Code;

use crate::problem::{PathMap, Problem};

fn location(line: &usize, column: &usize) -> String {
    match (*line, *column) {
        (0, _) => String::new(),
        (l, 0) => format!("{l}: "),
        (l, c) => format!("{l}:{c}: "),
    }
}

/// The root pointer `""` is shown as `/`, as [`Problem`] shows it.
fn shown(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Why a MUD file could not be imported or exported, or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum MudError {
    /// The bytes are not JSON. `line` and `column` are 1-based (0 when unknown); printed as
    /// `LINE:COLUMN: error[not-json]: …` so that `file:` in front makes the usual
    /// `file:line:column:` location.
    #[error("{}error[not-json]: {reason}", location(.line, .column))]
    NotJson {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The file is JSON but not a MUD file, or a member has the wrong JSON type. `path` is a
    /// JSON Pointer (RFC 6901) into the file as written; printed as `PATH: error[CODE]: …` like
    /// a [`Problem`].
    #[error("{}: error[{code}]: {reason}", shown(.path))]
    Json {
        path: String,
        code: Code,
        reason: String,
    },
    /// The file is refused: every error found (and the warnings seen on the way).
    #[error("the MUD file is refused: {} error(s)", .problems.iter().filter(|p| p.is_error()).count())]
    Refused { problems: Vec<Problem> },
    /// The profile built from the file does not validate (see `docs/profile-format.md`).
    #[error("the profile built from the MUD file does not validate: {} problem(s)", .diagnostics.len())]
    Profile {
        diagnostics: Vec<Diagnostic>,
        /// The profile text that failed, for a person to inspect.
        yaml: String,
    },
    /// The export options or the profile cannot make a MUD file.
    #[error("{0}")]
    Export(String),
    /// The signature, certificate or trust anchor could not be read.
    #[error("cannot read {what}: {reason}")]
    SignatureInput { what: &'static str, reason: String },
    /// The signature was read and does not verify: bad signature, untrusted or wrong signer,
    /// expired certificate.
    #[error("signature refused: {0}")]
    SignatureRefused(String),
}

impl MudError {
    pub(crate) fn json(path: impl Into<String>, code: Code, reason: impl Into<String>) -> Self {
        MudError::Json {
            path: path.into(),
            code,
            reason: reason.into(),
        }
    }

    /// A `serde_json` syntax error, its location once and 1-based.
    pub(crate) fn not_json(e: &serde_json::Error) -> Self {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let reason = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
        // serde_json counts the column of the last character read: 0 when the error comes
        // right after a line break (end of input), where the first column is meant.
        let column = if e.line() == 0 { 0 } else { e.column().max(1) };
        MudError::NotJson {
            line: e.line(),
            column,
            reason,
        }
    }

    /// Rewrites every JSON path with `map` (see [`PathMap`]).
    pub(crate) fn restore_paths(&mut self, map: &PathMap) {
        match self {
            MudError::Json { path, .. } => *path = map.original(path),
            MudError::Refused { problems } => map.restore(problems),
            _ => {}
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        MudError::SignatureRefused(reason.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_json_says_where_once_and_one_based() {
        let e = serde_json::from_str::<serde_json::Value>("{\n").expect_err("not JSON");
        let m = MudError::not_json(&e);
        assert_eq!(
            m.to_string(),
            "2:1: error[not-json]: EOF while parsing an object"
        );
        let e = serde_json::from_str::<serde_json::Value>("{\"a\": x}").expect_err("not JSON");
        assert_eq!(
            MudError::not_json(&e).to_string(),
            "1:7: error[not-json]: expected value"
        );
    }

    #[test]
    fn json_errors_print_like_problems() {
        let e = MudError::json("", Code::NotAMudFile, "no container");
        assert_eq!(e.to_string(), "/: error[not-a-mud-file]: no container");
    }
}
