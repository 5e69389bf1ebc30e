//! Flow logs: records of flows rather than packets. Zeek `conn.log` and `dns.log` (TSV and JSON
//! lines; no maintained crate reads them, so this is a small reader of its own), `conntrack -L`
//! and `conntrack -E` output, and the kernel log lines of the nftables ruleset Portolan emits.
//!
//! Text is read line by line. A line that does not parse is skipped and the first one is
//! reported with its byte offset (as truncated when it is an unfinished last line), so one bad
//! line does not hide the rest of a log. A line longer than [`MAX_LINE`] bytes is skipped
//! without being held in memory (a small gzip file can hold a gigabyte-long line) and reported;
//! it is not counted as a record.

pub mod conntrack;
pub mod netflow;
pub mod nfdump;
pub mod nftlog;
pub mod suricata;
pub mod zeek;

use std::io::BufRead;

use crate::capture::{InputProblem, ProblemKind};
use crate::dns::Names;
use crate::flows::FlowTable;

/// Where the records of a log go.
pub struct Sink<'a> {
    pub flows: &'a mut FlowTable,
    pub names: &'a mut Names,
}

/// The longest line of a flow log, in bytes. Zeek, conntrack and kernel log lines are a few
/// hundred bytes; a Zeek `dns.log` line with a long answer list a few kilobytes.
pub const MAX_LINE: usize = 64 * 1024;

/// One line read by [`read_line`].
struct Line {
    /// Bytes consumed from the input, the newline included.
    consumed: usize,
    /// Ends with a newline (else: the input's unfinished last line).
    complete: bool,
    /// Longer than [`MAX_LINE`]: `buf` was not filled.
    too_long: bool,
}

/// Reads one line into `buf` (cleared first), keeping at most [`MAX_LINE`] bytes of it in
/// memory.
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut line = Line {
        consumed: 0,
        complete: false,
        too_long: false,
    };
    loop {
        let avail = match input.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(line);
        }
        let (take, found) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if !line.too_long {
            if buf.len() + take > MAX_LINE + 1 {
                line.too_long = true;
                buf.clear();
                buf.shrink_to(4096);
            } else {
                buf.extend_from_slice(&avail[..take]);
            }
        }
        input.consume(take);
        line.consumed += take;
        if found {
            line.complete = true;
            return Ok(line);
        }
    }
}

/// Reads lines, calling `line` for each with its byte offset; `line` returns `Err(reason)` for
/// a line it cannot read. Returns the number of lines read and the first problem.
pub fn lines<R, F>(mut input: R, mut line: F) -> (u64, Option<InputProblem>)
where
    R: BufRead,
    F: FnMut(&str) -> Result<(), String>,
{
    let mut buf = Vec::with_capacity(4096);
    let mut offset = 0u64;
    let mut count = 0u64;
    let mut first: Option<InputProblem> = None;
    loop {
        let read = match read_line(&mut input, &mut buf) {
            Ok(l) if l.consumed == 0 => break,
            Ok(l) => l,
            Err(e) => {
                first.get_or_insert(InputProblem {
                    offset,
                    kind: ProblemKind::Corrupt,
                    message: format!("read error: {e}"),
                });
                break;
            }
        };
        let n = read.consumed;
        if read.too_long {
            first.get_or_insert(InputProblem {
                offset,
                kind: ProblemKind::Corrupt,
                message: format!(
                    "a line of {n} bytes is longer than {MAX_LINE} bytes, the most a flow log line may have: skipped"
                ),
            });
            offset += n as u64;
            continue;
        }
        let complete = read.complete;
        let text = String::from_utf8_lossy(&buf);
        let t = text.trim_end_matches(['\n', '\r']);
        if !t.trim().is_empty() {
            count += 1;
            if let Err(why) = line(t) {
                first.get_or_insert(InputProblem {
                    offset,
                    kind: if complete {
                        ProblemKind::Corrupt
                    } else {
                        ProblemKind::Truncated
                    },
                    message: why,
                });
            }
        }
        offset += n as u64;
    }
    (count, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_lines_are_skipped_not_counted() {
        let long = "x".repeat(MAX_LINE + 10);
        let text = format!("{long}\nok 1\n{long}");
        let mut seen = Vec::new();
        let (count, problem) = lines(
            std::io::BufReader::with_capacity(1000, text.as_bytes()),
            |l| {
                seen.push(l.to_string());
                Ok(())
            },
        );
        assert_eq!(seen, ["ok 1"]);
        assert_eq!(count, 1);
        let p = problem.expect("the long line is reported");
        assert_eq!((p.offset, p.kind), (0, ProblemKind::Corrupt));
        assert!(p
            .message
            .contains(&format!("a line of {} bytes", MAX_LINE + 11)));
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_read() {
        let line = "y".repeat(MAX_LINE);
        let text = format!("{line}\n");
        let mut n = 0;
        let (count, problem) = lines(text.as_bytes(), |l| {
            n = l.len();
            Ok(())
        });
        assert_eq!((count, n, problem.is_none()), (1, MAX_LINE, true));
    }
}
