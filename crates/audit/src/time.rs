//! Timestamps: nanoseconds since the Unix epoch, printed as RFC 3339 in UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type Nanos = i64;

pub const NANOS: i64 = 1_000_000_000;

/// RFC 3339 with the capture's precision (`2026-11-05T10:00:00.123456Z`).
pub fn rfc3339(t: Nanos) -> String {
    let mut out = Vec::with_capacity(30);
    write_rfc3339(&mut out, t);
    // Only ASCII is written.
    String::from_utf8(out).unwrap_or_default()
}

/// The last second of year 9999: RFC 3339 has four-digit years.
const MAX_FAST: i64 = 253_402_300_799;

/// [`rfc3339`] appended to `out`, without the `time` crate's formatting machinery (the audit
/// report prints two times per flow). The civil date comes from the day count by the usual
/// era arithmetic (days since 0000-03-01 in 400-year eras of 146,097 days); the fraction is
/// printed as `time` prints it, trailing zeros dropped. Outside years 1970..=9999 the `time`
/// crate prints it. Tested against `time` (`tests::fast_path_is_time_crate`).
pub fn write_rfc3339(out: &mut Vec<u8>, t: Nanos) {
    let (secs, nanos) = (t.div_euclid(NANOS), t.rem_euclid(NANOS));
    if !(0..=MAX_FAST).contains(&secs) {
        out.extend_from_slice(slow_rfc3339(t).as_bytes());
        return;
    }
    let days = secs / 86_400;
    let sod = secs % 86_400;
    // Days since 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let two = |out: &mut Vec<u8>, v: i64| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    two(out, sod / 3600);
    out.push(b':');
    two(out, sod / 60 % 60);
    out.push(b':');
    two(out, sod % 60);
    if nanos != 0 {
        out.push(b'.');
        let mut digits = [0u8; 9];
        let mut n = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.extend_from_slice(&digits[..len]);
    }
    out.push(b'Z');
}

fn slow_rfc3339(t: Nanos) -> String {
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

    /// The fast path prints what the `time` crate prints, at the edges of days, months,
    /// leap years and centuries, of the range of `Nanos` (year 2262), and at pseudo-random instants.
    #[test]
    fn fast_path_is_time_crate() {
        let mut cases: Vec<Nanos> = vec![
            0,
            1,
            NANOS - 1,
            NANOS,
            -1,
            -NANOS,
            951_782_400 * NANOS,       // 2000-02-29
            4_107_542_400 * NANOS - 1, // 2100-02-28T23:59:59.999999999
            4_107_542_400 * NANOS,     // 2100-03-01 (not a leap year)
            i64::MAX,
            i64::MIN,
        ];
        let mut x: u64 = 0x243f_6a88_85a3_08d3;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Seconds up to year ~2261, fractions of every length.
            let secs = (x >> 20) as i64 % 9_200_000_000;
            let frac = match x % 4 {
                0 => 0,
                1 => (x % 1000) as i64 * 1_000_000,
                2 => (x % 1_000_000) as i64 * 1000,
                _ => (x % 1_000_000_000) as i64,
            };
            cases.push(secs * NANOS + frac);
            cases.push((secs / 86_400) * 86_400 * NANOS + frac);
        }
        for t in cases {
            assert_eq!(rfc3339(t), slow_rfc3339(t), "t = {t}");
        }
    }
}
