//! `last-update`: a `yang:date-and-time` (RFC 6991 section 3), which is RFC 3339 with a
//! mandatory time zone.
//!
//! Exports are reproducible: the timestamp is, in order of precedence, the `--last-update`
//! option (RFC 3339), else `SOURCE_DATE_EPOCH` (seconds since the Unix epoch, the
//! reproducible-builds convention), else the Unix epoch itself, `1970-01-01T00:00:00Z`. The
//! clock is never read.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::MudError;

/// Whether `s` is a `yang:date-and-time`.
pub fn is_date_and_time(s: &str) -> bool {
    OffsetDateTime::parse(s, &Rfc3339).is_ok() && has_zone(s)
}

fn has_zone(s: &str) -> bool {
    let Some(t) = s.find(['T', 't']) else {
        return false;
    };
    let time = &s[t..];
    time.ends_with(['Z', 'z']) || time.contains('+') || time.contains('-')
}

/// Seconds since the Unix epoch of a `yang:date-and-time`.
pub fn unix_seconds(s: &str) -> Option<i64> {
    if !is_date_and_time(s) {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// The `last-update` of an export: `explicit` (checked), else `source_date_epoch`, else the
/// Unix epoch.
pub fn last_update(
    explicit: Option<&str>,
    source_date_epoch: Option<&str>,
) -> Result<String, MudError> {
    if let Some(s) = explicit {
        if !is_date_and_time(s) {
            return Err(MudError::Export(format!(
                "--last-update `{s}` is not an RFC 3339 date and time with a time zone (e.g. 2026-01-31T12:00:00Z)"
            )));
        }
        return Ok(s.to_string());
    }
    let secs = match source_date_epoch {
        Some(s) => s.trim().parse::<i64>().map_err(|_| {
            MudError::Export(format!(
                "SOURCE_DATE_EPOCH `{s}` is not a number of seconds"
            ))
        })?,
        None => 0,
    };
    let t = OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| MudError::Export(format!("SOURCE_DATE_EPOCH {secs}: {e}")))?;
    t.format(&Rfc3339)
        .map_err(|e| MudError::Export(format!("cannot format {secs}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(is_date_and_time("2019-01-28T11:20:51+01:00"));
        assert!(is_date_and_time("2018-09-30T03:25:44.358+10:00"));
        assert!(is_date_and_time("2018-12-18T17:32:14.031Z"));
        assert!(!is_date_and_time("2019-07-23T19:54:24"));
        assert!(!is_date_and_time("yesterday"));
    }

    #[test]
    fn precedence() {
        assert_eq!(
            last_update(None, None).expect("epoch"),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            last_update(None, Some("1700000000")).expect("sde"),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            last_update(Some("2026-01-31T12:00:00+01:00"), Some("1")).expect("explicit"),
            "2026-01-31T12:00:00+01:00"
        );
        assert!(last_update(Some("2026-01-31"), None).is_err());
        assert!(last_update(None, Some("soon")).is_err());
    }
}
