//! `--target openwrt` in a real kernel (issue 17, point 4). OpenWrt's fw4 cannot run here
//! (it is ucode on OpenWrt's libraries), so the test builds what fw4 loads: a skeleton
//! `table inet fw4` shaped like fw4's ruleset template (base chains `input`, `forward`,
//! `output` at priority `filter`, policy drop on input and forward, established traffic
//! first, per-zone `input_<zone>`/`forward_<zone>` chains jumped to by input interface, and
//! the forwardings an administrator would configure between the example site's zones), with
//! the emitted include placed where fw4's template puts `include "/etc/nftables.d/*.nft"`:
//! inside the table. The UCI `config ipset` sections are turned into dnsmasq's `--nftset`
//! lines the way OpenWrt's dnsmasq init script does (`dnsmasq_ipset_add`: domains joined
//! with `/`, each set `<4|6>#<table_family>#<table>#<name>`, the family from the name's
//! `_v4`/`_v6`). The lab then runs the example site's whole probe set, names resolved
//! through that dnsmasq, and every probe must behave as the policy says.

use std::path::{Path, PathBuf};

use portolan_emit::{openwrt, Options as EmitOptions};
use portolan_lab::facts::Facts;
use portolan_lab::lab::{self, Options};
use portolan_model::ir::Policy;
use portolan_testkit::{kernel, Profiles};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> (Policy, Facts) {
    let path = workspace().join("examples/site.yaml");
    let text = std::fs::read_to_string(&path).expect("site file");
    let policy = Profiles::catalog().compile(&path.display().to_string(), &text);
    let facts = Facts::from_site(&text, &policy).expect("site facts");
    (policy, facts)
}

/// fw4's table for the example site's zones (field on lan0, mgmt on mgmt0, wan on wan0),
/// forwarding allowed between them as the site's administrator would configure it, with
/// `include` where fw4 includes `/etc/nftables.d/*.nft`.
fn fw4_with(include: &str) -> String {
    format!(
        r#"table inet fw4
flush table inet fw4
table inet fw4 {{
	chain input {{
		type filter hook input priority filter; policy drop;
		iif "lo" accept comment "!fw4: Accept traffic from loopback"
		ct state established,related accept comment "!fw4: Allow inbound established and related flows"
		iifname "lan0" jump input_field comment "!fw4: Handle field IPv4/IPv6 input traffic"
		iifname "mgmt0" jump input_mgmt comment "!fw4: Handle mgmt IPv4/IPv6 input traffic"
		iifname "wan0" jump input_wan comment "!fw4: Handle wan IPv4/IPv6 input traffic"
	}}
	chain forward {{
		type filter hook forward priority filter; policy drop;
		ct state established,related accept comment "!fw4: Allow forwarded established and related flows"
		iifname "lan0" jump forward_field comment "!fw4: Handle field IPv4/IPv6 forward traffic"
		iifname "mgmt0" jump forward_mgmt comment "!fw4: Handle mgmt IPv4/IPv6 forward traffic"
		iifname "wan0" jump forward_wan comment "!fw4: Handle wan IPv4/IPv6 forward traffic"
	}}
	chain output {{
		type filter hook output priority filter; policy accept;
	}}
	chain input_field {{
		accept
	}}
	chain input_mgmt {{
		accept
	}}
	chain input_wan {{
		reject
	}}
	chain forward_field {{
		oifname {{ "wan0", "mgmt0" }} accept
	}}
	chain forward_mgmt {{
		oifname "lan0" accept
	}}
	chain forward_wan {{
		oifname "lan0" accept
	}}
{include}
}}
"#
    )
}

/// The `--nftset` lines OpenWrt's dnsmasq init script writes for `config ipset` sections.
fn nftset_lines(uci: &str) -> String {
    let mut out = String::new();
    let mut section: Option<(Vec<String>, Vec<String>, String, String)> = None;
    let flush = |s: &mut Option<(Vec<String>, Vec<String>, String, String)>, out: &mut String| {
        if let Some((names, domains, table, family)) = s.take() {
            let sets: Vec<String> = names
                .iter()
                .map(|n| {
                    let fam = if n.ends_with("_v6") { "6" } else { "4" };
                    format!("{fam}#{family}#{table}#{n}")
                })
                .collect();
            out.push_str(&format!(
                "nftset=/{}/{}\n",
                domains.join("/"),
                sets.join(",")
            ));
        }
    };
    for line in uci.lines() {
        let t = line.trim();
        let value = |k: &str| {
            t.strip_prefix(k)
                .map(|v| v.trim().trim_matches('\'').to_string())
        };
        if t == "config ipset" {
            flush(&mut section, &mut out);
            section = Some((Vec::new(), Vec::new(), "fw4".into(), "inet".into()));
        } else if let Some(s) = section.as_mut() {
            if let Some(v) = value("list name") {
                s.0.push(v);
            } else if let Some(v) = value("list domain") {
                s.1.push(v);
            } else if let Some(v) = value("option table_family") {
                s.3 = v;
            } else if let Some(v) = value("option table") {
                s.2 = v;
            }
        }
    }
    flush(&mut section, &mut out);
    out
}

#[test]
fn openwrt_include_in_a_fw4_table_passes_the_example_sites_lab() {
    if let Some(why) = kernel::lacks().expect("kernel test prerequisites") {
        eprintln!("{}", kernel::skip_banner(&why));
        return;
    }
    kernel::require_tools(&["ip", "nft", "dnsmasq"]);
    let _turn = kernel::turn();
    let (policy, facts) = example();
    let files = openwrt::files(&policy, &EmitOptions::default()).expect("openwrt files");
    let text = |p: &str| {
        files
            .iter()
            .find(|f| f.path == p)
            .map(|f| f.text.clone())
            .expect("file")
    };
    let ruleset = fw4_with(&text(openwrt::INCLUDE));
    let dnsmasq = nftset_lines(&text(openwrt::DHCP));
    assert!(
        dnsmasq.contains("#inet#fw4#portolan_gk_sensorist_com__gk_sensorist_net_v4"),
        "the UCI sections fill the include's sets:\n{dnsmasq}"
    );
    let report = lab::run(
        &policy,
        &Options {
            ruleset: Some(ruleset),
            dnsmasq: Some(dnsmasq),
            facts: Some(facts),
            ..Options::default()
        },
        &|m| eprintln!("    lab: {m}"),
    )
    .expect("lab on the fw4 table with Portolan's include");
    for row in report.rows.iter().filter(|r| !r.ok) {
        eprintln!(
            "    MISMATCH {} {} {:?} {} {} -> {}: expected {}, observed {:?}",
            row.device,
            row.flow,
            row.kind,
            row.traffic,
            row.src,
            row.dst,
            row.expected.as_str(),
            row.observed
        );
    }
    eprintln!(
        "    {} probes: {} expected pass, {} expected drop, {} mismatched, {} skipped",
        report.summary.probes,
        report.summary.expected_pass,
        report.summary.expected_drop,
        report.summary.mismatched,
        report.summary.skipped
    );
    assert!(
        report.all_match(),
        "{} probes mismatched",
        report.summary.mismatched
    );
    assert!(report.summary.expected_pass >= 60 && report.summary.expected_drop >= 60);
}
