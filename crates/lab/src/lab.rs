//! `portolan lab`: the policy proven on a real kernel.
//!
//! Builds the namespaces of [`crate::topology`], loads the emitted nftables ruleset into the
//! firewall namespace (never anywhere else), starts the lab's DNS ([`crate::dns`]) and the
//! receivers ([`crate::listen`]), sends every probe of [`crate::probes`] from its source
//! address with bounded concurrency and a timeout per attempt, and returns the matrix. All it
//! created is removed when it returns, fails, panics or is interrupted ([`crate::netns`]),
//! unless `keep` asks to leave the namespaces for inspection.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portolan_model::ir::{Policy, Rule};

use crate::attack;
use crate::command::{self, Where};
use crate::dns;
use crate::error::{Error, Result};
use crate::facts::{show_mac, Facts};
use crate::listen::{ListenKind, ListenSpec, Listeners, Seen};
use crate::netns::{self, Handle, Lock, Resources};
use crate::probe::PHASES;
use crate::probes::{self, Fate, Kind, Probe, Traffic};
use crate::report::{Report, Row};
use crate::send::{self, Observed};
use crate::topology::{self, Topology, GENERIC_NAME, NS_IF};
use crate::trace::{self, Tracer};

/// How a lab runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Load this ruleset instead of the one Portolan emits for the site (to prove a ruleset
    /// written or edited by hand against the site's requirements).
    pub ruleset: Option<String>,
    /// How `ruleset` is loaded: `nft -f` (default) or `iptables-restore` (an iptables
    /// ruleset of another generator, proven against the same probes).
    pub loader: Loader,
    /// The firewall resolver's `nftset=` lines instead of `--target dnsmasq`'s (a ruleset
    /// whose name sets live elsewhere, such as OpenWrt's fw4 table).
    pub dnsmasq: Option<String>,
    /// Leave the namespaces (with the ruleset loaded) for inspection.
    pub keep: bool,
    /// Time one attempt may take.
    pub timeout: Duration,
    /// Probes in flight at once.
    pub workers: usize,
    /// Check that each passing required probe was admitted by a rule carrying its
    /// `profile/flow` comment (off for a hand-written ruleset without such comments).
    pub provenance: bool,
    /// What the site file states ([`Facts::from_site`]), for the adversarial probes; `None`:
    /// only what the policy copies from it (zones and addresses: no bindings, params, MACs).
    pub facts: Option<Facts>,
    /// The firewall's resolver: dnsmasq filling shared name sets, or `portolan enforce`.
    pub dns: DnsMode,
}

/// What answers the devices' DNS on the firewall.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DnsMode {
    /// dnsmasq with the emitted `nftset=` lines (name sets shared by every device).
    #[default]
    Dnsmasq,
    /// `portolan enforce`'s forwarder and the enforce policy (per-device sets; see
    /// [`crate::enforce`]).
    Enforce,
}

/// The enforce forwarders of a lab run, stopped when dropped (before the namespaces go).
struct Forwarders(Vec<portolan_enforce::Running>);

impl Drop for Forwarders {
    fn drop(&mut self) {
        for r in self.0.drain(..) {
            r.stop();
        }
    }
}

/// The tool that loads a ruleset into the firewall namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loader {
    /// `nft -f`.
    #[default]
    Nft,
    /// `iptables-restore` (iptables-nft: the rules land in nftables tables all the same).
    IptablesRestore,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ruleset: None,
            loader: Loader::Nft,
            dnsmasq: None,
            keep: false,
            timeout: Duration::from_millis(1000),
            workers: 32,
            provenance: true,
            facts: None,
            dns: DnsMode::Dnsmasq,
        }
    }
}

/// Whether the firewall resolves names for the devices (`services: {dns: firewall}`).
fn dns_on_firewall(policy: &Policy) -> bool {
    policy.rules.iter().any(Rule::is_dns_to_firewall)
}

/// Checks the tools the lab needs before creating anything.
pub(crate) fn preflight(need_dns: bool) -> Result<()> {
    let mut tools = vec![("ip", "iproute2"), ("nft", "nftables")];
    if need_dns {
        tools.push(("dnsmasq", "dnsmasq-base"));
    }
    for (tool, package) in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file());
        if !found {
            return Err(Error::Unsupported(format!(
                "`{tool}` is not installed (Debian package {package})"
            )));
        }
    }
    Ok(())
}

