//! Device MAC addresses of a site (`mac:` on a device): parsed, and refused with the item's
//! line:column when they are not a unicast EUI-48 address a device could send from.

use crate::diag::{Code, Pos, Sink};
use crate::ir::Mac;
use crate::raw::Spanned;
use crate::raw_site::RawMacs;

/// Why a text is not a device MAC.
#[derive(Debug, PartialEq, Eq)]
pub enum MacError {
    /// Not six pairs of hex digits separated by `:` or `-`.
    Syntax,
    /// The group bit is set (IEEE 802: the least significant bit of the first octet): a
    /// multicast or broadcast address, never a sender's.
    Group,
    /// 00:00:00:00:00:00.
    Zero,
}

/// Parses `02:00:5e:10:00:01` (or with `-`), any case.
pub fn parse(s: &str) -> Result<Mac, MacError> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 6 {
        return Err(MacError::Syntax);
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(&parts) {
        if p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(MacError::Syntax);
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| MacError::Syntax)?;
    }
    if out[0] & 1 == 1 {
        return Err(MacError::Group);
    }
    if out == [0; 6] {
        return Err(MacError::Zero);
    }
    Ok(Mac(out))
}

/// The MACs a device lists, each problem reported at its own position (`invalid-mac`).
pub(crate) fn device_macs(sink: &mut Sink, raw: Option<&Spanned<RawMacs>>) -> Vec<Mac> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let items: Vec<(Pos, &str)> = match &raw.value {
        RawMacs::One(s) => vec![(Pos::from(raw.referenced), s.as_str())],
        RawMacs::List(l) => l
            .iter()
            .map(|s| (Pos::from(s.referenced), s.value.as_str()))
            .collect(),
    };
    let mut out = Vec::new();
    for (at, text) in items {
        match parse(text.trim()) {
            Ok(m) => {
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            Err(e) => {
                let why = match e {
                    MacError::Syntax => "is not a MAC address",
                    MacError::Group => {
                        "is a multicast or broadcast MAC, which no device sends from"
                    }
                    MacError::Zero => "is the all-zero MAC",
                };
                sink.error(
                    at,
                    Code::InvalidMac,
                    format!("`{text}` {why}"),
                    "write the device's own address as six hex pairs, quoted: \"02:00:5e:10:00:01\"",
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_as_ieee_802_writes_them() {
        assert_eq!(
            parse("02:00:5E:10:00:01").map(|m| m.to_string()),
            Ok("02:00:5e:10:00:01".to_string())
        );
        assert_eq!(
            parse("02-00-5e-10-00-01").map(|m| m.to_string()),
            Ok("02:00:5e:10:00:01".to_string())
        );
        for bad in [
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "02:00:5e:10:00:0g",
            "2:0:5e:10:0:1",
            "",
            "02005e100001",
        ] {
            assert_eq!(parse(bad), Err(MacError::Syntax), "{bad}");
        }
        // The group bit: 01:00:5e… is IPv4 multicast, ff:ff… broadcast.
        assert_eq!(parse("01:00:5e:00:00:fb"), Err(MacError::Group));
        assert_eq!(parse("ff:ff:ff:ff:ff:ff"), Err(MacError::Group));
        assert_eq!(parse("00:00:00:00:00:00"), Err(MacError::Zero));
    }
}
