//! Outcomes, exit codes, and rendering of diagnostics for people.

use portolan_model::Diagnostic;

/// Exit code for bad input or usage.
pub const EXIT_INPUT: u8 = 2;

/// How a command ended, as a script sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the command worked and found problems (violations, failed flows).
    Findings,
    /// Exit 2: the input was bad; diagnostics were already printed.
    BadInput,
}

/// Prints diagnostics to stderr, each with the offending source line and a caret when the
/// file can be read.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    // Under --format json they are kept for the run's one document (`crate::contract`).
    if crate::contract::collect(diags) {
        return;
    }
    for d in diags {
        eprintln!("{d}");
        if d.line > 0 {
            if let Some(line) = source_line(&d.file, d.line) {
                let col = usize::try_from(d.column.max(1)).unwrap_or(1);
                eprintln!("   | {line}");
                eprintln!("   | {}^", " ".repeat(col.saturating_sub(1)));
            }
        }
    }
}

fn source_line(file: &str, line: u64) -> Option<String> {
    let text = if let Some(name) = file.strip_prefix("catalog/") {
        portolan_model::catalog::EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())?
    } else {
        std::fs::read_to_string(file).ok()?
    };
    text.lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)
        .map(str::to_string)
}
