//! The shipped catalog against the vendor documents it was made from (`shared/seeds/`).
//!
//! Each profile gets assertions on the facts its seed states. Where the seed can be read
//! (`../../../shared/seeds` from this crate), the ThingPark flow tables are parsed from the
//! seed itself and compared row by row, and quoted citations are looked up in the seed text;
//! when the folder is absent those sub-assertions are skipped with a loud message, and the
//! hard-coded expectations still run.
//!
//! Over 800 lines on purpose: one block of facts per seed system, each read against its vendor
//! page; they share the seed readers at the top, and a file per seed would repeat them.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use portolan_model::catalog::Catalog;
use portolan_model::{
    Condition, Flow, Initiation, ListenPorts, Listens, ParamType, ParamValue, PortItem, PortSpec,
    Profile, Protocol,
};

/// The five seed documents (`shared/seeds/README.md`) and the profile made from each.
const SEEDS: &[(&str, &str)] = &[
    ("000_46887790a71e1d85.txt", "thingpark-lrr"),
    ("001_5d48260093aa547d.txt", "izuma-device-management"),
    ("002_c77a267d5f392493.txt", "oscar-templog-gateway"),
    ("003_d36afb2ed3d02448.txt", "ubisense-dimension4-sensor"),
    ("004_37d72e6138c2abbf.txt", "elseta-wcc-lite"),
];

fn seeds_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n!!! SKIPPING seed-text assertions: {} does not exist (shared/ is not beside the \
             work tree). The catalog is checked only against the expectations written here.\n",
            dir.display()
        );
        None
    }
}

