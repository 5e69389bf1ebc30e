//! Timestamps: nanoseconds since the Unix epoch, printed as RFC 3339 in UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type Nanos = i64;

pub const NANOS: i64 = 1_000_000_000;

/// RFC 3339 with the capture's precision (`2026-11-05T10:00:00.123456Z`).
pub fn rfc3339(t: Nanos) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t))
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{}.{:09}", t.div_euclid(NANOS), t.rem_euclid(NANOS)))
}

/// Parses RFC 3339 (`2026-11-05T10:00:00Z`, with or without fraction and offset), or seconds
/// since the epoch with an optional fraction (`1700000000.123456`).
pub fn parse(s: &str) -> Option<Nanos> {
    let s = s.trim();
    if let Ok(d) = OffsetDateTime::parse(s, &Rfc3339) {
        return i64::try_from(d.unix_timestamp_nanos()).ok();
    }
    parse_epoch(s)
}

/// Seconds since the epoch with an optional fraction.
pub fn parse_epoch(s: &str) -> Option<Nanos> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - u32::try_from(i).ok()?);
    }
    secs.checked_mul(NANOS)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = 1_700_000_000 * NANOS + 123_456_000;
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(parse("2023-11-14T22:13:20.123456Z"), Some(t));
        assert_eq!(parse("1700000000.123456"), Some(t));
        assert_eq!(parse("1700000000"), Some(1_700_000_000 * NANOS));
        assert_eq!(parse("x"), None);
    }
}
