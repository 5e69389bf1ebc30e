//! `profile_schema()` (what `portolan schema profile` prints for editors) against real files:
//! every shipped profile and every good fixture must validate, both as written and as Portolan
//! serializes it back, and files the validator rejects for their shape must fail the schema too.

use std::fs;
use std::path::{Path, PathBuf};

use portolan_model::catalog::{Catalog, EMBEDDED};
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let schema = serde_json::to_value(portolan_model::profile_schema()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("profile_schema() is a valid JSON Schema")
}

/// A YAML profile as the JSON value an editor's schema checker sees.
fn yaml_value(name: &str, text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name} is YAML: {e}"))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/profiles")
        .join(kind)
}

#[test]
fn schema_describes_the_top_level() {
    let schema = serde_json::to_value(portolan_model::profile_schema()).expect("JSON");
    let props = schema["properties"].as_object().expect("properties");
    for key in ["portolan", "id", "sources", "endpoints", "flows", "listens"] {
        assert!(props.contains_key(key), "schema has properties.{key}");
    }
    assert_eq!(schema["additionalProperties"], Value::Bool(false));
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in [
        "portolan", "id", "vendor", "product", "sources", "flows", "listens",
    ] {
        assert!(required.contains(&key), "`{key}` is required");
    }
}

#[test]
fn every_catalog_file_validates_against_the_schema() {
    let v = validator();
    assert!(EMBEDDED.len() >= 5);
    let mut failures = Vec::new();
    for (name, text) in EMBEDDED {
        let errs = errors(&v, &yaml_value(name, text));
        if !errs.is_empty() {
            failures.push(format!("catalog/{name}:\n  {}", errs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn serialized_catalog_profiles_validate_against_the_schema() {
    let v = validator();
    for e in &Catalog::embedded().expect("catalog").entries {
        let value = serde_json::to_value(&e.profile).expect("serializes");
        let errs = errors(&v, &value);
        assert!(
            errs.is_empty(),
            "{}:\n  {}",
            e.profile.id,
            errs.join("\n  ")
        );
    }
}

#[test]
fn good_fixtures_validate_against_the_schema() {
    let v = validator();
    let mut n = 0;
    for entry in fs::read_dir(fixtures("good")).expect("good fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable");
        let errs = errors(&v, &yaml_value(&path.display().to_string(), &text));
        assert!(
            errs.is_empty(),
            "{}:\n  {}",
            path.display(),
            errs.join("\n  ")
        );
        n += 1;
    }
    assert!(n >= 7);
}

#[test]
fn schema_rejects_shape_errors() {
    let v = validator();
    // Fixtures whose problem is the file's shape, which a schema can see.
    for (file, pointer) in [
        ("unknown-field.yaml", "/flows/0"),
        ("unknown-field-top.yaml", ""),
        ("missing-field.yaml", "/flows/0"),
        ("port-out-of-range.yaml", "/flows/0/ports"),
        ("unknown-protocol.yaml", "/flows/0/protocol"),
        ("unknown-value.yaml", "/flows/0/initiation"),
        ("family.yaml", "/flows/0/family"),
    ] {
        let text = fs::read_to_string(fixtures("bad").join(file)).expect("fixture");
        let value = yaml_value(file, &text);
        let paths: Vec<String> = v
            .iter_errors(&value)
            .map(|e| e.instance_path().to_string())
            .collect();
        assert!(
            paths
                .iter()
                .any(|p| p == pointer || p.starts_with(&format!("{pointer}/"))),
            "{file}: the schema must flag {pointer:?}; it flagged {paths:?}"
        );
    }
}

/// `site_schema()` (`portolan schema site`) against every good site fixture and the examples;
/// a site with an unknown key or a device without `zone` fails it.
#[test]
fn every_good_site_validates_against_the_site_schema() {
    let schema = serde_json::to_value(portolan_model::site_schema()).expect("JSON");
    let v = jsonschema::validator_for(&schema).expect("site_schema() is a valid JSON Schema");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("test-data/sites/good"))
        .expect("good sites")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.push(root.join("examples/site.yaml"));
    files.push(root.join("examples/inventory/site.yaml"));
    assert!(files.len() >= 6);
    let mut failures = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("readable");
        let errs = errors(&v, &yaml_value(&f.display().to_string(), &text));
        if !errs.is_empty() {
            failures.push(format!("{}: {errs:?}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let bad = yaml_value(
        "bad",
        "portolan: 1\nsite: s\nzones: []\ndevices:\n  - id: d\n    profile: p\n    addresses: [10.0.0.1]\n    chose: {a: b}\n",
    );
    let errs = errors(&v, &bad);
    assert!(errs.iter().any(|e| e.contains("oneOf")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("chose")), "{errs:?}");
    // A device gives `zone` and `addresses`, or (a multi-homed device) `interfaces`, never
    // both and never neither.
    let device = |extra: &str| {
        yaml_value(
            "device",
            &format!(
                "portolan: 1\nsite: s\nzones: []\ndevices:\n  - id: d\n    profile: p\n{extra}"
            ),
        )
    };
    let plain = "    zone: z\n    addresses: [10.0.0.1]\n";
    let homed = "    interfaces: {it: {address: 10.0.0.1, zone: z}}\n";
    assert!(errors(&v, &device(plain)).is_empty());
    assert!(errors(&v, &device(homed)).is_empty());
    assert!(!errors(&v, &device(&format!("{plain}{homed}"))).is_empty());
    assert!(!errors(&v, &device("    addresses: [10.0.0.1]\n")).is_empty());
    assert!(!errors(&v, &device("    interfaces: {it: {address: 10.0.0.1}}\n")).is_empty());
}
