//! Tables that fit (issue 19): the width comes from the terminal, and a terminal that reports
//! 0×0 (a serial console, `script` before `stty`) or output that is no terminal gets 80
//! columns, never one-letter columns. Each case runs the binary on a real pseudo-terminal
//! made by util-linux `script`, sized with `stty`, and is snapshot-tested.

use std::process::Command;

/// What the command prints on a terminal `cols` wide (`stty cols`, 0 as a console reports).
fn on_terminal(cols: u16, args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("stty cols {cols} rows 0; {bin} {args}"),
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("script runs (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn catalog_list_and_show_fit_the_terminal_or_80_columns() {
    for (name, args) in [
        ("catalog-list", "catalog list"),
        (
            "show-thingpark-lrr-ipsec",
            "show thingpark-lrr --mode ipsec",
        ),
        (
            "show-izuma-device-management",
            "show izuma-device-management",
        ),
    ] {
        for cols in [0u16, 80, 100] {
            let text = on_terminal(cols, args);
            let limit = if cols == 0 { 80 } else { usize::from(cols) };
            assert!(widest(&text) <= limit, "{args} at {cols}:\n{text}");
            insta::assert_snapshot!(format!("{name}-{cols}"), text);
        }
    }
}

#[test]
fn output_that_is_no_terminal_is_80_columns_wide_whatever_the_environment() {
    let bin = env!("CARGO_BIN_EXE_portolan");
    let piped = |cols: &str| {
        let out = Command::new(bin)
            .args(["catalog", "list"])
            .env("COLUMNS", cols)
            .output()
            .expect("runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let a = piped("40");
    assert_eq!(a, piped("400"));
    assert_eq!(widest(&a), 80, "{a}");
    assert_eq!(a, on_terminal(0, "catalog list"));
}

/// `show` and `doc` say how a discovered peer is learnt and filled: the SRV owner name and the
/// DHCP option as `test-data/profiles/good/discovered.yaml` writes them.
#[test]
fn show_and_doc_render_discovered_peers() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test-data/profiles/good/discovered.yaml"
    );
    // The table wraps its last column (notes): its pieces, line after line, joined.
    let show = run(&["catalog", "show", file]);
    let notes: String = show
        .lines()
        .filter_map(|l| l.rsplit_once('┆').map(|(_, cell)| cell))
        .map(|cell| cell.trim_end_matches('│').trim())
        .collect();
    let doc = run(&["catalog", "doc", file, "--format", "markdown"]).replace(' ', "");
    for text in [&notes, &doc] {
        assert!(
            text.contains("learntfromDNSSRV_mqtt._tcp.example.com"),
            "{text}"
        );
        assert!(text.contains("`portolanenforce`"), "{text}");
        assert!(text.contains("learntfromDHCPoption42"), "{text}");
    }
}

/// `show` says which source writes its tables from another side than the device's:
/// `test-data/profiles/good/edition2.yaml` gives `console-guide` `perspective: console` and
/// `doc` no perspective, so exactly the first is named.
#[test]
fn show_names_a_source_written_from_another_side() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../test-data/profiles/good/edition2.yaml"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["catalog", "show", file])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The line wraps at 80 columns: joined again.
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("source `console-guide` writes its tables from the console's side; the flows above are the device's"),
        "{text}"
    );
    assert!(!text.contains("source `doc` writes"), "{text}");
}