fn ip_n(ns: &str, args: &[&str]) -> Result<()> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    command::ip(&v).map(|_| ())
}

fn sh_in(ns: &str, script: &'static str) -> Result<()> {
    command::run(Where::Netns(ns.to_string()).command("sh", &["-c", script])).map(|_| ())
}

/// Creates the namespaces, links, addresses and routes of `topo`. Reverse-path filtering is
/// off everywhere: a spoofed source must be dropped by the ruleset under test, not by a sysctl
/// the site's firewall may not set.
pub(crate) fn build(topo: &Topology, res: &mut Resources) -> Result<()> {
    let has_v6 = topo.host_space.keys().any(IpAddr::is_ipv6);
    for ns in topo.namespaces() {
        res.add_netns(&ns)?;
        sh_in(
            &ns,
            "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter",
        )?;
        if has_v6 {
            sh_in(&ns, "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")?;
        }
    }
    sh_in(
        &topo.fw,
        "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    )?;
    for s in &topo.spaces {
        ip_n(
            &topo.fw,
            &[
                "link", "add", &s.fw_if, "type", "veth", "peer", "name", NS_IF, "netns", &s.netns,
            ],
        )?;
        ip_n(&topo.fw, &["link", "set", &s.fw_if, "up"])?;
        ip_n(&s.netns, &["link", "set", NS_IF, "up"])?;
        for a in &s.fw_addrs {
            let a = a.to_string();
            let mut args = vec!["addr", "add", a.as_str(), "dev", s.fw_if.as_str()];
            if a.contains(':') {
                args.push("nodad");
            }
            ip_n(&topo.fw, &args)?;
        }
        for a in &s.ns_addrs {
            let a = a.to_string();
            let mut args = vec!["addr", "add", a.as_str(), "dev", NS_IF];
            if a.contains(':') {
                args.push("nodad");
            }
            ip_n(&s.netns, &args)?;
        }
        let fams: BTreeSet<bool> = s.ns_addrs.iter().map(|a| a.addr().is_ipv4()).collect();
        for v4 in fams {
            let like = s
                .ns_addrs
                .iter()
                .map(|a| a.addr())
                .find(|a| a.is_ipv4() == v4);
            if let Some(gw) = like.and_then(|l| s.gateway(l)) {
                let gw = gw.to_string();
                let fam = if v4 { "-4" } else { "-6" };
                command::ip(&[
                    "-n", &s.netns, fam, "route", "add", "default", "via", &gw, "dev", NS_IF,
                ])?;
            }
        }
        for l in topo
            .links
            .iter()
            .filter(|l| topo.spaces[l.space].netns == s.netns)
        {
            let mac = show_mac(&l.mac);
            ip_n(
                &s.netns,
                &[
                    "link", "add", "link", NS_IF, "name", &l.name, "address", &mac, "type",
                    "macvlan", "mode", "bridge",
                ],
            )?;
            ip_n(&s.netns, &["link", "set", &l.name, "up"])?;
        }
        for (host, via) in &s.fw_routes {
            let host = host.to_string();
            let via = via.to_string();
            ip_n(
                &topo.fw,
                &["route", "add", &host, "via", &via, "dev", &s.fw_if],
            )?;
        }
    }
    Ok(())
}

/// The namespace a probe is sent from and the one it is received in.
fn ends<'a>(topo: &'a Topology, p: &Probe) -> Option<(&'a str, &'a str)> {
    let src = match &p.forged {
        Some(f) => topo.spaces.get(f.space)?.netns.as_str(),
        None => topo.space_of(p.src)?.netns.as_str(),
    };
    let dst = if p.to_firewall || p.broadcast {
        topo.fw.as_str()
    } else {
        topo.space_of(p.dst)?.netns.as_str()
    };
    Some((src, dst))
}

