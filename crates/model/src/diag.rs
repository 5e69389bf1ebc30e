//! Diagnostics: every problem found in an input file, with where it is (file, line, column),
//! a stable kebab-case code a script can match on (`code.rs`), a help line saying how to fix
//! it, and what it is about ([`Subject`]) for callers that act on it.

mod code;

use std::fmt;

use serde::Serialize;

pub use code::{kebab, Code};

/// How bad a problem is. Errors make a file unusable; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A 1-based position in a file; `line == 0` means the position is unknown. `source` says
/// which of the sink's files (0: the one it was made for; a site's inventories: see
/// [`Sink::add_file`]); it travels in a YAML value's `Location` as its source id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pos {
    #[serde(skip)]
    pub source: u32,
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub const UNKNOWN: Pos = Pos {
        source: 0,
        line: 0,
        column: 0,
    };

    pub fn new(line: u64, column: u64) -> Self {
        Pos {
            source: 0,
            line,
            column,
        }
    }
}

impl From<serde_saphyr::Location> for Pos {
    fn from(l: serde_saphyr::Location) -> Self {
        Pos {
            source: l.source_id(),
            line: l.line(),
            column: l.column(),
        }
    }
}

/// What a diagnostic is about, as data: the param, role, mode, … its message names in words.
/// Callers that act on a diagnostic (probe names the command-line flag to fix) read this and
/// the code, never the wording. Not part of the JSON or text output, which the message covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Subject {
    /// Nothing a caller acts on, or the position says it all.
    #[default]
    None,
    /// A profile param (`missing-param`, `invalid-param`, `invalid-hostname` of a param value).
    Param(String),
    /// A role endpoint the site must bind (`unbound-role`).
    Role(String),
    /// A local service the site must declare or bind (`unbound-service`): `dns`, `ntp`, …
    Service(String),
    /// A device's choice of mode (`missing-mode`, `unknown-mode`), with the modes the profile
    /// offers.
    Mode { choices: Vec<String> },
    /// A flow of a profile (`unknown-flow`, `required-flow-disabled`).
    Flow(String),
    /// A feature of a profile (`unknown-feature`, `unused-feature`).
    Feature(String),
    /// An endpoint of a profile (`unknown-endpoint`, `unused-endpoint`).
    Endpoint(String),
    /// A device or device group of a site.
    Device(String),
    /// A zone of a site.
    Zone(String),
    /// An interface of a multi-homed device's profile (`unknown-interface`,
    /// `unbound-interface`).
    Interface(String),
}

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, written in kebab-case (`port-out-of-range`, `unknown-endpoint`, …).
    pub code: Code,
    pub message: String,
    pub help: String,
    pub file: String,
    pub line: u64,
    pub column: u64,
    /// What the problem is about, for callers; not shown.
    #[serde(skip)]
    pub subject: Subject,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {sev}[{}]: {}", self.file, self.code, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {sev}[{}]: {}",
                self.file, self.line, self.column, self.code, self.message
            )?;
        }
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file while a validator walks it, and for the files that file
/// names (a site's inventories), each found by its position's `source`.
#[derive(Debug)]
pub struct Sink {
    /// The file the sink was made for, then those added with [`Sink::add_file`].
    files: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Sink {
    pub fn new(file: impl Into<String>) -> Self {
        Sink {
            files: vec![file.into()],
            diagnostics: Vec::new(),
        }
    }

    /// A sink for the same files with no diagnostics yet, whose diagnostics the caller moves
    /// into this one (the devices checked on other threads, `compile::compile_on`).
    pub fn fork(&self) -> Sink {
        Sink {
            files: self.files.clone(),
            diagnostics: Vec::new(),
        }
    }

    /// The file the sink was made for.
    pub fn file(&self) -> &str {
        &self.files[0]
    }

    /// Another file whose problems go here: the `source` its positions carry.
    pub fn add_file(&mut self, file: impl Into<String>) -> u32 {
        self.files.push(file.into());
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX)
    }

