//! Flow logs: records of flows rather than packets. Zeek `conn.log` and `dns.log` (TSV and JSON
//! lines; no maintained crate reads them, so this is a small reader of its own), `conntrack -L`
//! and `conntrack -E` output, and the kernel log lines of the nftables ruleset Portolan emits.
//!
//! Text is read line by line. A line that does not parse is skipped and the first one is
//! reported with its byte offset (as truncated when it is an unfinished last line), so one bad
//! line does not hide the rest of a log.

pub mod conntrack;
pub mod nftlog;
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
        buf.clear();
        let n = match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                first.get_or_insert(InputProblem {
                    offset,
                    kind: ProblemKind::Corrupt,
                    message: format!("read error: {e}"),
                });
                break;
            }
        };
        let complete = buf.ends_with(b"\n");
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
