//! Hostile strings. Profiles and sites come from third parties: a description, a name or a
//! value holding quotes, newlines, `;`, `}`, `#`, backticks, `$(...)` or non-ASCII text must
//! either be refused at compile time with a diagnostic code, or leave every emitted rule
//! exactly as it is without it.

use std::path::Path;

use portolan_emit::{emit, EmitError, Options, Target};
use portolan_model::compile::site_text;
use portolan_model::ir::Policy;

use crate::common::{kernel, Netns, Profiles, Steps};

/// Everything a ruleset or a shell would take for syntax, and text that is not ASCII.
const PAYLOADS: [&str; 8] = [
    "x\" ; accept ; drop \"",
    "x\n}\ntable inet evil { chain c { type filter hook input priority 0; policy accept; } }\n",
    "x } } ; flush ruleset ; #",
    "x # COMMIT\n*filter\n-A INPUT -j ACCEPT",
    "`reboot` $(rm -rf /) ${IFS}",
    "x' ; nftset=/evil.example/4#inet#portolan#n4_x",
    "ünïcödé – “quotes” ✓ \u{202e}evil\u{0}",
    "back\\slash\ttab\rreturn",
];

/// The marker every payload-bearing variant injects next to the payload.
const MARK: &str = "INJECTED";

const PROFILE: &str = r#"portolan: 1
id: acme-sensor
vendor: @VENDOR@
product: @PRODUCT@
description: @DESC@
sources:
  - id: doc
    title: @TITLE@
    file: doc.txt
features:
  - id: push
    description: @DESC@
params:
  - id: tenant
    type: string
    description: @DESC@
  - id: port
    type: port
    default: 8443
endpoints:
  - id: cloud
    hosts: [@HOST@]
    description: @DESC@
  - id: server
    role: true
    description: @DESC@
flows:
  - id: @FLOW@
    from: device
    to: cloud
    initiation: device
    protocol: tcp
    ports: "{port}"
    description: @DESC@
    source: {doc: doc, ref: @DESC@}
  - id: push
    conditions: [{feature: push}]
    from: device
    to: server
    initiation: either
    protocol: udp
    ports: 5000
    source: {doc: doc, ref: "row push"}
  - id: ping
    from: device
    to: server
    initiation: device
    protocol: icmp
    icmp_type: @ICMP@
    source: {doc: doc, ref: "row ping"}
listens: none
"#;

const SITE: &str = r#"portolan: 1
# @COMMENT@
site: @SITE@
description: @DESC@
zones:
  - id: @ZONE@
    interface: @IFACE@
    networks: [10.1.0.0/24]
    description: @DESC@
  - id: wan
    interface: wan0
services:
  dns: firewall
devices:
  - id: @DEVICE@
    profile: @PROFILE@
    zone: @ZONE@
    addresses: [10.1.0.0/28]
    description: @DESC@
    features: [@FEATURE@]
    params:
      tenant: @TENANT@
      port: @PORT@
    bind:
      server: [@SERVER@]
    flows:
      @FLOWSET@: {enabled: true}
  # @COMMENT@
"#;