fn listen_specs(topo: &Topology, probes: &[Probe]) -> Vec<ListenSpec> {
    let mut set: BTreeSet<ListenSpec> = BTreeSet::new();
    for p in probes.iter().filter(|p| p.skip.is_none()) {
        let Some((_, dst)) = ends(topo, p) else {
            continue;
        };
        let v4 = p.dst.is_ipv4();
        if p.forged.is_some() {
            // Observed where it arrives: a raw socket of its protocol records its token.
            set.insert(ListenSpec {
                netns: dst.to_string(),
                v4,
                addr: None,
                kind: ListenKind::Ip(p.traffic.protocol(v4)),
            });
            continue;
        }
        let kind = match &p.traffic {
            Traffic::Tcp { port: 53 } | Traffic::Udp { port: 53 } if p.to_firewall => continue,
            Traffic::Tcp { port } => ListenKind::Tcp(*port),
            Traffic::Udp { port } => ListenKind::Udp(*port),
            Traffic::Ip { protocol } => ListenKind::Ip(*protocol),
            Traffic::Echo | Traffic::Dns { .. } => continue,
        };
        let addr = match kind {
            ListenKind::Udp(_) if !p.broadcast => Some(p.dst),
            _ => None,
        };
        set.insert(ListenSpec {
            netns: dst.to_string(),
            v4,
            addr,
            kind,
        });
    }
    set.into_iter().collect()
}

/// Sends `probes` with `workers` threads; returns the observations in order.
fn send_all(
    topo: &Topology,
    probes: &[&Probe],
    handles: &BTreeMap<String, Arc<Handle>>,
    opts: &Options,
    seen: &Seen,
) -> Vec<Observed> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Observed>>> = Mutex::new(vec![None; probes.len()]);
    let workers = opts.workers.clamp(1, 128).min(probes.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut here: Option<String> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = probes.get(i) else {
                        break;
                    };
                    let sides =
                        ends(topo, p).and_then(|(src, dst)| handles.get(src).map(|h| (h, dst)));
                    let obs = match sides {
                        None => Observed::Error("no namespace holds the source address".into()),
                        Some((h, dst)) => {
                            let at = send::Arrival {
                                seen,
                                netns: Some(dst),
                            };
                            let entered = if here.as_deref() == Some(h.name()) {
                                Ok(())
                            } else {
                                h.enter().map(|()| here = Some(h.name().to_string()))
                            };
                            match entered {
                                Err(e) => Observed::Error(e.to_string()),
                                Ok(()) => {
                                    let mut o = send::attempt_at(p, opts.timeout, &at);
                                    if p.expected == Fate::Pass && o != Observed::Pass {
                                        o = send::attempt_at(p, opts.timeout, &at);
                                    }
                                    o
                                }
                            }
                        }
                    };
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(obs);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Observed::Error("not sent".into())))
        .collect()
}

/// The packet a passing probe should show in the firewall's trace.
fn trace_key(topo: &Topology, p: &Probe) -> Option<trace::Key> {
    let space = match &p.forged {
        Some(f) => topo.spaces.get(f.space)?,
        None => topo.space_of(p.src)?,
    };
    Some(trace::Key {
        iif: space.fw_if.clone(),
        mac: p.forged.as_ref().and_then(|f| f.mac.clone()),
        src: p.src,
        dst: p.dst,
        protocol: p.traffic.protocol(p.src.is_ipv4() && p.dst.is_ipv4()),
        dport: p.traffic.dport(),
    })
}

/// Every probe for `policy`: the required flows and negatives the IR gives, then the
/// adversarial ones the site's facts give, in phase order.
pub fn probes_for(
    policy: &Policy,
    topo: &Topology,
    facts: &Facts,
    names_provable: bool,
) -> Vec<Probe> {
    let mut probes = probes::generate(policy, topo, names_provable);
    let adversarial = attack::generate(topo, facts, &mut probes);
    probes.extend(adversarial);
    probes.sort_by_key(|p| p.phase);
    probes
}