    pub fn error(
        &mut self,
        at: Pos,
        code: Code,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Error, at, code, message.into(), help.into());
    }

    pub fn warning(
        &mut self,
        at: Pos,
        code: Code,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Warning, at, code, message.into(), help.into());
    }

    /// An error about `subject` (see [`Subject`]).
    pub fn error_about(
        &mut self,
        subject: Subject,
        at: Pos,
        code: Code,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Error, at, code, message.into(), help.into())
            .subject = subject;
    }

    /// A warning about `subject` (see [`Subject`]).
    pub fn warning_about(
        &mut self,
        subject: Subject,
        at: Pos,
        code: Code,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Warning, at, code, message.into(), help.into())
            .subject = subject;
    }

    fn push(
        &mut self,
        severity: Severity,
        at: Pos,
        code: Code,
        message: String,
        help: String,
    ) -> &mut Diagnostic {
        let i = self.diagnostics.len();
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            message,
            help,
            file: self
                .files
                .get(at.source as usize)
                .unwrap_or(&self.files[0])
                .clone(),
            line: at.line,
            column: at.column,
            subject: Subject::None,
        });
        &mut self.diagnostics[i]
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics sorted by file (the sink's own first, then in the order added) and
    /// position, errors and warnings interleaved.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        let order = |f: &str| self.files.iter().position(|x| x == f).unwrap_or(0);
        let mut keyed: Vec<_> = std::mem::take(&mut self.diagnostics)
            .into_iter()
            .map(|d| ((order(&d.file), d.line, d.column, d.code.as_str()), d))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.into_iter().map(|(_, d)| d).collect()
    }
}

/// Which format a YAML file is read as, so that a diagnostic's help names the schema and the
/// document that describe that format (a site's unknown field points to `portolan schema
/// site`, not to the profile's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A device profile (docs/profile-format.md, `portolan schema profile`).
    Profile,
    /// A site (docs/site-format.md, `portolan schema site`).
    Site,
    /// A `portolan lint --config` file (docs/lint.md; it has no schema of its own).
    LintConfig,
}

impl FileKind {
    /// Where every field of the format is listed.
    fn fields(self) -> &'static str {
        match self {
            FileKind::Profile => "`portolan schema profile` lists every field",
            FileKind::Site => "`portolan schema site` lists every field",
            FileKind::LintConfig => "docs/lint.md lists every field",
        }
    }

    /// The document that gives each field's type.
    fn doc(self) -> &'static str {
        match self {
            FileKind::Profile => "docs/profile-format.md",
            FileKind::Site => "docs/site-format.md",
            FileKind::LintConfig => "docs/lint.md",
        }
    }
}

/// Turns a YAML parse or shape error of a `kind` file into a diagnostic with a stable code.
pub fn from_yaml_error(file: &str, kind: FileKind, err: &serde_saphyr::Error) -> Diagnostic {
    let pos = err.location().map(Pos::from).unwrap_or(Pos::UNKNOWN);
    let full = err.to_string();
    // serde-saphyr renders a source snippet after the first line; keep the message line only.
    let message = full
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .trim()
        .trim_start_matches("error: ")
        .to_string();
    // Drop a leading "line N column M: ": the position is reported separately.
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_string()
        }
        _ => message,
    };
    let (code, help) = if message.contains("unknown field") {
        (
            Code::UnknownField,
            format!("remove the field or fix its spelling; {}", kind.fields()),
        )
    } else if message.contains("missing field") {
        (Code::MissingField, "add the required field".to_string())
    } else if message.contains("unknown variant") {
        (
            Code::UnknownValue,
            "use one of the values listed".to_string(),
        )
    } else if message.contains("invalid type") || message.contains("invalid value") {
        (
            Code::InvalidValue,
            format!("see {} for the field's type", kind.doc()),
        )
    } else {
        (
            Code::YamlSyntax,
            "fix the YAML syntax at this position".to_string(),
        )
    };
    // Plain words for the parser's common messages, a suggestion for a misspelt name.
    let (message, help) = match crate::suggest::plain_yaml(&message) {
        Some((m, h)) if code == Code::YamlSyntax => (m, h),
        _ => match crate::suggest::for_unknown_name(&message) {
            Some(near) => (message, format!("did you mean `{near}`? {help}")),
            None => (message, help),
        },
    };
    Diagnostic {
        severity: Severity::Error,
        code,
        message,
        help,
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        subject: Subject::None,
    }
}

/// Why a file's text could not be had.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// The file is not UTF-8: a `not-utf8` diagnostic at the first bad byte.
    NotUtf8(Box<Diagnostic>),
}

/// Reads a YAML or JSON file as text. A byte sequence that is not UTF-8 is reported as a
/// diagnostic with the line and column (in characters) where it starts, like any other
/// problem of the file's content, rather than as an I/O error.
pub fn read_text(path: &std::path::Path) -> Result<String, ReadError> {
    let bytes = std::fs::read(path).map_err(ReadError::Io)?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ReadError::NotUtf8(Box::new(Diagnostic {
            severity: Severity::Error,
            code: Code::NotUtf8,
            message: "the file is not UTF-8 text: this byte starts no UTF-8 character".into(),
            help: "save the file as UTF-8".into(),
            file: path.display().to_string(),
            line: u64::try_from(line).unwrap_or(u64::MAX),
            column: u64::try_from(column).unwrap_or(u64::MAX),
            subject: Subject::None,
        }))
    })
}
