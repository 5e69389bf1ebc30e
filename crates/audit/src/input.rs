//! Opening an input: a file or standard input (`-`), gzip-compressed or not (told by its magic
//! bytes, not its name), and which format it holds (told by its first bytes).

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::error::AuditError;

/// What an input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Pcap,
    Pcapng,
    /// Zeek `conn.log`, tab-separated with `#fields` header.
    ZeekTsv,
    /// Zeek logs as JSON lines (`conn.log` and `dns.log` records alike).
    ZeekJson,
    /// `conntrack -L` or `conntrack -E` output.
    Conntrack,
    /// Kernel log lines of the nftables ruleset Portolan emits (`portolan <group>: IN=…`).
    NftLog,
    /// IPFIX messages (RFC 7011) back to back, as a collector writes the datagrams.
    Ipfix,
    /// NetFlow v9 export packets (RFC 3954) back to back.
    NetflowV9,
    /// NetFlow v5 export packets back to back.
    NetflowV5,
    /// `nfdump -o csv` output.
    NfdumpCsv,
    /// Suricata `eve.json`: flow, dns and tls events.
    SuricataEve,
    /// Export datagrams (IPFIX, NetFlow v9 or v5) received live on a UDP socket.
    ExportUdp,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
            Format::ZeekTsv => "zeek-tsv",
            Format::ZeekJson => "zeek-json",
            Format::Conntrack => "conntrack",
            Format::NftLog => "nft-log",
            Format::Ipfix => "ipfix",
            Format::NetflowV9 => "netflow-v9",
            Format::NetflowV5 => "netflow-v5",
            Format::NfdumpCsv => "nfdump-csv",
            Format::SuricataEve => "suricata-eve",
            Format::ExportUdp => "export-udp",
        }
    }

    pub fn is_capture(self) -> bool {
        matches!(self, Format::Pcap | Format::Pcapng)
    }

    /// Binary flow export messages, read through their own framing.
    pub fn is_export(self) -> bool {
        matches!(self, Format::Ipfix | Format::NetflowV9 | Format::NetflowV5)
    }
}

/// An opened input, positioned at its first byte (decompressed).
pub struct Opened {
    pub format: Format,
    pub gzip: bool,
    pub reader: Box<dyn BufRead + Send>,
}

/// Opens `path` (`-` for standard input) and tells its format.
pub fn open(path: &Path) -> Result<Opened, AuditError> {
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?)
    };
    open_reader(path, raw)
}

/// Tells the format of an input already open; `path` names it in errors.
pub fn open_reader(path: &Path, raw: Box<dyn Read + Send>) -> Result<Opened, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (head, rest) = peek(raw).map_err(io)?;
    if head.is_empty() {
        return Err(AuditError::Empty {
            path: path.to_path_buf(),
        });
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let (head, rest) = if gzip {
        let stream: Box<dyn Read + Send> =
            Box::new(MultiGzDecoder::new(Cursor::new(head).chain(rest)));
        peek(stream).map_err(io)?
    } else {
        (head, rest)
    };
    let format = sniff(&head).ok_or_else(|| AuditError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    // Captures are read through the capture reader's own buffer; text through a BufReader.
    let whole = Cursor::new(head).chain(rest);
    let reader: Box<dyn BufRead + Send> = if format.is_capture() || format.is_export() {
        Box::new(BufReader::with_capacity(0, whole))
    } else {
        Box::new(BufReader::with_capacity(64 << 10, whole))
    };
    Ok(Opened {
        format,
        gzip,
        reader,
    })
}

/// Reads up to 8 KiB of the start of a stream; returns them and the rest of the stream.
fn peek(mut r: Box<dyn Read + Send>) -> std::io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = vec![0u8; 8192];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(n);
    Ok((head, r))
}

/// Tells a format from the first bytes.
pub fn sniff(head: &[u8]) -> Option<Format> {
    const PCAP: [[u8; 4]; 6] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x34, 0xcd, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xcd, 0x34],
    ];
    if head.len() >= 4 {
        let m = [head[0], head[1], head[2], head[3]];
        if PCAP.contains(&m) {
            return Some(Format::Pcap);
        }
        if m == [0x0a, 0x0d, 0x0d, 0x0a] {
            return Some(Format::Pcapng);
        }
        if crate::flowlog::netflow::sniff(head) {
            return match crate::flowlog::netflow::version(head) {
                Some(10) => Some(Format::Ipfix),
                Some(9) => Some(Format::NetflowV9),
                _ => Some(Format::NetflowV5),
            };
        }
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(8192)]);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if first.starts_with("#separator") || first.starts_with("#fields") {
        return Some(Format::ZeekTsv);
    }
    if first.starts_with('{') && (first.contains("\"id.orig_h\"") || first.contains("\"query\"")) {
        return Some(Format::ZeekJson);
    }
    if first.starts_with('{') && first.contains("\"event_type\"") {
        return Some(Format::SuricataEve);
    }
    if crate::flowlog::nfdump::is_header(first) {
        return Some(Format::NfdumpCsv);
    }
    if crate::flowlog::nftlog::is_line(first) {
        return Some(Format::NftLog);
    }
    if crate::flowlog::conntrack::is_line(first) {
        return Some(Format::Conntrack);
    }
    None
}