/// Runs the lab for `policy`. `progress` receives one line per step.
pub fn run(policy: &Policy, opts: &Options, progress: &dyn Fn(&str)) -> Result<Report> {
    let started = Instant::now();
    let names_provable = dns_on_firewall(policy);
    let prefix = netns::unique_prefix();
    let own;
    let facts = match &opts.facts {
        Some(f) => f,
        None => {
            own = Facts::from_policy(policy);
            &own
        }
    };
    let mut topo = topology::plan_with(policy, facts, &prefix)?;
    let mut probes = probes_for(policy, &topo, facts, names_provable);
    let enforce = opts.dns == DnsMode::Enforce;
    if enforce && names_provable {
        let silent = crate::enforce::add_silent_hosts(policy, &mut topo);
        let extra = crate::enforce::silent_probes(&probes, &silent);
        probes.extend(extra);
        crate::enforce::per_device(policy, &topo, &mut probes);
        probes.sort_by_key(|p| p.phase);
    }
    let ruleset = match &opts.ruleset {
        Some(r) => r.clone(),
        None => portolan_emit::nftables::emit(
            policy,
            &portolan_emit::Options {
                enforce,
                ..portolan_emit::Options::default()
            },
        )?,
    };
    let dnsmasq_conf = match &opts.dnsmasq {
        Some(c) => c.clone(),
        None => portolan_emit::dnsmasq::emit(policy, &portolan_emit::Options::default())?,
    };
    preflight(topo.book.resolver.is_some())?;
    netns::install_signal_cleanup()?;
    let _lock = Lock::acquire(&|| progress("waiting for another lab run to finish"))?;

    let mut res = Resources::new();
    let dir = std::env::temp_dir().join(format!("portolan-lab-{prefix}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    res.add_dir(dir.clone());

    progress(&format!(
        "building {} network namespaces ({}-*): firewall + {}",
        topo.spaces.len() + 1,
        prefix,
        topo.spaces
            .iter()
            .map(|s| format!("{} via {}", s.label(), s.fw_if))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    build(&topo, &mut res)?;

    let rules_file = dir.join("ruleset.nft");
    write(&rules_file, &ruleset)?;
    let path = rules_file.display().to_string();
    match opts.loader {
        Loader::Nft => {
            progress("loading the nftables ruleset into the firewall namespace");
            command::run(Where::Netns(topo.fw.clone()).command("nft", &["-f", &path]))?;
        }
        Loader::IptablesRestore => {
            progress("loading the iptables ruleset into the firewall namespace");
            command::run(
                // `-w` takes an optional number: without one it would read the path as
                // the wait and the rules from standard input (nothing, successfully).
                Where::Netns(topo.fw.clone()).command("iptables-restore", &["-w", "10", &path]),
            )?;
        }
    }

    let mut handles: BTreeMap<String, Arc<Handle>> = BTreeMap::new();
    for ns in topo.namespaces() {
        handles.insert(ns.clone(), Arc::new(Handle::open(&ns)?));
    }
    let mut notes: Vec<String> = Vec::new();
    let tracer = if opts.provenance {
        progress("tracing the firewall's rules (nft monitor trace) to see which rule admits each required probe");
        match Tracer::start(&topo.fw, &handles[&topo.fw], &dir, &mut res)? {
            Ok(t) => Some(t),
            Err(why) => {
                notes.push(format!(
                    "which rule admitted each required probe was not checked: {why}"
                ));
                None
            }
        }
    } else {
        None
    };

    let mut forwarders = Forwarders(Vec::new());
    if let Some(resolver) = topo.book.resolver {
        progress("starting dnsmasq: upstream server (outside) and the firewall's resolver");
        let outside = &topo.spaces[topo.outside].netns;
        let up_conf = dir.join("upstream.conf");
        let up_log = dir.join("upstream.log");
        write(&up_conf, &dns::upstream_conf(&topo, resolver))?;
        let mut up = dns::start(outside, &up_conf, &up_log)?;
        let ready = dns::wait_ready(
            &handles[outside],
            resolver,
            GENERIC_NAME,
            resolver,
            &mut up,
            &up_log,
        );
        res.add_child(up);
        ready?;
        if enforce {
            progress("starting portolan enforce as the firewall's resolver");
            forwarders = start_forwarders(policy, &topo, resolver, &dir)?;
            for a in dns_listen_addrs(&topo) {
                let ready = dns::wait_ready_at(
                    &handles[&topo.fw],
                    a,
                    GENERIC_NAME,
                    resolver,
                    Duration::from_secs(8),
                );
                if !ready {
                    return Err(Error::Command {
                        command: "portolan enforce".into(),
                        detail: format!("did not answer {GENERIC_NAME} on {a} within 8 s"),
                    });
                }
            }
        } else {
            let fw_conf = dir.join("firewall-dnsmasq.conf");
            let fw_log = dir.join("firewall-dnsmasq.log");
            write(
                &fw_conf,
                &dns::firewall_conf(&topo, resolver, &dnsmasq_conf),
            )?;
            let mut fw = dns::start(&topo.fw, &fw_conf, &fw_log)?;
            let fw_addr = topo
                .spaces
                .iter()
                .flat_map(|s| s.fw_addrs.iter().map(|a| a.addr()))
                .find(|a| a.is_ipv4() == resolver.is_ipv4());
            let ready = match fw_addr {
                Some(a) => dns::wait_ready(
                    &handles[&topo.fw],
                    a,
                    GENERIC_NAME,
                    resolver,
                    &mut fw,
                    &fw_log,
                ),
                None => Ok(()),
            };
            res.add_child(fw);
            ready?;
        }
    }

    let specs = listen_specs(&topo, &probes);
    progress(&format!("starting {} listeners", specs.len()));
    let listeners = Listeners::start(&specs, &handles)?;

    let mut observed: Vec<Option<Observed>> = vec![None; probes.len()];
    for (i, p) in probes.iter().enumerate() {
        if let Some(why) = &p.skip {
            observed[i] = Some(Observed::Skip(why.clone()));
        }
    }
    let last = PHASES.len() - 1;
    for phase in 1..=last as u8 {
        let idx: Vec<usize> = (0..probes.len())
            .filter(|i| probes[*i].phase == phase && probes[*i].skip.is_none())
            .collect();
        if idx.is_empty() {
            progress(&format!(
                "phase {phase}/{last} ({}): no probes",
                PHASES[usize::from(phase)]
            ));
            continue;
        }
        let t = Instant::now();
        let batch: Vec<&Probe> = idx.iter().map(|i| &probes[*i]).collect();
        let obs = send_all(&topo, &batch, &handles, opts, &listeners.seen);
        let bad = batch
            .iter()
            .zip(&obs)
            .filter(|(p, o)| !Row::new(p, (*o).clone()).ok)
            .count();
        for (i, o) in idx.into_iter().zip(obs) {
            observed[i] = Some(o);
        }
        progress(&format!(
            "phase {phase}/{last} ({}): {} probes, {} mismatched, {:.1} s",
            PHASES[usize::from(phase)],
            batch.len(),
            bad,
            t.elapsed().as_secs_f64()
        ));
    }
    listeners.stop();
    let commit_errors: u64 = forwarders
        .0
        .iter()
        .map(|r| {
            r.stats()
                .commit_errors
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    drop(forwarders);
    if commit_errors > 0 {
        notes.push(format!(
            "portolan enforce failed {commit_errors} commit(s) (answered SERVFAIL): see its log"
        ));
    }
    if enforce {
        notes.push("DNS: portolan enforce (per-device name sets); unresolved-device probes send each name-based flow from another device of the group that never asked".into());
    }

    let mut rows: Vec<Row> = probes
        .iter()
        .zip(observed)
        .map(|(p, o)| Row::new(p, o.unwrap_or(Observed::Error("not sent".into()))))
        .collect();
    if let Some(t) = &tracer {
        let events = t.events();
        let listing =
            portolan_nft::table::list_table(&Where::Netns(topo.fw.clone()))?.unwrap_or_default();
        let alike = trace::alike(&listing);
        let mut unseen: Vec<String> = Vec::new();
        for (p, row) in probes.iter().zip(rows.iter_mut()) {
            let required = matches!(p.kind, Kind::Required | Kind::Dns);
            if !required || row.observed != Observed::Pass {
                continue;
            }
            let Some(k) = trace_key(&topo, p) else {
                continue;
            };
            // Every traced packet of the probe: what admitted each (its rule's comment and
            // those of the rules written alike). The first that names another flow only is
            // the finding; else the probe's own.
            let admitted: Vec<Vec<String>> = events
                .iter()
                .filter(|e| e.matches(&k))
                .filter_map(|e| {
                    let by = e.accepted_by.clone()?;
                    let mut v = vec![by];
                    if let Some(r) = &e.rule {
                        for c in alike.get(r).into_iter().flatten() {
                            if !v.contains(c) {
                                v.push(c.clone());
                            }
                        }
                    }
                    Some(v)
                })
                .collect();
            let pick = admitted
                .iter()
                .find(|v| !v.iter().any(|c| trace::names(c, &p.flow)))
                .or_else(|| admitted.first());
            match pick {
                Some(v) => row.admitted(v),
                None => unseen.push(format!(
                    "{} {} {} {} -> {}",
                    p.device,
                    p.flow,
                    p.traffic.describe(),
                    p.src,
                    p.dst
                )),
            }
        }
        if !unseen.is_empty() {
            notes.push(format!(
                "which rule admitted {} passing required probe(s) is not known: only the first packet of a connection is traced, and these belonged to a connection an earlier probe had opened (connection tracking admitted them): {}",
                unseen.len(),
                unseen.join("; ")
            ));
        }
    }
    let order = |g: &str| {
        policy
            .groups
            .iter()
            .position(|x| x.id == g)
            .unwrap_or(usize::MAX)
    };
    rows.sort_by_key(|r| (order(&r.device), r.kind));
    let mut report = Report::new(&policy.site, rows, 0.0);
    report.namespaces = topo.namespaces();
    report.notes.extend(notes);
    if !names_provable
        && policy
            .rules
            .iter()
            .any(|r| !r.peers.names.is_empty() || !r.peers.wildcards.is_empty())
    {
        report.notes.push("name-based flows were not sent: the site's DNS is not on the firewall, so nothing fills the name sets at run time".into());
    }
    if opts.keep {
        let kept = res.keep_namespaces();
        report.kept = true;
        report.notes.push(format!(
            "namespaces kept (ruleset loaded, dnsmasq and listeners stopped); remove them with: {}",
            kept.iter()
                .map(|n| format!("ip netns del {n}"))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    } else {
        let problems = res.release();
        report.notes.extend(problems);
    }
    report.summary.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(report)
}

/// The firewall's addresses the devices' DNS goes to: one per link and family.
fn dns_listen_addrs(topo: &Topology) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = Vec::new();
    for s in &topo.spaces {
        for a in &s.fw_addrs {
            if !v.contains(&a.addr()) {
                v.push(a.addr());
            }
        }
    }
    v
}

/// One enforce forwarder per firewall address (as dnsmasq's `listen-address=` lines), each
/// forwarding to the lab's upstream; events go to `enforce.log` in the lab's folder.
fn start_forwarders(
    policy: &Policy,
    topo: &Topology,
    resolver: IpAddr,
    dir: &std::path::Path,
) -> Result<Forwarders> {
    let scopes = portolan_enforce::scopes(policy).map_err(|e| Error::Plan(e.to_string()))?;
    let log = std::fs::File::create(dir.join("enforce.log"))
        .map_err(|e| Error::io("cannot create enforce.log", e))?;
    let log = Arc::new(Mutex::new(log));
    let mut out = Forwarders(Vec::new());
    for a in dns_listen_addrs(topo) {
        let log = log.clone();
        let running = portolan_enforce::start(
            scopes.clone(),
            portolan_enforce::Config {
                listen: std::net::SocketAddr::new(a, 53),
                upstream: std::net::SocketAddr::new(resolver, 53),
                netns: Some(topo.fw.clone()),
                timing: portolan_enforce::Timing::default(),
                upstream_timeout: Duration::from_secs(2),
            },
            Arc::new(move |v| {
                use std::io::Write as _;
                let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "{v}");
            }),
        )
        .map_err(|e| Error::Command {
            command: format!("portolan enforce on {a}"),
            detail: e.to_string(),
        })?;
        out.0.push(running);
    }
    Ok(out)
}

pub(crate) fn write(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
