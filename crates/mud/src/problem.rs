//! Problems found in a MUD file, each with the JSON path it concerns (an RFC 6901 JSON Pointer
//! into the file as written), a stable code and a message. The importer repairs what real files
//! get wrong and reports each repair as a warning; in strict mode the same deviations are errors.

use std::fmt;

use portolan_model::Severity;
use serde::Serialize;

/// One problem in a MUD file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Stable kebab-case code (`draft-acl-container`, `hex-ethertype`, …).
    pub code: &'static str,
    /// JSON Pointer (RFC 6901) into the file: `/ietf-mud:mud/mud-url`.
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {sev}[{}]: {}", self.code, self.message)
    }
}

/// Appends one reference token to a JSON Pointer, escaping `~` and `/` (RFC 6901 section 3).
pub fn join(path: &str, token: impl fmt::Display) -> String {
    let t = token.to_string().replace('~', "~0").replace('/', "~1");
    format!("{path}/{t}")
}

/// Collects problems while a pass walks a file. `deviation` records an RFC deviation: an error
/// in strict mode, a warning (the repair was made) otherwise.
#[derive(Debug, Default)]
pub struct Problems {
    pub strict: bool,
    pub list: Vec<Problem>,
}

impl Problems {
    pub fn new(strict: bool) -> Self {
        Problems {
            strict,
            list: Vec::new(),
        }
    }

    /// Something the RFCs do not allow, which lenient mode repairs.
    pub fn deviation(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        let severity = if self.strict {
            Severity::Error
        } else {
            Severity::Warning
        };
        self.push(severity, path, code, message.into());
    }

    /// Something allowed that Portolan cannot carry, or that changes what is enforced.
    pub fn warning(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        self.push(Severity::Warning, path, code, message.into());
    }

    /// Something that makes the file (or the part at `path`) unusable in either mode.
    pub fn error(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        self.push(Severity::Error, path, code, message.into());
    }

    fn push(&mut self, severity: Severity, path: &str, code: &'static str, message: String) {
        self.list.push(Problem {
            severity,
            code,
            path: path.to_string(),
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Problem::is_error)
    }

    pub fn errors(&self) -> Vec<Problem> {
        self.list.iter().filter(|p| p.is_error()).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(join("/a", "b/c~d"), "/a/b~1c~0d");
        assert_eq!(join("", 3), "/3");
    }
}
