//! Every duration flag of the command line is read here, one way: a whole number with an
//! optional unit, `ms`, `s`, `m` or `h` (`500ms`, `30`, `30s`, `2m`, `1h`); a bare number is
//! seconds. Each flag then bounds it with one of the parsers below, named in its help.

use std::time::Duration;

const HELP: &str = "give a whole number with a unit: 500ms, 30s, 2m, 1h (a bare number is seconds)";

/// `30`, `30s`, `500ms`, `2m`, `1h`.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}`: {HELP}"))?;
    let ms_per = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; {HELP}")),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

fn within(s: &str, lo: Duration, hi: Duration, whole_seconds: bool) -> Result<Duration, String> {
    let d = parse(s)?;
    if whole_seconds && d.subsec_millis() != 0 {
        return Err(format!("`{s}`: this flag counts whole seconds"));
    }
    if d < lo || d > hi {
        return Err(format!("`{s}`: between {} and {}", show(lo), show(hi)));
    }
    Ok(d)
}

/// `d` the way a person writes it: `500ms`, `30s`, `2m`, `1h`, `90s`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// A timeout of one attempt: 1 ms to 1 h.
pub fn timeout(s: &str) -> Result<Duration, String> {
    within(
        s,
        Duration::from_millis(1),
        Duration::from_secs(3600),
        false,
    )
}

/// Whole seconds, 1 s to 7 days (`compile --dns-timeout`, `enforce --floor/--cap/--grace`,
/// `audit --every`, `probe --nat-max`, `responder --max-hold`).
pub fn seconds(s: &str) -> Result<Duration, String> {
    within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(7 * 86_400),
        true,
    )
}

/// Whole seconds, 0 s to 7 days (`enforce --grace`).
pub fn seconds_or_zero(s: &str) -> Result<Duration, String> {
    within(s, Duration::ZERO, Duration::from_secs(7 * 86_400), true)
}

/// `apply --confirm`: 1 s to 24 h, whole seconds.
pub fn confirm(s: &str) -> Result<Duration, String> {
    within(s, Duration::from_secs(1), Duration::from_secs(86_400), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_the_issue_names() {
        // Expected values are the units' definitions (1 m = 60 s, 1 h = 3600 s).
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse("2 s").is_err());
        assert!(parse("soon").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("1.5s").is_err());
        assert!(parse("2d").is_err());
        assert!(confirm("0").is_err());
        assert!(confirm("25h").is_err());
        assert_eq!(confirm("24h"), Ok(Duration::from_secs(86_400)));
        assert!(seconds("1500ms").is_err());
        assert_eq!(timeout("2s"), Ok(Duration::from_secs(2)));
        assert!(timeout("0").is_err());
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_secs(7200)), "2h");
    }
}
