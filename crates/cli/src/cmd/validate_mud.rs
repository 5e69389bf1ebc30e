//! `validate` of MUD files (RFC 8520), as `show` and sites accept them: the file is imported
//! leniently (each repair a warning, as `mud import` prints it) and the profile built from it is
//! validated. Its problems become diagnostics of code `mud-file` with the importer's own code
//! and the JSON Pointer in the message, at the line and column where that pointer's member
//! starts in the file.

use portolan_model::{Code, Diagnostic, Severity, Subject};
use portolan_mud::{ImportOptions, MudError, Problem};

/// Whether `validate` should read this file as a MUD file: a `.json` name, or JSON text whose
/// top-level object has `ietf-mud:mud`.
pub fn is_mud(path: &std::path::Path, text: &str) -> bool {
    path.extension().is_some_and(|e| e == "json")
        || (text.trim_start().starts_with('{') && text.contains("\"ietf-mud:mud\""))
}

/// The diagnostics of a MUD file: none when it imports cleanly and its profile validates.
pub fn diagnostics(name: &str, text: &str) -> Vec<Diagnostic> {
    let opts = ImportOptions {
        strict: false,
        file: name.to_string(),
    };
    match portolan_mud::import(text.as_bytes(), &opts) {
        Ok(imported) => imported
            .warnings
            .iter()
            .map(|p| problem(name, text, p))
            .collect(),
        Err(MudError::Refused { problems }) => {
            problems.iter().map(|p| problem(name, text, p)).collect()
        }
        Err(MudError::Profile { diagnostics, .. }) => diagnostics,
        Err(MudError::NotJson {
            line,
            column,
            reason,
        }) => vec![diag(
            name,
            Severity::Error,
            format!("not JSON: {reason}"),
            (line as u64, column as u64),
        )],
        Err(MudError::Json { path, code, reason }) => vec![diag(
            name,
            Severity::Error,
            format!("{}: [{code}] {reason}", shown(&path)),
            locate(text, &path),
        )],
        Err(e) => vec![diag(name, Severity::Error, e.to_string(), (0, 0))],
    }
}

fn problem(name: &str, text: &str, p: &Problem) -> Diagnostic {
    diag(
        name,
        p.severity,
        format!("{}: [{}] {}", shown(&p.path), p.code, p.message),
        locate(text, &p.path),
    )
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn diag(name: &str, severity: Severity, message: String, at: (u64, u64)) -> Diagnostic {
    Diagnostic {
        severity,
        code: Code::MudFile,
        message,
        help: "see `portolan mud import FILE` for the profile this file becomes (RFC 8520)".into(),
        file: name.to_string(),
        line: at.0,
        column: at.1,
        subject: Subject::None,
    }
}

/// Line and column (1-based) of the member a JSON Pointer (RFC 6901) names: its key's opening
/// quote, or the array element's first character. (0, 0) when the pointer does not resolve.
pub fn locate(text: &str, pointer: &str) -> (u64, u64) {
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    let mut at = i;
    for t in &tokens {
        match b.get(i) {
            Some(b'{') => {
                let Some((key_at, value_at)) = find_member(b, i, t) else {
                    return (0, 0);
                };
                at = key_at;
                i = value_at;
            }
            Some(b'[') => {
                let Ok(n) = t.parse::<usize>() else {
                    return (0, 0);
                };
                let Some(el) = nth_element(b, i, n) else {
                    return (0, 0);
                };
                at = el;
                i = el;
            }
            _ => return (0, 0),
        }
    }
    let line = b[..at].iter().filter(|&&c| c == b'\n').count() + 1;
    let start = b[..at]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let column = text[start..at].chars().count() + 1;
    (line as u64, column as u64)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end (exclusive) of the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            Some(j)
        }
    }
}

fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// In the object at `i`: where the member `key` starts and where its value starts.
fn find_member(b: &[u8], i: usize, key: &str) -> Option<(usize, usize)> {
    let mut j = skip_ws(b, i + 1);
    while j < b.len() && b[j] != b'}' {
        let key_at = j;
        let key_end = string_end(b, j)?;
        let k: String = serde_json::from_slice(&b[key_at..key_end]).ok()?;
        j = skip_ws(b, key_end);
        if b.get(j) != Some(&b':') {
            return None;
        }
        let value_at = skip_ws(b, j + 1);
        if k == key {
            return Some((key_at, value_at));
        }
        j = skip_ws(b, value_end(b, value_at)?);
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
    }
    None
}

fn nth_element(b: &[u8], i: usize, n: usize) -> Option<usize> {
    let mut j = skip_ws(b, i + 1);
    let mut k = 0;
    while j < b.len() && b[j] != b']' {
        if k == n {
            return Some(j);
        }
        j = skip_ws(b, value_end(b, j)?);
        if b.get(j) == Some(&b',') {
            j = skip_ws(b, j + 1);
        }
        k += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn a_pointer_is_found_where_a_person_reads_it() {
        let text = "{\n  \"a\": {\"b\": [1, {\"c/d\": 2}]},\n  \"e\": \"x\"\n}\n";
        assert_eq!(locate(text, "/e"), (3, 3));
        assert_eq!(locate(text, "/a/b/1/c~1d"), (2, 19));
        assert_eq!(locate(text, "/a/b/0"), (2, 15));
        assert_eq!(locate(text, "/nope"), (0, 0));
    }
}
