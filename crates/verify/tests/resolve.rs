//! `verify --resolve`: a hostname peer whose packets no DNS-filled set admits counts as
//! permitted when rules on static addresses admit every address the name resolves to now,
//! asked of a real DNS server (dnsmasq on the loopback of a scratch network namespace); the
//! report says which way each name was found. The ruleset is loaded by the real `nft` into
//! another scratch namespace to be listed. Needs root.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portolan_lab::netns::{Handle, Resources};
use portolan_model::catalog::Catalog;
use portolan_model::ir::Policy;
use portolan_verify::site::{verify, DnsFills, NameVia, Report, Status};

/// An administrator's allow list for the loggers of `iot-vlan.yaml` (Oscar TempLog
/// gateways, whose cloud is gk.sensorist.com and gk.sensorist.net, and 54.229.68.147 and
/// 54.229.203.190): the two documented addresses and 203.0.113.7, on 443 and 4321.
const RULESET: &str = "table inet filter {
	chain input {
		type filter hook input priority filter; policy accept;
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname \"iot0\" ip daddr { 54.229.68.147, 54.229.203.190, 203.0.113.7 } tcp dport { 443, 4321 } accept
	}
}
";

fn site() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/iot-vlan.yaml");
    let text = std::fs::read_to_string(&path).expect("site");
    let cat = Catalog::embedded().expect("catalog");
    match portolan_model::compile::site_text(&path.display().to_string(), &text, &cat) {
        Ok(l) => l.value,
        Err(d) => panic!("iot-vlan.yaml does not compile: {d:?}"),
    }
}

/// Starts dnsmasq in `ns` on 127.0.0.1:`port` answering `answers` (name → IPv4 address)
/// and nothing else.
fn dnsmasq(res: &mut Resources, ns: &str, port: u16, answers: &[(&str, &str)]) {
    let mut args: Vec<String> = [
        "netns",
        "exec",
        ns,
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--user=root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--port={port}"));
    args.push(format!(
        "--pid-file=/tmp/plv-resolve-{}-{port}.pid",
        std::process::id()
    ));
    for (name, addr) in answers {
        args.push(format!("--address=/{name}/{addr}"));
    }
    let child = Command::new("ip")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq)");
    res.add_child(child);
}

/// `--resolve` through the server at 127.0.0.1:`port` of `ns`, as the CLI does it (the
/// lookups run in a thread inside the namespace); retried while dnsmasq starts.
fn resolve(
    ns: &str,
    port: u16,
    names: &[String],
    wait: bool,
) -> BTreeMap<String, Result<Vec<IpAddr>, String>> {
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        let names = names.to_vec();
        let ns = ns.to_string();
        let got = std::thread::spawn(move || {
            Handle::open(&ns)
                .expect("namespace")
                .enter()
                .expect("setns");
            portolan_net::dns::resolve_all(&names, Some(server), Duration::from_secs(1))
                .expect("resolve")
        })
        .join()
        .expect("resolver thread");
        let all_ok = got.values().all(|r| r.is_ok());
        if all_ok || !wait || started.elapsed() > Duration::from_secs(10) {
            return got
                .into_iter()
                .map(|(n, r)| (n, r.map(|x| x.addresses).map_err(|e| e.to_string())))
                .collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run(policy: &Policy, current: BTreeMap<String, Result<Vec<IpAddr>, String>>) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, RULESET).expect("write");
    let doc = portolan_verify::source::json_of_file(&file).expect("nft loads the ruleset");
    let dnsmasq = portolan_emit::emit(
        portolan_emit::Target::Dnsmasq,
        policy,
        &portolan_emit::Options::default(),
    )
    .expect("dnsmasq");
    let mut dns = DnsFills::from_dnsmasq(&dnsmasq);
    dns.current = current;
    let prog = portolan_verify::program_for_site(&doc, Some(RULESET), policy, &dns).expect("lower");
    verify(policy, &prog, &dns)
}

