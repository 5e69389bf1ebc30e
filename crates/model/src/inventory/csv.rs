//! CSV inventories (RFC 4180: a header row, fields separated by commas, quoted with `"` and a
//! quote doubled inside quotes, CRLF or LF line ends; a UTF-8 byte order mark is skipped).
//!
//! Columns, named in the header in any order: `name`, `address` (or `prefix`), `profile`,
//! `zone` (required) and `mode`, `params`, `mac` (optional; an empty cell leaves the value
//! out). `address` and `mac` hold one value or several separated by spaces; `params` holds
//! `param=value` items separated by `;`, a value of digits being a number as in YAML. A
//! column Portolan does not read is an error, as an unknown field of a site is: a typo in a
//! column name must not silently drop a restriction.
//!
//! Fields are split by `csv-core`, the csv crate's parser, which reports the bytes each field
//! takes, so each cell's line and column is where it starts in the file. Positions inside a
//! quoted cell (one `params` item of several) count from its opening quote and are exact
//! unless a doubled quote comes before them.

use std::collections::BTreeMap;

use csv_core::{ReadFieldResult, Reader};

use crate::diag::{Code, Pos, Sink};
use crate::raw::{RawPorts, Scalar, Spanned};
use crate::raw_site::{RawDevice, RawInterfaceBinding, RawMacs};

use super::{device, spanned, Lines};

/// The columns an inventory may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Name,
    Address,
    Profile,
    Zone,
    Mode,
    Params,
    Mac,
    Interfaces,
}

impl Column {
    fn parse(s: &str) -> Option<Column> {
        Some(match s {
            "name" => Column::Name,
            "address" | "prefix" => Column::Address,
            "profile" => Column::Profile,
            "zone" => Column::Zone,
            "mode" => Column::Mode,
            "params" => Column::Params,
            "mac" => Column::Mac,
            "interfaces" => Column::Interfaces,
            _ => return None,
        })
    }

