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
