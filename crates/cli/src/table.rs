//! How wide a table may be, and fitting one to it (issue 19): the terminal's width when
//! standard output is a terminal that reports one, else 80 — a terminal that reports 0×0
//! (serial consoles, `script`) and output to a pipe or file get 80 too, never one-letter
//! columns. Output to a pipe or a file never depends on the environment (`COLUMNS` is not
//! read): a script sees the same text wherever it runs. Cells that do not fit are wrapped by
//! comfy-table within their column.

use comfy_table::{ContentArrangement, Table};

/// The width used when nothing reports one.
pub const DEFAULT_WIDTH: u16 = 80;

/// The width tables are fitted to (see the module documentation).
pub fn width() -> u16 {
    choose(terminal())
}

/// The terminal's width if positive, else [`DEFAULT_WIDTH`].
fn choose(terminal: Option<u16>) -> u16 {
    terminal.filter(|&t| t > 0).unwrap_or(DEFAULT_WIDTH)
}

/// The terminal's width, when standard output is one (comfy-table asks the terminal).
fn terminal() -> Option<u16> {
    let probe = Table::new();
    if probe.is_tty() {
        probe.width()
    } else {
        None
    }
}

/// Wraps `t`'s cells so that the whole table fits [`width`].
pub fn fit(t: &mut Table) -> &mut Table {
    t.set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width())
}

/// Keeps the columns `whole` at their content's width (ids, ports: a wrapped id is misread);
/// the other columns take the wrapping. Call after the rows are added.
pub fn keep_whole(t: &mut Table, whole: &[usize]) {
    for &i in whole {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
}

/// `text` (one line) wrapped at spaces to [`width`], each line ending in a newline; later
/// lines indented by `indent` spaces. A word longer than the width stays whole.
pub fn wrap(text: &str, indent: usize) -> String {
    wrap_at(text, usize::from(width()), indent)
}

fn wrap_at(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
        } else if len > 0 && !line.trim().is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::{choose, wrap_at, DEFAULT_WIDTH};

    #[test]
    fn prose_wraps_at_spaces() {
        assert_eq!(wrap_at("aaa bbb ccc", 7, 2), "aaa bbb\n  ccc\n");
        assert_eq!(wrap_at("aaaaaaaaaa b", 4, 0), "aaaaaaaaaa\nb\n");
        assert_eq!(wrap_at("short", 80, 0), "short\n");
    }

    #[test]
    fn a_terminal_reporting_nothing_gets_the_default() {
        assert_eq!(choose(Some(0)), DEFAULT_WIDTH);
        assert_eq!(choose(None), DEFAULT_WIDTH);
        assert_eq!(choose(Some(132)), 132);
    }
}
