//! Reading `portolan lab --format json` documents in tests.

/// A required row: (flow, traffic, source, destination, what was observed).
pub type Row = (String, String, String, String, String);

/// The required rows of a `lab --format json` document, sorted.
pub fn required(out: &str) -> Vec<Row> {
    let v: serde_json::Value = serde_json::from_str(out).expect("lab --format json");
    let s = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("").to_string();
    let mut rows: Vec<Row> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["kind"] == "required")
        .map(|r| {
            (
                s(r, "flow"),
                s(r, "traffic"),
                s(r, "src"),
                s(r, "dst"),
                s(r, "observed"),
            )
        })
        .collect();
    rows.sort();
    rows
}