    const REQUIRED: [(Column, &'static str); 4] = [
        (Column::Name, "name"),
        (Column::Address, "address"),
        (Column::Profile, "profile"),
        (Column::Zone, "zone"),
    ];
}

/// One cell: its text (quotes removed, spaces around it trimmed), where it starts, and the
/// byte offset in the file of its first character (inside the quotes).
struct Cell {
    text: String,
    at: Pos,
    offset: usize,
}

/// Splits the text into rows of cells; a malformed quoted field is reported and its row kept
/// with what the parser read.
fn rows(sink: &mut Sink, lines: &Lines, text: &str) -> Vec<Vec<Cell>> {
    let bytes = text.as_bytes();
    let mut at = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut reader = Reader::new();
    let mut out = vec![0u8; 256];
    let mut rows = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    loop {
        let start = at;
        let mut len = 0;
        let record_end = loop {
            let (res, nin, nout) = reader.read_field(&bytes[at..], &mut out[len..]);
            at += nin;
            len += nout;
            match res {
                ReadFieldResult::OutputFull => out.resize(out.len() * 2, 0),
                ReadFieldResult::InputEmpty => {}
                ReadFieldResult::Field { record_end } => break Some(record_end),
                ReadFieldResult::End => break None,
            }
        };
        let Some(record_end) = record_end else { break };
        // A record's first field also took the line ends of blank lines before it.
        let raw = &text[start..at];
        let skipped = if row.is_empty() {
            raw.len() - raw.trim_start_matches(['\r', '\n']).len()
        } else {
            0
        };
        let raw = &raw[skipped..];
        let lead = raw.len() - raw.trim_start_matches([' ', '\t']).len();
        let quoted = raw[lead..].starts_with('"');
        let first = start + skipped + lead;
        if quoted {
            let body = raw.trim_end_matches(['\r', '\n']);
            let body = body
                .strip_suffix(',')
                .unwrap_or(body)
                .trim_end_matches([' ', '\t']);
            if body.len() < lead + 2 || !body.ends_with('"') {
                sink.error(
                    lines.pos(first),
                    Code::InventorySyntax,
                    "a quoted field does not end with a quote before the next comma or line",
                    "close the quote; a quote inside a quoted field is written twice (`\"\"`)",
                );
            }
        }
        let decoded = String::from_utf8_lossy(&out[..len]);
        let value = decoded.trim_matches([' ', '\t']);
        row.push(Cell {
            text: value.to_string(),
            at: lines.pos(first),
            offset: first + usize::from(quoted),
        });
        if record_end {
            rows.push(std::mem::take(&mut row));
        }
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

/// Appends the devices of a CSV inventory to `devices`.
pub(super) fn devices(sink: &mut Sink, source: u32, text: &str, devices: &mut Vec<RawDevice>) {
    let lines = Lines::new(source, text);
    let mut rows = rows(sink, &lines, text).into_iter();
    let Some(header) = rows.next() else {
        sink.error(
            lines.pos(0),
            Code::MissingField,
            "the inventory is empty: it needs a header row naming its columns",
            "start with `name,address,profile,zone` and one row per device",
        );
        return;
    };
    let mut columns: Vec<Option<Column>> = Vec::new();
    for cell in &header {
        let c = Column::parse(&cell.text);
        match c {
            None => sink.error(
                cell.at,
                Code::UnknownField,
                format!("column `{}` is not one Portolan reads", cell.text),
                "the columns are name, address (or prefix), profile, zone, mode, params, mac, interfaces",
            ),
            Some(c) if columns.contains(&Some(c)) => sink.error(
                cell.at,
                Code::InventorySyntax,
                format!("column `{}` is named twice", cell.text),
                "name each column once (`prefix` is another name of `address`)",
            ),
            Some(_) => {}
        }
        columns.push(c);
    }
    let mut missing = false;
    for (c, name) in Column::REQUIRED {
        if !columns.contains(&Some(c)) {
            missing = true;
            sink.error(
                header[0].at,
                Code::MissingField,
                format!("the header names no `{name}` column"),
                "the columns name, address, profile and zone are required",
            );
        }
    }
    if missing {
        return;
    }
    for row in rows {
        if row.len() != columns.len() {
            sink.error(
                row[0].at,
                Code::InventorySyntax,
                format!(
                    "this row has {} fields, the header {}",
                    row.len(),
                    columns.len()
                ),
                "give every row one field per column, empty where there is no value",
            );
            continue;
        }
        if let Some(d) = row_device(sink, &lines, &columns, &row) {
            devices.push(d);
        }
    }
}

/// The device of one row, or `None` (reported) when a required cell is empty.
fn row_device(
    sink: &mut Sink,
    lines: &Lines,
    columns: &[Option<Column>],
    row: &[Cell],
) -> Option<RawDevice> {
    let cell = |c: Column| {
        columns
            .iter()
            .position(|x| *x == Some(c))
            .map(|i| &row[i])
            .filter(|cell| !cell.text.is_empty())
    };
    let mut required = |c: Column, name: &str| {
        let found = cell(c);
        if found.is_none() {
            let i = columns.iter().position(|x| *x == Some(c)).unwrap_or(0);
            sink.error(
                row[i].at,
                Code::MissingField,
                format!("this row has no {name}"),
                format!("every row needs a {name}"),
            );
        }
        found.map(|x| spanned(x.text.clone(), x.at))
    };
    let id = required(Column::Name, "name");
    let profile = required(Column::Profile, "profile");
    // A multi-homed device's row binds each interface to its addresses and zone instead.
    let ifaces = cell(Column::Interfaces);
    let zone = match ifaces {
        Some(_) => cell(Column::Zone).map(|x| spanned(x.text.clone(), x.at)),
        None => Some(required(Column::Zone, "zone")?),
    };
    let (id, profile) = (id?, profile?);
    let mut d = device(id, profile, zone);
    if let Some(x) = ifaces {
        d.interfaces = interfaces(sink, lines, x);
    }
    d.mode = cell(Column::Mode).map(|x| spanned(x.text.clone(), x.at));
    if let Some(x) = cell(Column::Address) {
        d.addresses = words(lines, x)
            .map(|(w, at)| spanned(w.to_string(), at))
            .collect();
    }
    if let Some(x) = cell(Column::Mac) {
        let macs: Vec<Spanned<String>> = words(lines, x)
            .map(|(w, at)| spanned(w.to_string(), at))
            .collect();
        d.mac = Some(match macs.as_slice() {
            [one] => spanned(RawMacs::One(one.value.clone()), x.at),
            _ => spanned(RawMacs::List(macs), x.at),
        });
    }
    if let Some(x) = cell(Column::Params) {
        d.params = params(sink, lines, x);
    }
    Some(d)
}

/// The space-separated words of a cell, each with its position.
fn words<'a>(lines: &'a Lines, cell: &'a Cell) -> impl Iterator<Item = (&'a str, Pos)> + 'a {
    let base = cell.text.as_ptr() as usize;
    cell.text
        .split_whitespace()
        .map(move |w| (w, lines.pos(cell.offset + (w.as_ptr() as usize - base))))
}

/// `it=10.0.0.5@office; ot=192.168.1.5 192.168.1.6@field`: each of a multi-homed device's
/// interfaces (its profile's ids) with its addresses (space-separated) and zone, as a site's
/// `interfaces:` binds them.
fn interfaces(
    sink: &mut Sink,
    lines: &Lines,
    cell: &Cell,
) -> BTreeMap<String, Spanned<RawInterfaceBinding>> {
    let base = cell.text.as_ptr() as usize;
    let at_of = |t: &str| lines.pos(cell.offset + (t.as_ptr() as usize - base));
    let mut out = BTreeMap::new();
    for item in cell.text.split(';') {
        let t = item.trim();
        if t.is_empty() {
            continue;
        }
        let at = at_of(t);
        let parsed = t
            .split_once('=')
            .and_then(|(k, rest)| rest.rsplit_once('@').map(|(a, z)| (k.trim(), a, z.trim())));
        let Some((k, addrs, zone)) =
            parsed.filter(|(k, a, z)| !k.is_empty() && !a.trim().is_empty() && !z.is_empty())
        else {
            sink.error(
                at,
                Code::InvalidValue,
                format!("`{t}` is not `interface=address@zone`"),
                "bind each interface as `it=10.0.0.5@office`, several separated by `;` (addresses of one interface separated by spaces)",
            );
            continue;
        };
        if out.contains_key(k) {
            sink.error(
                at,
                Code::InvalidValue,
                format!("interface `{k}` is given twice in this row"),
                "bind each interface once",
            );
            continue;
        }
        let addresses: Vec<Spanned<String>> = addrs
            .split_whitespace()
            .map(|w| spanned(w.to_string(), at_of(w)))
            .collect();
        let binding = RawInterfaceBinding {
            address: None,
            addresses,
            zone: spanned(zone.to_string(), at_of(zone)),
            mac: None,
        };
        out.insert(k.to_string(), spanned(binding, at));
    }
    out
}

/// `param=value; param=value`: each value a number (digits only) or a string, as a YAML
/// scalar would be read.
fn params(sink: &mut Sink, lines: &Lines, cell: &Cell) -> BTreeMap<String, Spanned<RawPorts>> {
    let base = cell.text.as_ptr() as usize;
    let mut out = BTreeMap::new();
    for item in cell.text.split(';') {
        let t = item.trim();
        if t.is_empty() {
            continue;
        }
        let at = lines.pos(cell.offset + (t.as_ptr() as usize - base));
        let Some((k, v)) = t.split_once('=') else {
            sink.error(
                at,
                Code::InvalidValue,
                format!("`{t}` is not `param=value`"),
                "write params as `name=value`, separated by `;`",
            );
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let value_at = lines.pos(cell.offset + (v.as_ptr() as usize - base));
        let value = match v.parse::<i64>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Scalar::Int(n),
            _ => Scalar::Str(v.to_string()),
        };
        if out.contains_key(k) {
            sink.error(
                at,
                Code::InvalidValue,
                format!("param `{k}` is given twice in this row"),
                "give each param once",
            );
            continue;
        }
        out.insert(k.to_string(), spanned(RawPorts::One(value), value_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell as (text, line, column).
    type Seen = (String, u64, u64);

    /// Every cell of every row, and the diagnostics as `code line:column`.
    fn cells(text: &str) -> (Vec<Vec<Seen>>, Vec<String>) {
        let mut sink = Sink::new("t.csv");
        let source = sink.add_file("t.csv");
        let lines = Lines::new(source, text);
        let rows = rows(&mut sink, &lines, text)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| (c.text, c.at.line, c.at.column))
                    .collect()
            })
            .collect();
        let codes = sink
            .finish()
            .iter()
            .map(|d| format!("{} {}:{}", d.code, d.line, d.column))
            .collect();
        (rows, codes)
    }

    fn s(x: &str, l: u64, c: u64) -> Seen {
        (x.to_string(), l, c)
    }

    /// RFC 4180 section 2: CRLF line ends, a quoted field holding a comma, a doubled quote
    /// and a line break; plus a byte order mark (Excel's UTF-8 export) and a blank line.
    /// Positions counted by hand, in characters from 1.
    #[test]
    fn fields_and_their_positions() {
        let text = "\u{feff}name,params\r\n\r\n\"a,b\",\"x \"\"y\"\"\r\nz\"\r\n c ,d";
        let (rows, codes) = cells(text);
        assert_eq!(
            rows,
            vec![
                // The BOM is one character before `name`.
                vec![s("name", 1, 2), s("params", 1, 7)],
                vec![s("a,b", 3, 1), s("x \"y\"\r\nz", 3, 7)],
                // Spaces around an unquoted value are trimmed; its position is its first
                // character.
                vec![s("c", 5, 2), s("d", 5, 5)],
            ]
        );
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn a_quote_left_open_or_followed_by_text_is_reported() {
        let (_, codes) = cells("a,b\n\"x\"y,2\n3,\"open\n");
        assert_eq!(
            codes,
            vec![
                "inventory-syntax 2:1".to_string(),
                "inventory-syntax 3:3".to_string()
            ]
        );
    }
}