/// The text of a seed file, or `None` (with a loud message) when the folder is absent.
fn seed_text(file: &str) -> Option<String> {
    let path = seeds_dir()?.join(file);
    Some(fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn catalog() -> Catalog {
    Catalog::embedded().expect("the shipped catalog validates")
}

fn profile(id: &str) -> Profile {
    catalog()
        .get(id)
        .unwrap_or_else(|| panic!("catalog has no `{id}`"))
        .clone()
}

fn flow<'a>(p: &'a Profile, mode: Option<&'a str>, id: &str) -> &'a Flow {
    let mut found = p.flows_in(mode).filter(|f| f.id == id);
    let f = found
        .next()
        .unwrap_or_else(|| panic!("{}: no flow `{id}` in mode {mode:?}", p.id));
    assert!(
        mode.is_none() || found.next().is_none(),
        "{}: `{id}` twice in {mode:?}",
        p.id
    );
    f
}

fn ids<'a>(p: &'a Profile, mode: &'a str) -> Vec<&'a str> {
    p.flows_in(Some(mode)).map(|f| f.id.as_str()).collect()
}

fn ports(items: &[PortItem]) -> PortSpec {
    PortSpec::List(items.to_vec())
}

/// The concrete ports a spec names (ranges expanded; params and `unspecified` have none).
fn concrete(spec: &PortSpec) -> BTreeSet<u16> {
    match spec {
        PortSpec::List(items) => items
            .iter()
            .flat_map(|i| match i {
                PortItem::Single(p) => vec![*p],
                PortItem::Range(a, b) => (*a..=*b).collect(),
                PortItem::Param(_) => Vec::new(),
            })
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn normalize(s: &str) -> String {
    s.replace('’', "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// ThingPark (seed 000)

const TP: &str = "thingpark-lrr";

/// The seed tables' row ids, per mode, in table order (the TLS table's outer rows).
const TP_MODES: &[(&str, &[&str])] = &[
    (
        "ipsec",
        &["i6", "i7", "i7a", "i8a", "i10", "i11", "i11b", "i9", "i17"],
    ),
    ("tls", &["i7a", "i8a", "i10", "i11", "i11b", "i9", "i17"]),
    (
        "plain",
        &[
            "i10", "i11", "i9", "i14", "i15", "i15b", "i17", "i17b", "i17c", "i17d",
        ],
    ),
    ("basics-station", &["i10", "i11", "i11c", "i11d", "i17"]),
];

/// One row of a seed flow table, its nine columns as written.
#[derive(Debug)]
struct SeedRow {
    id: String,
    from_system: String,
    from_app: String,
    kind: String,
    protocol: String,
    dest_port: String,
    to_system: String,
    to_app: String,
    description: String,
}

/// The flow tables of seed 000: (title, rows). A table is the line before a `# | From` header,
/// the header, a `---|` rule, then one `id | … |` line per row.
fn seed_tables(text: &str) -> Vec<(String, Vec<SeedRow>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut tables = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("# | From (system)") && i > 0 {
            let title = lines[i - 1].trim().to_string();
            let mut rows = Vec::new();
            let mut j = i + 2;
            while j < lines.len() {
                let cells: Vec<&str> = lines[j].split('|').map(str::trim).collect();
                // Nine cells and the empty one after the closing `|`.
                if cells.len() != 10 || cells[0].is_empty() {
                    break;
                }
                rows.push(SeedRow {
                    id: cells[0].into(),
                    from_system: cells[1].into(),
                    from_app: cells[2].into(),
                    kind: cells[3].into(),
                    protocol: cells[4].into(),
                    dest_port: cells[5].into(),
                    to_system: cells[6].into(),
                    to_app: cells[7].into(),
                    description: cells[8].into(),
                });
                j += 1;
            }
            tables.push((title, rows));
            i = j;
        } else {
            i += 1;
        }
    }
    tables
}

/// The seed table a mode stands for, read from the mode's own citation `table '<title>'`.
fn mode_table<'t>(p: &Profile, mode: &str, tables: &'t [(String, Vec<SeedRow>)]) -> &'t [SeedRow] {
    let m = p.modes.iter().find(|m| m.id == mode).expect("mode");
    let reference = &m
        .source
        .first()
        .expect("the mode cites its table")
        .reference;
    let title = reference
        .strip_prefix("table '")
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or_else(|| panic!("mode {mode} cites `{reference}`, not a table"));
    &tables
        .iter()
        .find(|(t, _)| t == title)
        .unwrap_or_else(|| panic!("mode {mode}: no table `{title}` in the seed"))
        .1
}

#[test]
fn thingpark_ipsec_i7_is_esp_either_side() {
    let p = profile(TP);
    let i7 = flow(&p, Some("ipsec"), "i7");
    assert_eq!(i7.protocol, Protocol::Esp);
    assert_eq!(i7.initiation, Initiation::Either);
    assert_eq!((i7.from.as_str(), i7.to.as_str()), ("device", "slrc"));
    assert_eq!(i7.ports, PortSpec::None);
    let esp = i7.esp.as_ref().expect("i7 has its ESP proposals");
    assert_eq!(esp.proposals, ["aes128gcm128", "aes256gcm128"]);
}

#[test]
fn thingpark_ipsec_i6_is_ike_on_500_and_4500_either_side() {
    let p = profile(TP);
    let i6 = flow(&p, Some("ipsec"), "i6");
    assert_eq!(i6.protocol, Protocol::Udp);
    assert_eq!(
        i6.ports,
        ports(&[PortItem::Single(500), PortItem::Single(4500)])
    );
    assert_eq!(i6.initiation, Initiation::Either);
    assert_eq!(i6.to, "slrc");
    let ike = i6.ike.as_ref().expect("i6 has its IKE proposals");
    assert_eq!(ike.versions, [2]);
    assert_eq!(
        ike.proposals,
        [
            "aes128-sha256-ecp256",
            "aes128-sha384-ecp384",
            "aes256-sha512-ecp521"
        ]
    );
    // The listen entry records i6's inbound side.
    let Listens::Entries(l) = &p.listens else {
        panic!("thingpark lists its inbound IKE")
    };
    assert!(l.iter().any(|e| e.flow.as_deref() == Some("i6")
        && e.protocol == Protocol::Udp
        && e.ports == ListenPorts::Ports(i6.ports.clone())));
}

/// The `ike=` and `esp=` lists of a seed description.
fn seed_list(description: &str, key: &str) -> Vec<String> {
    description
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(|l| l.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn thingpark_crypto_proposals_match_the_seed_descriptions() {
    let Some(text) = seed_text(SEEDS[0].0) else {
        return;
    };
    let p = profile(TP);
    let tables = seed_tables(&text);
    for row in mode_table(&p, "ipsec", &tables) {
        let f = flow(&p, Some("ipsec"), &row.id);
        let ike = seed_list(&row.description, "ike=");
        let esp = seed_list(&row.description, "esp=");
        assert_eq!(
            f.ike
                .as_ref()
                .map(|c| c.proposals.clone())
                .unwrap_or_default(),
            ike,
            "{}: ike",
            row.id
        );
        assert_eq!(
            f.esp
                .as_ref()
                .map(|c| c.proposals.clone())
                .unwrap_or_default(),
            esp,
            "{}: esp",
            row.id
        );
    }
}

#[test]
fn thingpark_ipsec_i7a_needs_lrr_2_8() {
    let p = profile(TP);
    let i7a = flow(&p, Some("ipsec"), "i7a");
    assert_eq!(i7a.conditions.len(), 1);
    let Condition::Version(v) = &i7a.conditions[0] else {
        panic!("i7a's condition is a version: {:?}", i7a.conditions)
    };
    assert_eq!((v.op.as_str(), v.version.as_slice()), (">=", &[2, 8][..]));
    assert_eq!(v.to_string(), ">= 2.8");
    // The same row in the TLS table carries no such condition.
    assert!(flow(&p, Some("tls"), "i7a").conditions.is_empty());
}

#[test]
fn thingpark_tls_tunnels_ride_inside_i7a() {
    let p = profile(TP);
    let outer = flow(&p, Some("tls"), "i7a");
    assert_eq!(outer.protocol, Protocol::Tcp);
    assert_eq!(concrete(&outer.ports), BTreeSet::from([3001, 3002, 3003]));
    for (id, port, to, inner_port) in [
        ("i14", 3001, "lrc", 2404),
        ("i15b", 3002, "lrc", 22),
        ("i17d", 3003, "support", 22),
    ] {
        let f = flow(&p, Some("tls"), id);
        let inside = f.inside.as_ref().expect("carried inside i7a");
        assert_eq!(
            (inside.flow.as_str(), inside.port),
            ("i7a", Some(port)),
            "{id}"
        );
        assert_eq!(f.to, to, "{id}");
        assert_eq!(f.protocol, Protocol::Tcp, "{id}");
        assert_eq!(f.ports, ports(&[PortItem::Single(inner_port)]), "{id}");
    }
    // The inner flows are exactly those three.
    let inner: Vec<&str> = p
        .flows_in(Some("tls"))
        .filter(|f| f.inside.is_some())
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(inner, ["i14", "i15b", "i17d"]);
}

#[test]
fn thingpark_tls_tunnels_are_the_ones_the_seed_names() {
    let Some(text) = seed_text(SEEDS[0].0) else {
        return;
    };
    let p = profile(TP);
    let tables = seed_tables(&text);
    let i7a = mode_table(&p, "tls", &tables)
        .iter()
        .find(|r| r.id == "i7a")
        .expect("TLS table has i7a");
    // "TLS tunnels to respectively LRC:2404 (i14), LRC:22 (i15b), SUPPORT:22 (i17d)", on the
    // row's ports TCP/3001 TCP/3002 TCP/3003 in that order.
    let targets: Vec<(String, u16, String)> = i7a
        .description
        .split("respectively")
        .nth(1)
        .expect("the row lists its tunnels")
        .split(',')
        .map(|t| {
            let (host_port, id) = t.trim().split_once(" (").expect("`SYSTEM:PORT (id)`");
            let (host, port) = host_port.split_once(':').expect("SYSTEM:PORT");
            (
                id.trim_end_matches(')').to_string(),
                port.parse().expect("port"),
                host.to_ascii_lowercase(),
            )
        })
        .collect();
    let outer_ports: Vec<u16> = i7a
        .dest_port
        .split_whitespace()
        .map(|t| t.trim_start_matches("TCP/").parse().expect("TCP/port"))
        .collect();
    assert_eq!(targets.len(), outer_ports.len());
    for ((id, port, to), outer) in targets.iter().zip(outer_ports) {
        let f = flow(&p, Some("tls"), id);
        assert_eq!(f.to, *to, "{id}");
        assert_eq!(f.ports, ports(&[PortItem::Single(*port)]), "{id}");
        assert_eq!(
            f.inside.as_ref().and_then(|i| i.port),
            Some(outer),
            "{id} rides on SLRC port {outer}"
        );
    }
}

#[test]
fn thingpark_plain_i14_is_iec104_to_lrc() {
    let p = profile(TP);
    let i14 = flow(&p, Some("plain"), "i14");
    assert_eq!(i14.protocol, Protocol::Tcp);
    assert_eq!(i14.ports, ports(&[PortItem::Single(2404)]));
    assert_eq!(i14.to, "lrc");
    assert!(i14.inside.is_none());
}

#[test]
fn thingpark_basics_station_https_flows() {
    let p = profile(TP);
    for (id, to) in [("i11c", "slrc"), ("i11d", "proxy-http")] {
        let f = flow(&p, Some("basics-station"), id);
        assert_eq!(f.to, to, "{id}");
        assert_eq!(f.protocol, Protocol::Tcp, "{id}");
        assert_eq!(f.ports, ports(&[PortItem::Single(443)]), "{id}");
        assert_eq!(f.initiation, Initiation::Device, "{id}");
    }
}

#[test]
fn thingpark_modes_have_the_seed_rows_in_order() {
    let p = profile(TP);
    let modes: Vec<&str> = p.modes.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(modes, ["ipsec", "tls", "plain", "basics-station"]);
    for (mode, want) in TP_MODES {
        let outer: Vec<&str> = p
            .flows_in(Some(mode))
            .filter(|f| f.inside.is_none())
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(outer, *want, "mode {mode}");
    }
    // Apart from TLS's three tunnelled flows, a mode is exactly its table.
    assert_eq!(ids(&p, "plain"), TP_MODES[2].1);
    assert_eq!(ids(&p, "ipsec"), TP_MODES[0].1);
    assert_eq!(ids(&p, "basics-station"), TP_MODES[3].1);
    // Every ThingPark flow belongs to exactly one mode.
    for f in &p.flows {
        assert_eq!(f.modes.len(), 1, "{}: {:?}", f.id, f.modes);
    }
}

#[test]
fn thingpark_rows_match_the_seed_tables() {
    let Some(text) = seed_text(SEEDS[0].0) else {
        return;
    };
    let p = profile(TP);
    let tables = seed_tables(&text);
    assert_eq!(tables.len(), 4, "the seed has four flow tables");
    for (mode, want) in TP_MODES {
        let rows = mode_table(&p, mode, &tables);
        let seed_ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        // The hard-coded lists above are the seed's, and so are the catalog's.
        assert_eq!(seed_ids, *want, "seed table of mode {mode}");
        let outer: Vec<&str> = p
            .flows_in(Some(mode))
            .filter(|f| f.inside.is_none())
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(outer, seed_ids, "catalog rows of mode {mode}");
        for row in rows {
            check_row(&p, mode, row);
        }
    }
}

/// One catalog flow against its seed row, column by column.
fn check_row(p: &Profile, mode: &str, row: &SeedRow) {
    let f = flow(p, Some(mode), &row.id);
    let at = format!("{mode}/{}", row.id);
    assert_eq!(row.from_system, "BASE STATION", "{at}");
    assert_eq!(f.from, "device", "{at}");
    let to = match row.to_system.as_str() {
        "SLRC" => "slrc",
        "LRC" => "lrc",
        "SUPPORT" => "support",
        "PROXY_HTTP" => "proxy-http",
        "DNS service" => "dns",
        "DHCP service" => "dhcp",
        "NTP service" => "ntp",
        other => panic!("{at}: unexpected To (system) `{other}`"),
    };
    assert_eq!(f.to, to, "{at}: To (system)");
    let initiation = match row.kind.as_str() {
        "Bidirectional" => Initiation::Either,
        "Unidirectional" => Initiation::Device,
        other => panic!("{at}: unexpected Type `{other}`"),
    };
    assert_eq!(f.initiation, initiation, "{at}: Type");
    assert_eq!(
        f.app.as_deref(),
        Some(row.protocol.as_str()),
        "{at}: Protocol"
    );
    assert_eq!(
        f.from_app.as_deref(),
        Some(row.from_app.as_str()),
        "{at}: From (application)"
    );
    assert_eq!(
        f.to_app.as_deref(),
        Some(row.to_app.as_str()),
        "{at}: To (application)"
    );
    let desc = f.description.as_deref().unwrap_or("");
    assert!(
        desc.starts_with(&row.description),
        "{at}: description `{desc}` does not start with the seed's `{}`",
        row.description
    );
    assert_eq!(
        f.optional,
        row.description.to_ascii_uppercase().contains("OPTIONAL"),
        "{at}: OPTIONAL"
    );
    if row.dest_port == "-" {
        // No port in the table: a portless protocol, or ports taken from a cited standard.
        match &f.protocol {
            Protocol::Esp | Protocol::Icmp => assert_eq!(f.ports, PortSpec::None, "{at}"),
            _ => assert!(
                f.source.iter().any(|c| c.doc != "seed"),
                "{at}: ports {} not in the seed and no standard cited",
                f.ports
            ),
        }
        if row.protocol.starts_with("ESP") {
            assert_eq!(f.protocol, Protocol::Esp, "{at}");
        }
        if row.protocol == "ICMP" {
            assert_eq!(f.protocol, Protocol::Icmp, "{at}");
        }
    } else {
        let mut protos = BTreeSet::new();
        let mut want = BTreeSet::new();
        for token in row.dest_port.split_whitespace() {
            let (proto, port) = token.split_once('/').expect("PROTO/PORT");
            protos.insert(proto.to_ascii_lowercase());
            want.insert(port.parse::<u16>().expect("port"));
        }
        assert_eq!(protos.len(), 1, "{at}: one transport per row");
        assert_eq!(
            Some(f.protocol.to_string()),
            protos.into_iter().next(),
            "{at}: transport"
        );
        assert_eq!(concrete(&f.ports), want, "{at}: Dest. Port");
    }
    assert!(
        f.source
            .iter()
            .any(|c| c.doc == "seed" && c.reference.contains(&format!("row {}", row.id))),
        "{at}: cites its own row"
    );
}

// ---------------------------------------------------------------------------------------------
// Oscar TempLog (seed 002)

#[test]
fn oscar_cloud_alternatives() {
    let p = profile("oscar-templog-gateway");
    let alt = p
        .alternatives
        .iter()
        .find(|a| a.id == "cloud")
        .expect("group `cloud`");
    let group: BTreeSet<&str> = alt.flows.iter().map(String::as_str).collect();
    assert_eq!(group, BTreeSet::from(["cloud-443", "cloud-4321"]));
    assert_eq!(p.alternatives.len(), 1);
    for (id, port) in [("cloud-443", 443), ("cloud-4321", 4321)] {
        let f = flow(&p, None, id);
        assert_eq!(f.protocol, Protocol::Tcp, "{id}");
        assert_eq!(f.ports, ports(&[PortItem::Single(port)]), "{id}");
        assert!(f.persistent, "{id} is persistent");
        assert_eq!(f.initiation, Initiation::Device, "{id}");
        assert_eq!(f.to, "cloud", "{id}");
        assert!(f.keepalive.is_none(), "{id}: the seed gives no interval");
    }
    let cloud = p.endpoint("cloud").expect("endpoint cloud");
    assert_eq!(cloud.hosts, ["gk.sensorist.com", "gk.sensorist.net"]);
    assert!(cloud.addresses_volatile);
    let addrs: Vec<String> = cloud
        .addresses
        .iter()
        .map(|a| a.addr().to_string())
        .collect();
    assert_eq!(addrs, ["54.229.203.190", "54.229.68.147"]);
    assert_eq!(p.listens, Listens::Nothing);
    // Nothing is initiated from outside.
    assert!(p.flows.iter().all(|f| f.initiation == Initiation::Device));

    if let Some(text) = seed_text(SEEDS[2].0) {
        for fact in [
            "gk.sensorist.com / gk.sensorist.net",
            "54.229.203.190 / 54.229.68.147",
            "either port 443 or port 4321",
            "**persistent TCP**",
            "There is **NOT** a requirement of Gateway being able to receive",
        ] {
            assert!(text.contains(fact), "seed 002 says `{fact}`");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Izuma (seed 001)

const ISSUER: &str =
    "C = GB, ST = Cambridgeshire, L = Cambridge, O = ARM Ltd, CN = ARM Bootstrap CA";

#[test]
fn izuma_region_param() {
    let p = profile("izuma-device-management");
    let region = p.param("region").expect("param region");
    assert_eq!(region.kind, ParamType::Enum);
    assert_eq!(region.values, ["us-east-1"]);
    assert_eq!(region.default, Some(ParamValue::Text("us-east-1".into())));
}

#[test]
fn izuma_bootstrap_expected_issuer() {
    let p = profile("izuma-device-management");
    let f = flow(&p, None, "bootstrap-tcp");
    assert_eq!(
        (f.protocol.clone(), f.ports.clone(), f.to.as_str()),
        (Protocol::Tcp, ports(&[PortItem::Single(5684)]), "bootstrap")
    );
    let tls = f.tls.as_ref().expect("tls facts");
    assert_eq!(tls.expected_issuer.as_deref(), Some(ISSUER));
    assert_eq!(tls.inspection, Some(portolan_model::Inspection::Forbidden));
    if let Some(text) = seed_text(SEEDS[1].0) {
        assert!(text.contains(&format!("issuer={ISSUER}")));
        assert!(text.contains("openssl s_client -connect bootstrap.us-east-1.mbedcloud.com:5684"));
    }
}

#[test]
fn izuma_coap_over_tcp_keepalive() {
    let p = profile("izuma-device-management");
    let with_keepalive: Vec<&str> = p
        .flows
        .iter()
        .filter(|f| f.keepalive.is_some())
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(with_keepalive, ["mds-legacy-tcp", "mds-tcp"]);
    for id in with_keepalive {
        let f = flow(&p, None, id);
        assert_eq!(f.keepalive, Some(540), "{id}");
        assert!(f.persistent, "{id}");
        assert_eq!(f.protocol, Protocol::Tcp, "{id}");
        assert_eq!(f.ports, ports(&[PortItem::Single(5684)]), "{id}");
    }
    if let Some(text) = seed_text(SEEDS[1].0) {
        assert!(text.contains("default value of 540 seconds for keepalive"));
    }
}

#[test]
fn izuma_wildcard_domain() {
    let p = profile("izuma-device-management");
    let e = p.endpoint("mbedcloud").expect("endpoint mbedcloud");
    assert_eq!(e.domains, ["*.mbedcloud.com"]);
    assert!(e.hosts.is_empty() && e.addresses.is_empty());
    // Offered behind a feature, on the documented device ports.
    let wild: Vec<(String, Vec<String>)> = p
        .flows
        .iter()
        .filter(|f| f.to == "mbedcloud")
        .map(|f| (f.protocol.to_string(), f.ports.to_strings()))
        .collect();
    assert_eq!(
        wild,
        [
            ("udp".to_string(), vec!["5684".to_string()]),
            ("tcp".to_string(), vec!["5684".to_string()]),
            ("tcp".to_string(), vec!["443".to_string()]),
        ]
    );
    for f in p.flows.iter().filter(|f| f.to == "mbedcloud") {
        assert_eq!(
            f.conditions,
            [Condition::Feature("mbedcloud-wildcard".into())]
        );
    }
}

#[test]
fn izuma_5684_on_udp_and_tcp() {
    let p = profile("izuma-device-management");
    let on_5684 = |to: &str, proto: Protocol| {
        p.flows.iter().any(|f| {
            f.to == to
                && f.protocol == proto
                && f.ports == ports(&[PortItem::Single(5684)])
                && f.modes.is_empty()
        })
    };
    for to in ["bootstrap", "mds-legacy"] {
        assert!(on_5684(to, Protocol::Udp), "{to}: udp/5684 in every mode");
        assert!(on_5684(to, Protocol::Tcp), "{to}: tcp/5684 in every mode");
    }
    assert!(on_5684("mds-udp", Protocol::Udp) && !on_5684("mds-udp", Protocol::Tcp));
    assert!(on_5684("mds-tcp", Protocol::Tcp) && !on_5684("mds-tcp", Protocol::Udp));
}

#[test]
fn izuma_hosts_are_the_seed_domain_hosts() {
    let p = profile("izuma-device-management");
    let region = "us-east-1";
    let hosts: Vec<String> = p
        .endpoints
        .iter()
        .flat_map(|e| e.hosts.iter())
        .map(|h| h.replace("{region}", region))
        .collect();
    assert_eq!(
        hosts,
        [
            "bootstrap.us-east-1.mbedcloud.com",
            "lwm2m.us-east-1.mbedcloud.com",
            "udp-lwm2m.us-east-1.mbedcloud.com",
            "tcp-lwm2m.us-east-1.mbedcloud.com",
            "containers.us-east-1.mbedcloud.com",
            "gateways.us-east-1.mbedcloud.com",
            "edge-k8s.us-east-1.mbedcloud.com",
        ]
    );
    if let Some(text) = seed_text(SEEDS[1].0) {
        for h in &hosts {
            assert!(text.contains(h.as_str()), "seed 001 names {h}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ubisense DIMENSION4 (seed 003)

#[test]
fn ubisense_protocol_ports_are_unspecified() {
    let p = profile("ubisense-dimension4-sensor");
    for (id, proto) in [
        ("raw-udp", Protocol::Udp),
        ("remote-ops", Protocol::Unspecified),
        ("event-channel", Protocol::Unspecified),
    ] {
        let f = flow(&p, None, id);
        assert_eq!(f.ports, PortSpec::Unspecified, "{id}");
        assert_eq!(f.protocol, proto, "{id}");
        assert_eq!(f.initiation, Initiation::Either, "{id}");
    }
    // Every DIMENSION4-specific flow leaves its port to the site; only DHCP and DNS, which
    // cite their RFCs, have numbers.
    for f in &p.flows {
        if concrete(&f.ports).is_empty() {
            continue;
        }
        assert!(
            ["dhcp", "dns"].contains(&f.id.as_str()),
            "{} has a port the seed does not give",
            f.id
        );
        assert!(
            f.source.iter().any(|c| c.doc.starts_with("rfc")),
            "{}",
            f.id
        );
    }
}

#[test]
fn ubisense_tcp_listens_none() {
    let p = profile("ubisense-dimension4-sensor");
    let Listens::Entries(l) = &p.listens else {
        panic!("ubisense lists its listen entries")
    };
    let tcp: Vec<&ListenPorts> = l
        .iter()
        .filter(|e| e.protocol == Protocol::Tcp)
        .map(|e| &e.ports)
        .collect();
    assert_eq!(tcp, [&ListenPorts::Closed]);
    assert!(l.iter().any(
        |e| e.protocol == Protocol::Udp && e.ports == ListenPorts::Ports(PortSpec::Unspecified)
    ));
    if let Some(text) = seed_text(SEEDS[3].0) {
        assert!(text.contains("All 65535 scanned ports on 10.42.5.50 are closed"));
    }
}

// ---------------------------------------------------------------------------------------------
// Elseta WCC Lite (seed 004)

#[test]
fn wcc_lite_l2tp_inside_esp() {
    let p = profile("elseta-wcc-lite");
    let l2tp = flow(&p, None, "l2tp");
    assert_eq!(l2tp.protocol, Protocol::Udp);
    assert_eq!(l2tp.ports, ports(&[PortItem::Single(1701)]));
    let inside = l2tp.inside.as_ref().expect("inside the ESP flow");
    assert_eq!((inside.flow.as_str(), inside.port), ("l2tp-esp", None));
    assert_eq!(flow(&p, None, "l2tp-esp").protocol, Protocol::Esp);
    assert_eq!(
        flow(&p, None, "l2tp-ike").ports,
        ports(&[PortItem::Single(500)])
    );
    if let Some(text) = seed_text(SEEDS[4].0) {
        assert!(text.contains("L2TP uses UDP port 1701"));
        assert!(text.contains("The IP protocol number for ESP is 50"));
    }
}

#[test]
fn wcc_lite_snmp_is_optional_under_its_feature() {
    let p = profile("elseta-wcc-lite");
    let snmp = flow(&p, None, "snmp");
    assert_eq!(snmp.protocol, Protocol::Udp);
    assert_eq!(snmp.ports, ports(&[PortItem::Single(161)]));
    assert!(snmp.optional);
    assert_eq!(snmp.conditions, [Condition::Feature("snmp".into())]);
    assert_eq!(
        (snmp.from.as_str(), snmp.to.as_str(), snmp.initiation),
        ("management", "device", Initiation::Peer)
    );
    // 161 is not in the manual: a standard is cited for it.
    assert!(snmp.source.iter().any(|c| c.doc.starts_with("rfc")));
}

#[test]
fn wcc_lite_api_inbound_port_unspecified() {
    let p = profile("elseta-wcc-lite");
    let api = flow(&p, None, "api");
    assert_eq!(
        (api.from.as_str(), api.to.as_str(), api.initiation),
        ("management", "device", Initiation::Peer)
    );
    assert_eq!(api.protocol, Protocol::Tcp);
    assert_eq!(api.ports, PortSpec::Unspecified);
    assert_eq!(api.conditions, [Condition::Feature("api".into())]);
    let Listens::Entries(l) = &p.listens else {
        panic!("the gateway lists what it exposes")
    };
    let entry = l
        .iter()
        .find(|e| e.flow.as_deref() == Some("api"))
        .expect("a listen entry for the API");
    assert_eq!(entry.ports, ListenPorts::Ports(PortSpec::Unspecified));
}

#[test]
fn wcc_lite_openvpn_protocol_is_a_param() {
    let p = profile("elseta-wcc-lite");
    let vpn = flow(&p, None, "openvpn");
    assert_eq!(vpn.protocol, Protocol::Param("openvpn_protocol".into()));
    assert_eq!(vpn.ports, ports(&[PortItem::Param("openvpn_port".into())]));
    let param = p.param("openvpn_protocol").expect("param");
    assert_eq!(param.kind, ParamType::Enum);
    assert_eq!(param.values, ["udp", "tcp"]);
    assert_eq!(param.default, None, "the site chooses");
    assert_eq!(
        p.param("openvpn_port").map(|x| x.kind),
        Some(ParamType::Port)
    );
}

// ---------------------------------------------------------------------------------------------
// Every profile

#[test]
fn the_catalog_is_the_five_seed_systems() {
    let cat = catalog();
    let ids: BTreeSet<&str> = cat.ids().collect();
    let want: BTreeSet<&str> = SEEDS.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, want);
    for (file, id) in SEEDS {
        let p = cat.get(id).expect("profile");
        assert!(
            p.sources.iter().any(|s| s.file.as_deref() == Some(*file)),
            "{id} lists its seed {file}"
        );
    }
}

#[test]
fn every_flow_cites_a_seed_file() {
    let seeds: BTreeSet<&str> = SEEDS.iter().map(|(f, _)| *f).collect();
    let dir = seeds_dir();
    if let Some(dir) = &dir {
        for f in &seeds {
            assert!(dir.join(f).is_file(), "{f} is in {}", dir.display());
        }
    }
    for e in &catalog().entries {
        let p = &e.profile;
        for s in &p.sources {
            if let Some(file) = &s.file {
                assert!(
                    seeds.contains(file.as_str()),
                    "{}: source file {file}",
                    p.id
                );
                if let Some(dir) = &dir {
                    assert!(dir.join(file).is_file(), "{}: {file} exists", p.id);
                }
            }
        }
        for f in &p.flows {
            let cited: Vec<&str> = f
                .source
                .iter()
                .filter_map(|c| p.source_doc(&c.doc).and_then(|s| s.file.as_deref()))
                .collect();
            assert!(
                cited.iter().any(|file| seeds.contains(file)),
                "{}/{}: no citation of a seed file ({:?})",
                p.id,
                f.id,
                f.source
            );
        }
    }
}

/// `'…'` spans of a citation `ref`: what it quotes from the document.
fn quotes(reference: &str) -> Vec<&str> {
    reference.split('\'').skip(1).step_by(2).collect()
}

#[test]
fn quoted_citations_are_verbatim_in_the_seed() {
    let cat = catalog();
    let mut checked = 0;
    for e in &cat.entries {
        let p = &e.profile;
        let Some(file) = p
            .sources
            .iter()
            .find_map(|s| s.file.as_deref().filter(|f| f.ends_with(".txt")))
        else {
            panic!("{} has a seed file", p.id)
        };
        let Some(text) = seed_text(file) else {
            return;
        };
        let text = normalize(&text);
        let seed_ids: Vec<&str> = p
            .sources
            .iter()
            .filter(|s| s.file.as_deref() == Some(file))
            .map(|s| s.id.as_str())
            .collect();
        let mut refs: Vec<&str> = p
            .flows
            .iter()
            .flat_map(|f| &f.source)
            .chain(p.notes.iter().flat_map(|n| &n.source))
            .chain(p.endpoints.iter().flat_map(|n| &n.source))
            .chain(p.modes.iter().flat_map(|n| &n.source))
            .chain(p.features.iter().flat_map(|n| &n.source))
            .chain(p.params.iter().flat_map(|n| &n.source))
            .chain(p.alternatives.iter().flat_map(|n| &n.source))
            .filter(|c| seed_ids.contains(&c.doc.as_str()))
            .map(|c| c.reference.as_str())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        for r in refs {
            for q in quotes(r) {
                // `...` in a quote elides text; each part must be there.
                for part in q.split("...").map(str::trim).filter(|s| !s.is_empty()) {
                    assert!(
                        text.contains(&normalize(part)),
                        "{}: citation `{r}` quotes `{part}`, which is not in {file}",
                        p.id
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 20, "quotes were checked ({checked})");
}
