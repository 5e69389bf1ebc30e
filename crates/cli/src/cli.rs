//! The command line, as clap types. These stay in the binary; commands convert them into
//! library types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn connected-device network requirements into enforced, verified network policy.
///
/// A profile (YAML) states, row by row and with citations, the flows a device type needs, as
/// its vendor documents them. The shipped catalog holds one profile per supported device;
/// `portolan catalog list` shows them.
///
/// Exit codes: 0 ok, 1 findings, 2 bad input or usage.
#[derive(Debug, Parser)]
#[command(name = "portolan", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Add the profiles of a folder (or one file) to the shipped catalog.
    #[arg(long, global = true, value_name = "DIR")]
    pub catalog: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or inspect the catalog of device profiles.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Show a profile's flows as a table (or JSON).
    ///
    /// Example: portolan show thingpark-lrr --mode ipsec
    Show(ShowArgs),
    /// Render a profile as vendor-style documentation (Markdown).
    ///
    /// One table per mode with the columns #, From, Type, Protocol, Dest. port, To,
    /// Description, followed by tunnelled flows, notes and sources.
    ///
    /// Example: portolan doc thingpark-lrr --mode ipsec --format markdown
    Doc(DocArgs),
    /// Check profile and site files; report every problem with file:line:column and a code.
    ///
    /// A site (a file with a top-level `site:` key) is also compiled against its profiles, so
    /// unbound roles, missing params and unspecified ports show up here.
    ///
    /// Exit 0 when every file is valid (warnings allowed), 2 when any has an error.
    Validate(ValidateArgs),
    /// Compile a site into firewall policy.
    ///
    /// Reads the site (zones, services, devices bound to profiles), checks it against every
    /// profile, and writes the policy for one target. Every emitted rule carries a comment
    /// `profile/flow` naming the vendor row it enforces.
    ///
    /// Example: portolan compile examples/site.yaml --target nftables -o portolan.nft
    Compile(CompileArgs),
    /// Diagnose, from the device's network, whether everything the device needs works.
    ///
    /// Stages: address (source address, default route, name servers), names (every host,
    /// through the site's resolver, else the device's: answers, TTLs, NXDOMAIN / SERVFAIL /
    /// timeout), reach (every flow: TCP open / refused / rejected / filtered / unreachable, UDP
    /// with a request the service answers — DTLS 1.2 ClientHello for DTLS and CoAPs —, ICMP
    /// echo; an ICMP error from a device on the path, or a reset whose TTL differs from the
    /// target's SYN-ACK, is that device rejecting the flow, with the confidence stated;
    /// alternative groups judged per host; volatile addresses as context), integrity (TLS
    /// issuer against the profile's expectation, and across flows to the same host) and, with
    /// --nat-timeout, keepalive (idle timeouts of the path, measured against `portolan
    /// responder`). Each failure comes with its remedy, naming exactly the (host, port) pairs.
    ///
    /// Exit 0 when every required flow works, 1 when one does not, 2 on bad input.
    ///
    /// Example: portolan probe examples/site.yaml --device oscar-gateways
    Probe(Box<ProbeArgs>),
    /// The far-side helper for `probe --nat-timeout` and UDP end-to-end checks.
    ///
    /// Binds only the given addresses (UDP and TCP on each) and answers only requests carrying
    /// the shared token; never more bytes than it received, at most one late answer per
    /// request.
    ///
    /// Example: portolan responder --listen 198.51.100.7:40000 --token "$TOKEN"
    Responder(ResponderArgs),
    /// Import, export and verify MUD files (RFC 8520 Manufacturer Usage Descriptions).
    ///
    /// Example: portolan mud export thingpark-lrr --mode ipsec --mud-url https://example.com/lrr.json
    #[command(subcommand)]
    Mud(crate::cmd::mud::MudCmd),
    /// Print the JSON Schema of a file format, for editors.
    ///
    /// Example: portolan schema profile > profile.schema.json
    Schema(SchemaArgs),
    /// Prove the site's policy on this machine's kernel, in network namespaces.
    ///
    /// Builds a namespace per zone (the devices' addresses, the peers inside the zone), the
    /// firewall in the middle (one link per zone, named as the zone's interface) and the
    /// outside (the other peers and a DNS server answering the site's names); loads the emitted
    /// nftables ruleset into the firewall namespace only; sends every required flow (must pass)
    /// and flows the profiles do not allow (must be dropped). Needs root; removes everything it
    /// created, also on failure or Ctrl-C.
    ///
    /// Exit 0 when every probe behaved as the policy says, 1 on any mismatch, 2 on bad input.
    ///
    /// Example: portolan lab examples/site.yaml
    Lab(crate::cmd::lab::LabArgs),
    /// Load the site's nftables policy atomically, with automatic rollback unless confirmed.
    ///
    /// One `nft -f` transaction; the previous `inet portolan` table is saved in the state
    /// folder first. With --confirm, the previous table comes back after that long unless
    /// `portolan apply --confirmed` arrives in time (like `commit confirmed`); the exact
    /// confirm command, with --state-dir and --netns, is printed. --diff (or --dry-run) shows
    /// what loading would change, rules by their profile/flow, and loads nothing. A site
    /// without devices is not loaded.
    ///
    /// Example: portolan apply examples/site.yaml --diff; portolan apply examples/site.yaml
    /// --confirm 60 (then the printed `portolan apply --confirmed ...`)
    Apply(crate::cmd::apply::ApplyArgs),
    /// Audit observed traffic (captures, flow logs) against the site's policy.
    ///
    /// Every flow of a site device is conforming (with the profile/flow that admits it), a
    /// violation (unexpected peer, port, protocol or initiation), or of an unknown device. DNS
    /// answers in the input name peers within their TTLs, so hostname and wildcard peers match
    /// as the firewall's DNS-driven sets would. Per device group: the required flows never seen.
    /// Reads pcap and pcapng (Ethernet, 802.1Q, Linux SLL/SLL2, raw IP), Zeek conn.log and
    /// dns.log (TSV or JSON), conntrack -L/-E output and the emitted ruleset's log lines, gzip or
    /// not, in one streaming pass.
    ///
    /// Exit 0 when every flow conforms, 1 on any violation, 2 on bad input (a truncated last
    /// record is only a warning; a corrupt one is an error, reported with its byte offset after
    /// auditing everything before it).
    ///
    /// Example: portolan audit examples/site.yaml capture.pcap.gz --firewall 10.20.0.1
    Audit(crate::cmd::audit::AuditArgs),
    /// Draft a profile from one device's observed traffic.
    ///
    /// Peers by the DNS name the traffic resolved them by (else by address), the site's DNS,
    /// NTP and DHCP services, protocols, ports, who initiated and the ports the device served.
    /// The draft validates and, bound in a site, audits the same traffic clean; review it
    /// against the vendor's documentation before use.
    ///
    /// Example: portolan learn capture.pcap --device 10.20.0.10 -o device.yaml
    Learn(crate::cmd::learn::LearnArgs),
    /// What an existing nftables ruleset really permits, against the site's profiles.
    ///
    /// Static and exact: every device group's flows are evaluated as classes of packets
    /// through the ruleset's hooks and chains; each is permitted, partly (which packets are
    /// not), blocked or depends (on a DNS-filled set's elements or on an expression outside
    /// the supported subset), with the rule that decides it and its line. Then the excess:
    /// the widest classes the ruleset accepts to or from the devices beyond their profiles,
    /// each with the rule that admits it.
    ///
    /// Exit 0 when every required flow is permitted and nothing else, 1 otherwise, 2 on bad
    /// input.
    ///
    /// Example: portolan verify examples/site.yaml --ruleset /etc/nftables.conf
    Verify(crate::cmd::verify::VerifyArgs),
    /// The rollback timer that `apply --confirm` starts (internal).
    #[command(hide = true)]
    ApplyRollback(crate::cmd::apply::RollbackArgs),
}

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List the profiles: id, vendor, product, modes, number of flows.
    List(ListArgs),
    /// Same as `portolan show`.
    Show(ShowArgs),
    /// Same as `portolan doc`.
    Doc(DocArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people.
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Profile id (see `portolan catalog list`) or a profile file.
    pub id: String,
    /// Only the flows of this mode.
    #[arg(long)]
    pub mode: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// Profile id (see `portolan catalog list`) or a profile file.
    pub id: String,
    /// Only this mode.
    #[arg(long)]
    pub mode: Option<String>,
    #[arg(long, value_enum, default_value_t = DocFormat::Markdown)]
    pub format: DocFormat,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Profile or site files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// An `nft -f` ruleset: table `inet portolan`.
    Nftables,
    /// `iptables-restore` rules followed by the `ipset restore` sets they use.
    Iptables,
    /// dnsmasq `nftset=` lines that fill the nftables name sets from DNS answers.
    Dnsmasq,
    /// The compiled policy IR as JSON (for scripts and other tools).
    Ir,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The site file.
    pub site: PathBuf,
    #[arg(long, short, value_enum, default_value_t = TargetArg::Nftables)]
    pub target: TargetArg,
    /// Write to FILE instead of standard output (written whole, or not at all).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print diagnostics as JSON on standard error.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Resolve every hostname now and fill the name sets with the answers, each element
    /// timing out with its record's TTL; names that fail are left to DNS-driven filling.
    #[arg(long)]
    pub resolve: bool,
    /// The DNS server for --resolve (ADDR or ADDR:PORT); default: /etc/resolv.conf.
    #[arg(long, value_name = "ADDR", requires = "resolve")]
    pub resolver: Option<String>,
    /// How long an address the DNS server adds to a name set at run time stays allowed,
    /// in seconds (the DNS server gives no per-record timeout). Default 3600.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub dns_timeout: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The profile format (`portolan: 1`).
    Profile,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The site file (with --device); omit it to give --profile and --mode instead.
    pub site: Option<PathBuf>,
    /// The device (or device group) of the site to probe for.
    #[arg(long, short)]
    pub device: Option<String>,
    /// Probe for a profile without a site: catalog id or profile file.
    #[arg(long, conflicts_with = "device")]
    pub profile: Option<String>,
    /// The profile's mode (with --profile).
    #[arg(long, requires = "profile")]
    pub mode: Option<String>,
    /// Bind an endpoint of the profile: ENDPOINT=ADDR|PREFIX|HOST[,...] (with --profile).
    #[arg(long = "bind", value_name = "ENDPOINT=PEERS", requires = "profile")]
    pub binds: Vec<String>,
    /// Set a param of the profile: KEY=VALUE (with --profile).
    #[arg(long = "param", value_name = "KEY=VALUE", requires = "profile")]
    pub params: Vec<String>,
    /// Enable a feature of the profile (with --profile).
    #[arg(long = "feature", value_name = "ID", requires = "profile")]
    pub features: Vec<String>,
    /// Send from this address (it must be one of this machine's).
    #[arg(long, value_name = "ADDR")]
    pub source: Option<String>,
    /// Run inside this network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// The device's resolver (ADDR or ADDR:PORT); default: the site's (`services: {dns:
    /// [ADDR]}`), else resolv.conf's first name server (a warning says when the two differ).
    #[arg(long, value_name = "ADDR")]
    pub resolver: Option<String>,
    /// Probe the addresses a profile marks `addresses_volatile` as required. By default they
    /// are context: reported, answering or not, without failing a flow that works by name.
    #[arg(long)]
    pub strict_volatile: bool,
    /// A second resolver to compare answers and TTLs with (its TTLs are the reference).
    #[arg(long, value_name = "ADDR")]
    pub compare_resolver: Option<String>,
    /// Per-attempt timeout, in milliseconds (at least 1).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Attempts per UDP request.
    #[arg(long, default_value_t = 2)]
    pub attempts: u32,
    /// Probes in flight at once (at least 1).
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub concurrency: usize,
    /// Queries per name for the TTL check, one second apart (1: no re-query).
    #[arg(long, default_value_t = 2)]
    pub ttl_queries: u32,
    /// Also try a real DHCP exchange (needs root): broadcast a DHCPDISCOVER on the device
    /// network's interface and report the offer (address, server, router, DNS servers, lease),
    /// or its absence. Waits --timeout per attempt, at least 4 s.
    #[arg(long)]
    pub dhcp: bool,
    /// The interface facing the device's network, for --dhcp (default: the default route's,
    /// else the only one up).
    #[arg(long, value_name = "NAME", requires = "dhcp")]
    pub interface: Option<String>,
    /// Measure the path's idle timeouts (UDP and TCP) against `portolan responder` at ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT", requires = "token")]
    pub nat_timeout: Option<String>,
    /// The longest idle time tried by --nat-timeout, in seconds (default: the longest
    /// keepalive of the device's flows plus 60, at least 120).
    #[arg(long, value_name = "SECS")]
    pub nat_max: Option<u64>,
    /// How many idle times --nat-timeout tries (evenly spaced up to --nat-max).
    #[arg(long, default_value_t = 10)]
    pub nat_steps: u32,
    /// The token shared with `portolan responder`.
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ResponderArgs {
    /// Address and port to answer on, UDP and TCP (repeat for several).
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    pub listen: Vec<String>,
    /// The token shared with the probe (at least 8 characters).
    #[arg(long)]
    pub token: String,
    /// The longest hold granted, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub max_hold: u64,
    /// Run inside this network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
}