/// A YAML double-quoted scalar holding `s` exactly.
fn yq(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\0' => o.push_str("\\0"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The benign value of each placeholder.
fn benign(key: &str) -> String {
    match key {
        "VENDOR" => "Acme".into(),
        "PRODUCT" => "Sensor".into(),
        "DESC" => "A sensor.".into(),
        "TITLE" => "Acme network page".into(),
        "HOST" => "\"{tenant}.acme.example.com\"".into(),
        "FLOW" | "FLOWSET" => "cloud".into(),
        "ICMP" => "echo-request".into(),
        "COMMENT" => "a comment".into(),
        "SITE" => "acme-plant".into(),
        "ZONE" => "field".into(),
        "IFACE" => "lan0".into(),
        "DEVICE" => "sensors".into(),
        "PROFILE" => "acme-sensor".into(),
        "FEATURE" => "push".into(),
        "TENANT" => "t1".into(),
        "PORT" => "8443".into(),
        "SERVER" => "198.51.100.7".into(),
        other => panic!("no placeholder {other}"),
    }
}

const KEYS: [&str; 17] = [
    "VENDOR", "PRODUCT", "DESC", "TITLE", "HOST", "FLOW", "FLOWSET", "ICMP", "COMMENT", "SITE",
    "ZONE", "IFACE", "DEVICE", "PROFILE", "FEATURE", "TENANT", "PORT",
];

/// Fills a template: `over` replaces the benign value of one placeholder (already YAML).
fn fill(template: &str, over: Option<(&str, &str)>) -> String {
    let mut t = template.to_string();
    for key in KEYS.iter().chain(&["SERVER"]) {
        let v = match over {
            Some((k, v)) if k == *key => v.to_string(),
            _ => match *key {
                // Free text is written quoted; the rest as plain scalars.
                "VENDOR" | "PRODUCT" | "DESC" | "TITLE" => yq(&benign(key)),
                _ => benign(key),
            },
        };
        t = t.replace(&format!("@{key}@"), &v);
    }
    t
}

enum Outcome {
    /// Compiled, with the policy.
    Compiled(Box<Policy>),
    /// Refused: the diagnostic codes.
    Refused(Vec<String>),
}

/// Compiles the site with one placeholder of the profile or the site replaced.
fn compile(profile_over: Option<(&str, &str)>, site_over: Option<(&str, &str)>) -> Outcome {
    let profile = fill(PROFILE, profile_over);
    let profiles = match Profiles::catalog()
        .files(Path::new("."))
        .try_with_text("acme-sensor", &profile)
    {
        Ok(p) => p,
        Err(d) => return Outcome::Refused(d.iter().map(|d| d.code.to_string()).collect()),
    };
    let site = fill(SITE, site_over);
    match site_text("hostile.yaml", &site, &profiles) {
        Ok(l) => Outcome::Compiled(Box::new(l.value)),
        Err(d) => Outcome::Refused(d.iter().map(|d| d.code.to_string()).collect()),
    }
}

fn all_targets(p: &Policy) -> Vec<Result<String, EmitError>> {
    [Target::Nftables, Target::Iptables, Target::Dnsmasq]
        .iter()
        .map(|t| emit(*t, p, &Options::default()))
        .collect()
}

fn benign_outputs() -> Vec<String> {
    match compile(None, None) {
        Outcome::Compiled(p) => all_targets(&p)
            .into_iter()
            .map(|r| r.expect("the benign site emits"))
            .collect(),
        Outcome::Refused(c) => panic!("the benign site is refused: {c:?}"),
    }
}

#[test]
fn hostile_free_text_changes_nothing_in_any_output() {
    let want = benign_outputs();
    let mut cases = 0;
    for payload in PAYLOADS {
        let text = format!("{payload} {MARK}");
        for key in ["VENDOR", "PRODUCT", "DESC", "TITLE"] {
            let quoted = yq(&text);
            let (p_over, s_over) = if key == "DESC" {
                // Descriptions appear in both files.
                (Some((key, quoted.as_str())), Some((key, quoted.as_str())))
            } else {
                (Some((key, quoted.as_str())), None)
            };
            match compile(p_over, s_over) {
                Outcome::Compiled(p) => {
                    let got: Vec<String> = all_targets(&p)
                        .into_iter()
                        .map(|r| r.expect("emits"))
                        .collect();
                    assert_eq!(got, want, "{key} = {payload:?} changed an output");
                    cases += 1;
                }
                Outcome::Refused(codes) => {
                    // Free text may be refused (a NUL), but only with a diagnostic.
                    assert!(!codes.is_empty(), "{key} = {payload:?}");
                }
            }
        }
        // YAML comments: a newline ends them, so only one-line payloads fit.
        let one_line = text.replace(['\n', '\r'], " ");
        match compile(None, Some(("COMMENT", &one_line))) {
            Outcome::Compiled(p) => {
                let got: Vec<String> = all_targets(&p)
                    .into_iter()
                    .map(|r| r.expect("emits"))
                    .collect();
                assert_eq!(got, want, "a comment {payload:?} changed an output");
            }
            // A NUL is not allowed anywhere in YAML, comments included.
            Outcome::Refused(codes) => assert_eq!(codes, ["yaml-syntax"], "{payload:?}"),
        }
    }
    assert!(cases >= 20, "most free-text cases compile ({cases})");
}

#[test]
fn hostile_names_and_values_are_refused_with_a_code() {
    // (which file, placeholder, value as YAML, the codes any of which must be reported)
    let mut failures = Vec::new();
    let mut checked = 0;
    for payload in PAYLOADS {
        let q = yq(&format!("{payload}{MARK}"));
        let q_host = yq(&format!("{}{MARK}.example.com", payload.replace(' ', "")));
        let cases: Vec<(bool, &str, String, &[&str])> = vec![
            (false, "SITE", q.clone(), &["invalid-id"]),
            (false, "ZONE", q.clone(), &["invalid-id"]),
            (false, "IFACE", q.clone(), &["invalid-interface"]),
            (false, "DEVICE", q.clone(), &["invalid-id"]),
            (false, "PROFILE", q.clone(), &["unknown-profile"]),
            (false, "FEATURE", q.clone(), &["unknown-feature"]),
            (false, "FLOWSET", q.clone(), &["unknown-flow"]),
            (
                false,
                "TENANT",
                q.clone(),
                &["invalid-hostname", "invalid-param"],
            ),
            (false, "PORT", q.clone(), &["invalid-param", "invalid-port"]),
            (
                false,
                "SERVER",
                q.clone(),
                &["invalid-binding", "invalid-address"],
            ),
            (
                false,
                "SERVER",
                q_host.clone(),
                &["invalid-binding", "invalid-address"],
            ),
            (true, "FLOW", q.clone(), &["invalid-id"]),
            (true, "HOST", q_host.clone(), &["invalid-hostname"]),
            (true, "HOST", q.clone(), &["invalid-hostname"]),
        ];
        for (in_profile, key, value, codes) in cases {
            let over = Some((key, value.as_str()));
            let outcome = if in_profile {
                compile(over, None)
            } else {
                compile(None, over)
            };
            checked += 1;
            match outcome {
                Outcome::Refused(got) => {
                    if !got.iter().any(|c| codes.contains(&c.as_str())) {
                        failures.push(format!(
                            "{key} = {value}: codes {got:?}, want one of {codes:?}"
                        ));
                    }
                }
                Outcome::Compiled(p) => {
                    failures.push(format!("{key} = {value}: compiled"));
                    for out in all_targets(&p).into_iter().flatten() {
                        assert!(
                            !out.contains(MARK),
                            "{key} = {value} reached an output:\n{out}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{checked} cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn hostile_icmp_type_never_reaches_a_ruleset() {
    for payload in PAYLOADS {
        let q = yq(&format!("{payload}{MARK}"));
        match compile(Some(("ICMP", &q)), None) {
            Outcome::Refused(codes) => assert!(!codes.is_empty()),
            Outcome::Compiled(p) => {
                // Validation lets it through today; the back ends must refuse it.
                for (t, r) in [Target::Nftables, Target::Iptables]
                    .iter()
                    .zip(all_targets(&p))
                {
                    match r {
                        Err(EmitError::Unsafe { .. }) => {}
                        Err(e) => panic!("{t:?}: {e}"),
                        Ok(out) => {
                            assert!(!out.contains(MARK), "{t:?} emitted {payload:?}:\n{out}")
                        }
                    }
                }
            }
        }
    }
}

/// Each string field of the IR replaced by a payload: the back ends are the last line of
/// defence, so each must refuse the policy or keep the payload out of every rule.
#[test]
fn tampered_ir_strings_are_refused_or_inert() {
    let Outcome::Compiled(base) = compile(None, None) else {
        panic!("the benign site is refused")
    };
    type Tamper = fn(&mut Policy, &str);
    let tampers: [(&str, Tamper); 9] = [
        ("site", |p, s| p.site = s.into()),
        ("group id", |p, s| {
            p.groups[0].id = s.into();
            for r in &mut p.rules {
                r.group = s.into();
            }
        }),
        ("profile id", |p, s| p.rules[0].profile = s.into()),
        ("flow id", |p, s| p.rules[0].flow = s.into()),
        ("hostname", |p, s| {
            for r in &mut p.rules {
                if !r.peers.names.is_empty() {
                    r.peers.names[0] = s.into();
                }
            }
        }),
        ("wildcard", |p, s| p.rules[0].peers.wildcards.push(s.into())),
        ("interface", |p, s| {
            for z in &mut p.zones {
                z.interface = Some(s.into());
            }
        }),
        ("icmp type", |p, s| {
            for r in &mut p.rules {
                if r.protocol.number() == 1 {
                    r.icmp_type = Some(s.into());
                }
            }
        }),
        ("documented reason", |p, s| {
            p.documented.push(portolan_model::ir::Documented {
                group: "sensors".into(),
                profile: "acme-sensor".into(),
                flow: "x".into(),
                reason: s.into(),
            })
        }),
    ];
    for payload in PAYLOADS {
        let text = format!("{payload}{MARK}");
        for (what, tamper) in &tampers {
            let mut p = (*base).clone();
            tamper(&mut p, &text);
            for (t, r) in [Target::Nftables, Target::Iptables, Target::Dnsmasq]
                .iter()
                .zip(all_targets(&p))
            {
                let Ok(out) = r else { continue };
                for line in out.lines().filter(|l| l.contains(MARK)) {
                    assert!(
                        line.trim_start().starts_with('#'),
                        "{what} = {payload:?} reached a {t:?} rule: {line}"
                    );
                }
            }
        }
    }
}

#[test]
fn hostile_description_output_passes_nft_check() {
    let _turn = kernel::turn();
    let q = yq(&format!("{} {MARK}", PAYLOADS.join(" ")));
    let Outcome::Compiled(p) = compile(Some(("DESC", &q)), Some(("DESC", &q))) else {
        panic!("hostile descriptions are refused")
    };
    let text = emit(Target::Nftables, &p, &Options::default()).expect("emits");
    let ns = Netns::new("emit");
    ns.nft("hostile descriptions", &text, true);
    ns.nft("hostile descriptions", &text, false);
    ns.iptables(
        "hostile descriptions",
        &emit(Target::Iptables, &p, &Options::default()).expect("emits"),
    );
}
