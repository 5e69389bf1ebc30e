//! Inventories: a site's devices taken from files rather than written in its YAML — a CSV
//! export (`csv.rs`) or NetBox's REST API JSON (`netbox.rs`), named under `inventory:` relative
//! to the site file.
//!
//! Each row becomes a [`RawDevice`], exactly what a device written under `devices:` parses
//! to, with every value positioned in its inventory file: the positions carry the file as
//! their source id, and the [`Sink`] names it. The rows are appended to the site's devices,
//! so they pass through the one compile path — the same checks (identifiers, duplicate ids,
//! zones, address conflicts, profiles, modes, params, MACs) and the same lowering — and a row
//! can never make a rule wider than the same device written in YAML would.
//! What a row cannot say (bindings, features, per-flow settings, a version) it leaves out, as
//! a YAML device that does not write them: a profile that needs them is refused for the row.

mod csv;
mod netbox;

use std::path::{Path, PathBuf};

use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::Deserialize;
use serde_saphyr::Location;

use crate::diag::{read_text, Code, Pos, ReadError, Sink};
use crate::document::pos;
use crate::raw::Spanned;
use crate::raw_site::{RawDevice, RawInventory, RawSite};

/// Reads every inventory the site names (relative to `site_file`'s folder) and appends its
/// rows to the site's devices; each problem goes to `sink` with its file, line and column.
pub fn load(raw: &mut RawSite, site_file: &str, sink: &mut Sink) {
    let dir = Path::new(site_file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let entries = std::mem::take(&mut raw.inventory);
    for entry in &entries {
        match &entry.value {
            RawInventory::Csv(file) => {
                if let Some((source, text)) = read(sink, &dir, file) {
                    csv::devices(sink, source, &text, &mut raw.devices.value);
                }
            }
            RawInventory::Netbox(nb) => {
                let Some((source, devices)) = read(sink, &dir, &nb.devices) else {
                    continue;
                };
                let ips = match &nb.ip_addresses {
                    Some(f) => match read(sink, &dir, f) {
                        Some(x) => Some(x),
                        None => continue,
                    },
                    None => None,
                };
                let export = netbox::Export {
                    devices: (source, &devices),
                    ip_addresses: ips.as_ref().map(|(s, t)| (*s, t.as_str())),
                    zone: nb.zone.as_ref(),
                };
                netbox::devices(sink, &export, &mut raw.devices.value);
            }
        }
    }
    raw.inventory = entries;
}

/// The text of an inventory file named at `file`, and the source id its positions carry; an
/// unreadable file is reported at its name in the site.
fn read(sink: &mut Sink, dir: &Path, file: &Spanned<String>) -> Option<(u32, String)> {
    let path: PathBuf = dir.join(&file.value);
    match read_text(&path) {
        Ok(text) => Some((sink.add_file(path.display().to_string()), text)),
        Err(ReadError::Io(e)) => {
            sink.error(
                pos(file),
                Code::Io,
                format!("inventory `{}` cannot be read: {e}", path.display()),
                "inventory files are named relative to the site file",
            );
            None
        }
        Err(ReadError::NotUtf8(d)) => {
            sink.diagnostics.push(*d);
            None
        }
    }
}

/// A position in an inventory file as a YAML value's `Location`, so that the compile path
/// reads it like any other: the file rides in the source id. (`Location` has no public
/// constructor; its own `Deserialize` takes these three fields.) Source ids from 1 up never
/// meet the YAML reader's own, which is 0 for a string without includes.
fn location(at: Pos) -> Location {
    let fields = [
        ("line", at.line),
        ("column", at.column),
        ("source_id", u64::from(at.source)),
    ];
    Location::deserialize(MapDeserializer::<_, ValueError>::new(fields.into_iter()))
        .unwrap_or(Location::UNKNOWN)
}

/// A value at a position of an inventory file.
fn spanned<T>(value: T, at: Pos) -> Spanned<T> {
    let l = location(at);
    Spanned::new(value, l, l)
}

/// Byte offsets of an inventory's text → line and column (1-based, columns in characters, as
/// the YAML reader counts them).
struct Lines<'a> {
    text: &'a str,
    source: u32,
    /// The byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(source: u32, text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines {
            text,
            source,
            starts,
        }
    }

    fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= offset).max(1) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        Pos {
            source: self.source,
            line: line as u64 + 1,
            column: column as u64 + 1,
        }
    }
}

/// The device a row describes, before the compile path checks it.
fn device(
    id: Spanned<String>,
    profile: Spanned<String>,
    zone: Option<Spanned<String>>,
) -> RawDevice {
    RawDevice {
        id,
        profile,
        mode: None,
        zone,
        addresses: Vec::new(),
        interfaces: Default::default(),
        mac: None,
        version: None,
        params: Default::default(),
        bind: Default::default(),
        features: Vec::new(),
        flows: Default::default(),
        choose: Default::default(),
        proxy: None,
        description: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_carries_its_file_line_and_column() {
        let at = Pos {
            source: 3,
            line: 17,
            column: 9,
        };
        let l = location(at);
        assert_eq!((l.source_id(), l.line(), l.column()), (3, 17, 9));
        assert_eq!(Pos::from(l), at);
    }

    #[test]
    fn lines_count_characters_from_one() {
        // "é" is two bytes: the column after it is 2, not 3.
        let text = "ab\né,x\n";
        let lines = Lines::new(1, text);
        assert_eq!(
            lines.pos(0),
            Pos {
                source: 1,
                line: 1,
                column: 1
            }
        );
        assert_eq!(
            lines.pos(3),
            Pos {
                source: 1,
                line: 2,
                column: 1
            }
        );
        assert_eq!(
            lines.pos(5),
            Pos {
                source: 1,
                line: 2,
                column: 2
            }
        );
        assert_eq!(
            lines.pos(6),
            Pos {
                source: 1,
                line: 2,
                column: 3
            }
        );
    }
}