fn flow<'a>(r: &'a Report, id: &str) -> &'a portolan_verify::site::FlowResult {
    r.flows
        .iter()
        .find(|f| f.flow == id)
        .unwrap_or_else(|| panic!("{id}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn a_name_counts_as_permitted_only_at_the_addresses_it_resolves_to_now() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false),
        "this test runs dnsmasq and nft in scratch namespaces: run it as root"
    );
    let policy = site();
    let mut res = Resources::new();
    let ns = format!("{}-dns", portolan_lab::netns::unique_prefix());
    res.add_netns(&ns).expect("namespace");
    let st = Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(st.success());
    // Port 5353: both names on addresses the ruleset admits. Port 5354: gk.sensorist.net
    // has moved to an address it does not.
    dnsmasq(
        &mut res,
        &ns,
        5353,
        &[
            ("gk.sensorist.com", "203.0.113.7"),
            ("gk.sensorist.net", "54.229.68.147"),
        ],
    );
    dnsmasq(
        &mut res,
        &ns,
        5354,
        &[
            ("gk.sensorist.com", "203.0.113.7"),
            ("gk.sensorist.net", "198.51.100.99"),
        ],
    );
    let names = vec![
        "gk.sensorist.com".to_string(),
        "gk.sensorist.net".to_string(),
    ];

    // Without --resolve: the names may be any address, and only three are admitted.
    let r = run(&policy, BTreeMap::new());
    for id in [
        "oscar-templog-gateway/cloud-443",
        "oscar-templog-gateway/cloud-4321",
    ] {
        assert_eq!(flow(&r, id).status, Status::Partly, "{id}");
        assert!(flow(&r, id).names.is_empty());
    }

    // Both names resolve to admitted addresses: permitted, and the report says how.
    let now = resolve(&ns, 5353, &names, true);
    assert_eq!(
        now["gk.sensorist.com"],
        Ok(vec![ip("203.0.113.7")]),
        "{now:?}"
    );
    let r = run(&policy, now);
    for id in [
        "oscar-templog-gateway/cloud-443",
        "oscar-templog-gateway/cloud-4321",
    ] {
        let f = flow(&r, id);
        assert_eq!(f.status, Status::Permitted, "{id}: {:?}", f.findings);
        let got: Vec<(&str, NameVia, Vec<IpAddr>)> = f
            .names
            .iter()
            .map(|n| (n.name.as_str(), n.via, n.addresses.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "gk.sensorist.com",
                    NameVia::CurrentAddresses,
                    vec![ip("203.0.113.7")]
                ),
                (
                    "gk.sensorist.net",
                    NameVia::CurrentAddresses,
                    vec![ip("54.229.68.147")]
                ),
            ]
        );
        // The deciding rule is the allow list's line (line 8 of RULESET).
        assert!(f.rules.iter().all(|x| x.line == Some(8)), "{:?}", f.rules);
    }

    // gk.sensorist.net now answers 198.51.100.99, which no rule admits.
    let r = run(&policy, resolve(&ns, 5354, &names, true));
    let f = flow(&r, "oscar-templog-gateway/cloud-443");
    assert_eq!(f.status, Status::Partly);
    let net = f
        .names
        .iter()
        .find(|n| n.name == "gk.sensorist.net")
        .expect("gk.sensorist.net checked");
    assert_eq!(net.via, NameVia::Neither);
    assert_eq!(net.addresses, vec![ip("198.51.100.99")]);
    let com = f
        .names
        .iter()
        .find(|n| n.name == "gk.sensorist.com")
        .expect("gk.sensorist.com checked");
    assert_eq!(com.via, NameVia::CurrentAddresses);

    // A server that answers nothing: the names are reported unresolved, not permitted.
    let r = run(&policy, resolve(&ns, 5399, &names[..1], false));
    let f = flow(&r, "oscar-templog-gateway/cloud-443");
    assert_eq!(f.status, Status::Partly);
    assert_eq!(
        f.names.iter().map(|n| n.via).collect::<Vec<_>>(),
        vec![NameVia::Unresolved]
    );
}
