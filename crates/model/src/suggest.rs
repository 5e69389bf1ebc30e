//! Suggestions for misspelt names ("did you mean `slrc`?"): the known name nearest to the one
//! written, by Damerau-Levenshtein distance (a swap of two neighbours is one edit, so `slcr` is
//! one edit from `slrc`), when it is near enough to be a typo rather than another name.

/// The candidate nearest to `word`, if one is within a typo's distance: at most 1 edit for
/// names of up to 4 characters, 2 up to 8, 3 beyond. Ties go to the first candidate given.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = match word.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let d = strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `; did you mean `X`?` for a help line, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, candidates).map_or(String::new(), |c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn typos_find_their_name_and_other_names_do_not() {
        let roles = ["slrc", "support", "proxy-http"];
        assert_eq!(nearest("slcr", roles), Some("slrc"));
        assert_eq!(nearest("suport", roles), Some("support"));
        assert_eq!(nearest("proxy-htp", roles), Some("proxy-http"));
        assert_eq!(nearest("feild", ["field", "flows"]), Some("field"));
        assert_eq!(nearest("ntp", roles), None);
        assert_eq!(nearest("slrc", roles), None);
    }
}

/// Plain words for the YAML parser's messages people meet most, as (message, help); `None`
/// for a message that is already plain. The parser's own words stay in the message, after
/// ours, for a search engine.
pub fn plain_yaml(raw: &str) -> Option<(String, String)> {
    let (ours, help) = if raw.contains("mapping values are not allowed") {
        (
            "a `key: value` where this line cannot have one",
            "check this line's indentation against the line above: a key of the same mapping \
             starts in the same column, a nested one further right under a key that ends in \
             `:`; a value that itself holds `: ` must be quoted",
        )
    } else if raw.contains("did not find expected key") {
        (
            "this line is indented differently from the keys around it",
            "line it up with its sibling keys (same column), or nest it under a key ending in \
             `:`; YAML indents with spaces only",
        )
    } else if raw.contains("multiline quoted scalar")
        || raw.contains("while scanning a quoted scalar")
        || raw.contains("unexpected end of stream")
    {
        (
            "a quoted value is not closed",
            "add the closing quote (`\"` or `'`) on the line where the value started, above \
             this position",
        )
    } else if raw.contains("found character that cannot start any token")
        || raw.contains("found a tab")
    {
        (
            "a character YAML cannot start a value with (often a tab)",
            "YAML indents with spaces only; quote a value that starts with `@` or a backtick",
        )
    } else if raw.contains("did not find expected '-' indicator")
        || raw.contains("did not find expected - indicator")
    {
        (
            "a list item is indented differently from the items before it",
            "start every item of one list with `- ` in the same column",
        )
    } else {
        return None;
    };
    Some((format!("{ours} (YAML: {raw})"), help.to_string()))
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant"): the
/// nearest expected name, if one is a typo away.
pub fn for_unknown_name(message: &str) -> Option<String> {
    let (_, rest) = message.split_once('`')?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected one of ")
        .or_else(|| rest.split_once("expected "))?
        .1;
    let names: Vec<&str> = expected
        .split(',')
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty())
        .collect();
    nearest(word, names.iter().copied()).map(str::to_string)
}

#[cfg(test)]
mod yaml_tests {
    use super::{for_unknown_name, plain_yaml};

    #[test]
    fn serde_names_and_parser_messages_read_plainly() {
        assert_eq!(
            for_unknown_name("unknown field `feild`, expected one of `id`, `field`, `flows`"),
            Some("field".into())
        );
        assert_eq!(
            for_unknown_name("unknown field `zonee`, expected one of id, profile, zone, mac"),
            Some("zone".into())
        );
        assert_eq!(for_unknown_name("unknown field `xyz`, expected `id`"), None);
        let (m, _) = plain_yaml("mapping values are not allowed in this context").expect("plain");
        assert!(m.starts_with("a `key: value` where"), "{m}");
        assert!(plain_yaml("invalid type: string, expected u16").is_none());
    }
}

/// Moves the caret of an unknown-name diagnostic from the value to the misspelt key, where the
/// key is written on the diagnostic's line before the value (`slcr: [198.51.100.10]`, the
/// caret under `s`). Diagnostics of other files (inventories) are left as they are.
pub fn caret_on_keys(diags: &mut [crate::Diagnostic], file: &str, text: &str) {
    use crate::{Code, Subject};
    for d in diags.iter_mut() {
        let key = match (&d.code, &d.subject) {
            (Code::UnknownEndpoint, Subject::Endpoint(k))
            | (Code::UnknownParam, Subject::Param(k))
            | (Code::UnknownFlow, Subject::Flow(k))
            | (Code::UnknownInterface, Subject::Interface(k)) => k,
            _ => continue,
        };
        if d.file != file || d.line == 0 {
            continue;
        }
        let Some(line) = text.lines().nth((d.line - 1) as usize) else {
            continue;
        };
        let col = d.column.max(1) as usize - 1;
        let before: String = line.chars().take(col).collect();
        for quoted in [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ] {
            if let Some(at) = before.rfind(&quoted) {
                d.column = before[..at].chars().count() as u64 + 1;
                break;
            }
        }
    }
}
