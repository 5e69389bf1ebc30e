//! What a person sees for a misspelt name or a common YAML mistake (issue 19): a suggestion
//! by edit distance, the caret on the key that is wrong, and plain words for the parser's
//! messages. Snapshots of `portolan validate`'s stderr for each file of `tests/data/typos/`.

use std::process::Command;

fn validate(name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/typos"))
        .args(["validate", name])
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{name} is invalid");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn misspelt_names_get_a_suggestion_and_the_caret_on_the_key() {
    for (file, near) in [
        ("bind-slcr.yaml", "did you mean `slrc`?"),
        ("field-zonee.yaml", "did you mean `zone`?"),
        ("flow-i7b.yaml", "did you mean `i7`?"),
        ("site-profile.yaml", "did you mean `thingpark-lrr`?"),
        ("profile-endpoint.yaml", "did you mean `cloud`?"),
    ] {
        let err = validate(file);
        assert!(err.contains(near), "{file}: {err}");
        insta::assert_snapshot!(file.trim_end_matches(".yaml"), err);
    }
    // A site file's unknown field points to the site format's schema, not the profile's.
    let err = validate("field-zonee.yaml");
    assert!(
        err.contains("`portolan schema site` lists every field") && !err.contains("schema profile"),
        "{err}"
    );
    // The caret sits under the misspelt key's first letter, not under its value.
    let err = validate("bind-slcr.yaml");
    assert!(
        err.contains("bind-slcr.yaml:24:7: error[unknown-endpoint]"),
        "{err}"
    );
}

#[test]
fn common_yaml_mistakes_are_told_in_plain_words_with_line_and_column() {
    for (file, words) in [
        ("yaml-mapping-values.yaml", "check this line's indentation"),
        ("yaml-indentation.yaml", "check this line's indentation"),
        ("yaml-tab.yaml", "YAML indents with spaces only"),
        ("yaml-unclosed-quote.yaml", "a quoted value is not closed"),
    ] {
        let err = validate(file);
        assert!(err.contains(words), "{file}: {err}");
        insta::assert_snapshot!(file.trim_end_matches(".yaml"), err);
    }
}
