//! The command line, as clap types, all of them here: the subcommands, their arguments, and the
//! two argument groups every command shares (`--format`: [`OutputArgs`], `-o`: [`OutputFile`]).
//! These stay in the binary; commands (`cmd/*.rs`) convert them into library types.
//! (Over 800 lines because the whole command line is kept in this one file, by design.)

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    #[command(subcommand)]
    pub command: Command,
}

/// `--catalog`, flattened into the commands that read profiles by catalog id, and only those
/// (issue 19: options only where they act), so that clap refuses it elsewhere and the other
/// commands' `--help` does not offer it.
#[derive(Debug, Default, Args)]
pub struct CatalogArgs {
    /// Add the profiles of a folder (or one file) to the shipped catalog (repeatable).
    #[arg(long, value_name = "DIR")]
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
    Mud(MudCmd),
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
    /// With --dns enforce the firewall's resolver is `portolan enforce` and the ruleset its
    /// policy: each name-based flow must pass from the devices that resolved the name, and is
    /// sent again from a device of the same group that did not (expected dropped).
    ///
    /// Example: portolan lab examples/site.yaml; portolan lab examples/site.yaml --dns enforce
    Lab(LabArgs),
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
    Apply(ApplyArgs),
    /// Run the DNS forwarder that opens each device's names for that device only.
    ///
    /// Devices send DNS to the firewall (--listen); every query is passed to the site's
    /// resolver (--upstream). For an answer to a name a flow of the asking device's profile
    /// states (a hostname exactly; `*.example.com`: every name below, not the apex), the
    /// final A/AAAA records of its CNAME chain are added as `device . peer` to that flow's set
    /// for the answer's smallest TTL plus --grace (between --floor and --cap), and the answer
    /// is released only once the kernel has committed them: the device's first packet passes,
    /// and no other device gains anything. Other names are answered and open nothing. Load
    /// the policy first with `portolan apply SITE --enforce` (or `compile --enforce`), which
    /// also drops (or, with --dns-bypass redirect, redirects here) devices' DNS to any other
    /// resolver, and drops DNS over TLS (853) and the known DoH endpoints. An element whose
    /// flow is still live in conntrack is kept past its TTL. Names outside the device's flows
    /// are answered and open nothing, or refused (--unlisted). Runs in the foreground, one log
    /// line per event on standard output (--log-format text|json), until SIGINT or SIGTERM;
    /// --metrics serves Prometheus metrics. --status lists the live elements instead.
    ///
    /// Example: portolan enforce examples/site.yaml --listen 10.20.0.1:53 --upstream 192.0.2.53;
    /// portolan enforce examples/site.yaml --status
    Enforce(EnforceArgs),
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
    Audit(AuditArgs),
    /// Draft a profile from one device's observed traffic.
    ///
    /// Peers by the DNS name the traffic resolved them by (else by address), the site's DNS,
    /// NTP and DHCP services, protocols, ports, who initiated and the ports the device served.
    /// The draft validates and, bound in a site, audits the same traffic clean; review it
    /// against the vendor's documentation before use.
    ///
    /// Example: portolan learn capture.pcap --device 10.20.0.10 -o device.yaml
    Learn(LearnArgs),
    /// Scan what a device really exposes, against its profile's `listens`.
    ///
    /// Every TCP port by a SYN scan over a raw socket (a `connect()` scan where raw sockets
    /// are not permitted), the UDP ports the profile and the common IoT services name with
    /// their applications' requests (DNS, NTP, SNMP get, CoAP ping, DTLS ClientHello,
    /// IKE_SA_INIT, SSDP, mDNS: the same as `probe` sends), and an ICMP echo. Each port is
    /// open, closed, filtered or open|filtered (nmap's words) with how it was decided. Timing
    /// follows the measured round trips with one retransmission, under a global rate cap, in
    /// random port order; a target limiting its resets or ICMP errors is waited out, not
    /// called filtered. Findings: a port open that `listens` does not declare (exit 1), a
    /// declared port that is not open (warning), `listens: none` proven or refuted. With
    /// --from, the scan runs through the site's firewall in the lab's namespaces (the policy
    /// loaded in a real kernel, the device answering every port): a port reached from a zone
    /// no flow admits is a finding. Needs root for raw sockets and namespaces.
    ///
    /// Exit 0 when the device exposes only what its profile declares, 1 on a finding, 2 on
    /// bad input.
    ///
    /// Example: portolan scan examples/site.yaml --device wcc-lite --netns lan
    Scan(ScanArgs),

    /// What an existing nftables or iptables ruleset really permits, against the site's
    /// profiles.
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
    ///          portolan verify examples/site.yaml --live --firewall iptables
    Verify(RulesetVerifyArgs),
    /// Weak crypto, plaintext and unauthenticated exposure, keepalives against timeouts,
    /// breadth and site hygiene, each finding with the standard and section that says so.
    ///
    /// A profile (catalog id or file) is linted flow by flow: IPsec proposal options against
    /// RFC 8247 and RFC 8221, IKEv1 (RFC 9395), protocols without encryption, services the
    /// profile marks unauthenticated, wildcards over cloud namespaces, any-address peers. A
    /// site (a file with `site:`) is linted for what applies to each device: the proposals it
    /// configures, from which zones each peer-initiated flow is reachable, keepalives against
    /// the firewall's conntrack timeouts (--conntrack-from-kernel, or `conntrack:` in the
    /// configuration) and a NAT's (`nat:`), overlapping zone networks. The configuration
    /// (--config) can accept a finding for a flow with a reason.
    ///
    /// Exit 0 when no finding reaches --deny, 1 when one does, 2 on bad input.
    ///
    /// Example: portolan lint examples/site.yaml --config lint.yaml --format sarif
    Lint(LintArgs),
    /// One self-contained HTML page of a site: the site drawn (zones, firewall, device groups,
    /// peers, an arrow per flow), per device group every flow with its provenance
    /// (profile/flow), the vendor's citation, the nftables rules that enforce it as emitted,
    /// alternatives and conditions; and, when given, the JSON results of lab, probe, audit,
    /// verify and lint on each flow (green: shown to hold, red: shown not to, grey: neither).
    /// Filter by device, peer or port; a stable anchor per flow (#flow-GROUP/FLOW); printable.
    /// Nothing in the page is fetched from a network.
    ///
    /// Exit 0 when no result given shows a flow red, 1 when one does, 2 on bad input.
    ///
    /// Example: portolan report examples/site.yaml --lab lab.json --verify verify.json -o report.html
    Report(ReportArgs),
    /// Start a profile or a site: a file that validates as written, with TODOs to fill in.
    ///
    /// Example: portolan init site --profile oscar-templog-gateway -o site.yaml
    #[command(subcommand)]
    Init(crate::cmd::init::InitCmd),
    /// Which flow and rule of a site's policy admit or drop one packet, and why.
    ///
    /// The packet is `PROTO SRC[:PORT] -> DST[:PORT]` (or the flags). Exit 0 when the policy
    /// admits it, 1 when it drops it, 2 on bad input.
    ///
    /// Example: portolan explain examples/site.yaml 'tcp 10.20.0.32:40000 -> 54.229.203.190:443'
    Explain(crate::cmd::explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: source <(portolan completions bash)
    Completions(crate::cmd::completions::CompletionsArgs),
    /// Print the manual page (roff), or write one per subcommand with --dir.
    ///
    /// Example: portolan man | man -l -
    Man(crate::cmd::completions::ManArgs),
    /// The rollback timer that `apply --confirm` starts (internal).
    #[command(hide = true)]
    ApplyRollback(RollbackArgs),
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
    /// A table (or text) for people.
    Table,
    /// One `portolan/<kind>/v1` document for scripts (`portolan schema KIND` describes it).
    Json,
}

/// `--format`, flattened into every command that prints a report. A command whose JSON means
/// something more specific says so with `mut_arg("format", ...)` on its own struct.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// How to print the result: a table for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl OutputArgs {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// `-o FILE`, flattened into every command that writes a file; written by
/// [`crate::write::to_output`].
#[derive(Debug, Args)]
pub struct OutputFile {
    /// Write to FILE instead of standard output (written whole, or not at all).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl Command {
    /// Whether the command line asked for JSON, so that even an error a command could not
    /// turn into its report reaches a script as JSON on stdout.
    pub fn json(&self) -> bool {
        match self {
            Command::Catalog(CatalogCmd::List(a)) => a.out.json(),
            Command::Catalog(CatalogCmd::Show(a)) | Command::Show(a) => a.out.json(),
            Command::Catalog(CatalogCmd::Doc(a)) | Command::Doc(a) => a.format == DocFormat::Json,
            Command::Validate(a) => a.out.json(),
            Command::Compile(a) => a.out.json(),
            Command::Probe(a) => a.out.json(),
            Command::Mud(MudCmd::Export(a)) => a.out.json(),
            Command::Mud(MudCmd::Import(a)) => a.out.json(),
            Command::Mud(MudCmd::Verify(a)) => a.out.json(),
            Command::Lab(a) => a.out.json(),
            Command::Apply(a) => a.out.json(),
            Command::Enforce(a) => a.out.json(),
            Command::Audit(a) => a.out.json(),
            Command::Verify(a) => a.out.json(),
            Command::Lint(a) => a.format != LintFormat::Table,
            Command::Scan(a) => a.out.json(),
            Command::Report(a) => a.out.json(),
            Command::Explain(a) => a.out.json(),
            Command::Learn(a) => a.out.json(),
            Command::Schema(_)
            | Command::Init(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Responder(_)
            | Command::ApplyRollback(_) => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    /// Vendor-style Markdown tables, one per mode (`table` is the same).
    #[value(alias = "table")]
    Markdown,
    /// `portolan/doc/v1`: the profile and its flows, for scripts.
    Json,
    /// One self-contained page with `portolan report`'s templates (style, flow table,
    /// filter): the vendor's rows with their citations, per mode.
    Html,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Profile id (see `portolan catalog list`), a profile file, or a site file (with
    /// --device).
    pub id: String,
    /// Only the flows of this mode.
    #[arg(long)]
    pub mode: Option<String>,
    /// With a site file: the device whose flows to show, each marked with how the site's
    /// policy carries it (direct, or via the site's proxy and its address:port).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// Profile id (see `portolan catalog list`) or a profile file.
    pub id: String,
    /// Only this mode.
    #[arg(long)]
    pub mode: Option<String>,
    /// How to print the profile.
    #[arg(long, value_enum, default_value_t = DocFormat::Markdown)]
    pub format: DocFormat,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

/// How `lint` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// Findings for people, one block each.
    Table,
    /// `portolan/lint/v1`, for scripts.
    Json,
    /// SARIF 2.1.0, for code-review tools.
    Sarif,
}

/// The least level of a finding that makes `lint` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DenyLevel {
    Note,
    Warning,
    Error,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Profiles (catalog ids or files) and sites.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// The lint configuration: management zones, conntrack and NAT timeouts, the IPsec
    /// proposals devices use, accepted findings (docs/lint.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check keepalives against this machine's conntrack timeouts
    /// (/proc/sys/net/netfilter, of the current network namespace): run it on the firewall.
    #[arg(long)]
    pub conntrack_from_kernel: bool,
    /// Exit 1 when a finding is at this level or above.
    #[arg(long, value_enum, default_value_t = DenyLevel::Warning)]
    pub deny: DenyLevel,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = LintFormat::Table)]
    pub format: LintFormat,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Profile or site files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// An `nft -f` ruleset: table `inet portolan`.
    Nftables,
    /// `iptables-restore` rules followed by the `ipset restore` sets they use.
    Iptables,
    /// dnsmasq `nftset=` lines that fill the nftables name sets from DNS answers.
    Dnsmasq,
    /// An Aerleon policy set (definitions and one policy per platform; `-o DIR` writes the
    /// files, standard output gets them one after another). Names need --resolve except on
    /// srx.
    Aerleon,
    /// A squid.conf fragment: the allow-list of the HTTP proxy the devices go through
    /// (CONNECT per flow, names by dstdomain, TLS peeked at and spliced, 403 otherwise).
    Squid,
    /// OpenWrt (fw4): an include for fw4's `inet fw4` table (etc/nftables.d/50-portolan.nft)
    /// and the /etc/config/dhcp `ipset` sections that fill its name sets (`-o DIR` writes
    /// both files; standard output gets them one after another).
    Openwrt,
    /// The compiled policy IR as JSON (for scripts and other tools).
    Ir,
}

#[derive(Debug, Args)]
#[command(mut_arg("format", |a| a.help(
    "`json`: a report on standard output (target, the text or the files written, the --check result) instead of the text"
)))]
pub struct CompileArgs {
    /// The site file.
    pub site: PathBuf,
    #[arg(long, short, value_enum, default_value_t = TargetArg::Nftables)]
    pub target: TargetArg,
    #[command(flatten)]
    pub file: OutputFile,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Resolve every hostname now and fill the name sets with the answers, each element
    /// timing out with its record's TTL; names that fail are left to DNS-driven filling.
    #[arg(long)]
    pub resolve: bool,
    /// The DNS server for --resolve (ADDR or ADDR:PORT); default: /etc/resolv.conf.
    #[arg(long, value_name = "ADDR", requires = "resolve")]
    pub resolver: Option<String>,
    /// How long an address the DNS server adds to a name set at run time stays allowed
    /// (`3600`, `90s`, `30m`, `1h`; whole seconds, at most 7 days: the DNS server gives no
    /// per-record timeout). Default 1h.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::seconds)]
    pub dns_timeout: Option<Duration>,
    /// --target aerleon: the Aerleon platforms to write policies for (comma-separated:
    /// juniper, srx, cisco, ciscoasa, cisconx, ciscoxr, arista, paloalto, packetfilter,
    /// nftables, iptables, speedway). Default: all of them.
    #[arg(long, value_name = "PLATFORM", value_delimiter = ',', value_parser = parse_aerleon_platform)]
    pub aerleon_platform: Vec<portolan_emit::aerleon::Platform>,
    /// Translation validation: read the emitted ruleset back (nftables: as the kernel lists
    /// it, loaded in a scratch namespace, needs root; iptables: as iptables-save text) and
    /// verify it against the site with `portolan verify`'s evaluator. A flow of the site not
    /// exactly permitted, or anything permitted beyond the profiles, is a compile error
    /// (exit 1, nothing written). --target nftables or iptables.
    #[arg(long)]
    pub check: bool,
    /// Raise the conntrack timeout of each flow whose keepalive or idle timeout
    /// (`idle_timeout:`) outlasts the firewall's (what `portolan lint` reports as
    /// keepalive-over-conntrack and idle-timeout-over-conntrack), for that flow only: a `ct
    /// timeout` object per such flow, set to the larger of twice the keepalive and the idle
    /// timeout, assigned by `ct timeout set` in the flow's rules. Accepts exactly the same packets as without it (try it with
    /// --check). The firewall's timeouts come from this kernel (`kernel`, the default:
    /// /proc/sys/net/netfilter of the current network namespace, so run it on the firewall)
    /// or from the `conntrack:` of a lint configuration FILE. --target nftables only.
    ///
    /// Example: portolan compile examples/site.yaml --ct-timeouts lint.yaml -o portolan.nft
    #[arg(long, value_name = "kernel|FILE", num_args = 0..=1, default_missing_value = "kernel")]
    pub ct_timeouts: Option<String>,
    /// --target nftables: the policy for `portolan enforce` (hostnames and wildcard domains
    /// open per device, filled by its forwarder; device DNS to any other resolver, and 853,
    /// dropped).
    #[arg(long)]
    pub enforce: bool,
    /// With --enforce: a device's plain DNS (TCP/UDP 53) to another resolver is `drop`ped
    /// (logged; the default) or `redirect`ed to the firewall's port 53, where the forwarder
    /// answers it. DNS over TLS/QUIC (853) and the known DoH endpoints are dropped either way.
    #[arg(long, value_enum, value_name = "drop|redirect", default_value_t = DnsBypass::Drop, requires = "enforce")]
    pub dns_bypass: DnsBypass,
    /// With --enforce: a DNS-over-HTTPS server of the site's own to block on 443 (repeatable),
    /// besides the shipped public resolvers' (Google, Cloudflare, Quad9, OpenDNS, AdGuard).
    #[arg(long, value_name = "ADDR", requires = "enforce")]
    pub doh: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

/// What the enforce policy does with a device's DNS to another resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DnsBypass {
    Drop,
    Redirect,
}

/// What `enforce` answers a device asking for a name no flow of its own states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnlistedArg {
    /// The upstream's answer (which opens nothing).
    Answer,
    /// REFUSED, without asking the upstream.
    Refuse,
    /// NXDOMAIN, without asking the upstream.
    Nxdomain,
}

/// How `enforce` writes its log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `event key=value ...`, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_aerleon_platform(s: &str) -> Result<portolan_emit::aerleon::Platform, String> {
    s.parse()
}

/// What `portolan schema` prints: the profile file format, or the JSON Schema (draft
/// 2020-12) of one kind of `--format json` document (`schemas/<kind>.v1.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// The profile format (`portolan: 1` and `portolan: 2`).
    Profile,
    /// The site format (`portolan: 1`).
    Site,
    /// Any command's failure: `portolan/error/v1`.
    Error,
    Catalog,
    Show,
    Doc,
    Validate,
    Compile,
    /// `compile --target ir`.
    Ir,
    Lab,
    Apply,
    ApplyDiff,
    ApplyConfirm,
    /// `enforce --format json`: one line of its JSON lines.
    Enforce,
    EnforceStatus,
    Probe,
    Scan,
    MudExport,
    MudImport,
    MudVerify,
    /// `audit --format json`: one line of its JSON lines.
    Audit,
    /// `audit --from kafka://...`: one message of the findings or dead-letter topic.
    AuditKafka,
    Learn,
    Verify,
    Lint,
    Report,
    /// `explain --format json`.
    Explain,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The file format or the kind of JSON document (the `<kind>` of its
    /// `"format": "portolan/<kind>/v1"`).
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
    /// Per-attempt timeout (`500ms`, `2s`, `2`: seconds without a unit).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::duration::timeout)]
    pub timeout: Duration,
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
    /// or its absence, and which DHCP options the profile's requirements need (`dhcp_options`)
    /// the offer gives or lacks; the DISCOVER asks for them. No lease is taken: a DISCOVER
    /// only, never a DHCPREQUEST, so the server forgets its offer. Without --dhcp those
    /// options are reported as skipped. Waits --timeout per attempt, at least 4 s.
    #[arg(long)]
    pub dhcp: bool,
    /// The interface facing the device's network, for --dhcp (default: the default route's,
    /// else the only one up).
    #[arg(long, value_name = "NAME", requires = "dhcp")]
    pub interface: Option<String>,
    /// Measure the path's idle timeouts (UDP and TCP) against `portolan responder` at ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT", requires = "token")]
    pub nat_timeout: Option<String>,
    /// The longest idle time tried by --nat-timeout (`300`, `5m`; default: the longest
    /// keepalive of the device's flows plus 60 s, at least 2m).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::seconds)]
    pub nat_max: Option<Duration>,
    /// How many idle times --nat-timeout tries (evenly spaced up to --nat-max).
    #[arg(long, default_value_t = 10)]
    pub nat_steps: u32,
    /// The token shared with `portolan responder`.
    #[arg(long)]
    pub token: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The site file (with --device); omit it to give --target and --profile instead.
    pub site: Option<PathBuf>,
    /// The device (or device group) of the site to scan.
    #[arg(long, short)]
    pub device: Option<String>,
    /// The address to scan: without a site, with --profile; with a site, one address of the
    /// device (default: its first).
    #[arg(long, value_name = "ADDR")]
    pub target: Option<IpAddr>,
    /// Judge against this profile (catalog id or file), without a site.
    #[arg(long, conflicts_with = "device")]
    pub profile: Option<String>,
    /// Scan through the site's firewall from this zone, in the lab's network namespaces.
    #[arg(long, value_name = "ZONE", conflicts_with_all = ["netns", "interface"], requires = "site")]
    pub from: Option<String>,
    /// Run inside this network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Send from this interface only.
    #[arg(long, value_name = "IF")]
    pub interface: Option<String>,
    /// TCP ports: a list and ranges (`22,80,8000-8100`), or `none`.
    #[arg(long, value_name = "PORTS", default_value = "1-65535")]
    pub tcp: String,
    /// More UDP ports to probe, besides the profile's and the common IoT services'.
    #[arg(long, value_name = "PORTS")]
    pub udp: Option<String>,
    /// No UDP probes at all.
    #[arg(long, conflicts_with = "udp")]
    pub no_udp: bool,
    /// No ICMP echo.
    #[arg(long)]
    pub no_icmp: bool,
    /// The global cap on probes per second (at least 1). The default is what nmap -T4
    /// reaches on a LAN; give 1000 or less for a fragile device.
    #[arg(long, value_name = "PPS", default_value_t = portolan_scan::DEFAULT_RATE, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// Use connect() even where raw sockets are permitted.
    #[arg(long)]
    pub connect: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct ResponderArgs {
    /// Address and port to answer on, UDP and TCP (repeat for several).
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    pub listen: Vec<String>,
    /// The token shared with the probe (at least 8 characters).
    #[arg(long)]
    pub token: String,
    /// The longest hold granted (`3600`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::duration::seconds)]
    pub max_hold: Duration,
    /// Run inside this network namespace (`ip netns` name).
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// The site file.
    pub site: PathBuf,
    /// Prove this nftables ruleset (table `inet portolan`) instead of the one Portolan emits
    /// for the site: checks a ruleset written or edited by hand against the requirements.
    #[arg(long, value_name = "FILE")]
    pub ruleset: Option<PathBuf>,
    /// Leave the namespaces in place, ruleset loaded, for inspection (`ip netns exec ...`).
    #[arg(long)]
    pub keep: bool,
    /// Do not check which rule admitted each required probe (for a `--ruleset` written by
    /// hand, whose rules do not carry Portolan's `profile/flow` comments).
    #[arg(long)]
    pub no_provenance: bool,
    /// Time one attempt of a probe may take (`500ms`, `1s`; 50ms to 10s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::duration::timeout)]
    pub timeout: Duration,
    /// The firewall's resolver: `dnsmasq` (the emitted `nftset=` lines; name sets shared by
    /// all devices) or `enforce` (`portolan enforce` with the enforce policy: a name opens
    /// only for the device that asked, and `unresolved-device` probes send each name-based
    /// flow from a device of the group that never asked, expected dropped).
    #[arg(long, value_name = "RESOLVER", default_value = "dnsmasq", value_parser = ["dnsmasq", "enforce"])]
    pub dns: String,
    /// Print every probe's row; by default only the rows that did not behave as expected,
    /// and a summary per device group (JSON always has every row).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
#[command(mut_arg("catalog", |a| a.conflicts_with("confirmed")))]
pub struct ApplyArgs {
    /// The site file (not with --confirmed).
    #[arg(required_unless_present = "confirmed", conflicts_with = "confirmed")]
    pub site: Option<PathBuf>,
    /// Roll back to the previous ruleset after this long (`90`, `90s`, `2m`, `1h`; 1 s to
    /// 24 h) unless `portolan apply --confirmed` comes first.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::confirm)]
    pub confirm: Option<Duration>,
    /// Make the pending apply permanent and stop its rollback timer.
    #[arg(long, conflicts_with = "confirm")]
    pub confirmed: bool,
    /// Show what loading the site's policy would change (objects added and removed, rules by
    /// their profile/flow, set elements) and exit without loading it.
    #[arg(long, visible_alias = "dry-run", conflicts_with_all = ["confirm", "confirmed"])]
    pub diff: bool,
    /// Act inside this network namespace (`ip netns exec NAME`) instead of the host.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Where the previous ruleset and the rollback state are kept (a folder per namespace).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/portolan")]
    pub state_dir: PathBuf,
    /// Load the policy for `portolan enforce` (per-device name sets, DNS only through the
    /// forwarder) instead of the one dnsmasq fills.
    #[arg(long)]
    pub enforce: bool,
    /// With --enforce: a device's plain DNS (TCP/UDP 53) to another resolver is `drop`ped
    /// (logged; the default) or `redirect`ed to the firewall's port 53, where the forwarder
    /// answers it. DNS over TLS/QUIC (853) and the known DoH endpoints are dropped either way.
    #[arg(long, value_enum, value_name = "drop|redirect", default_value_t = DnsBypass::Drop, requires = "enforce")]
    pub dns_bypass: DnsBypass,
    /// With --enforce: a DNS-over-HTTPS server of the site's own to block on 443 (repeatable),
    /// besides the shipped public resolvers' (Google, Cloudflare, Quad9, OpenDNS, AdGuard).
    #[arg(long, value_name = "ADDR", requires = "enforce")]
    pub doh: Vec<std::net::IpAddr>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct EnforceArgs {
    /// The site file.
    pub site: PathBuf,
    /// Where the site's devices send DNS (UDP and TCP), on the firewall.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:53")]
    pub listen: std::net::SocketAddr,
    /// The site's resolver, which every query is passed to (ADDR or ADDR:PORT).
    #[arg(long, value_name = "ADDR", required_unless_present = "status", value_parser = parse_server)]
    pub upstream: Option<std::net::SocketAddr>,
    /// Run inside this network namespace (the firewall's), sockets and sets alike.
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
    /// Added to an answer's TTL before its elements expire (`30`, `30s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::seconds_or_zero)]
    pub grace: Duration,
    /// The shortest element lifetime, whatever the TTL (`30s`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::seconds)]
    pub floor: Duration,
    /// The longest element lifetime, whatever the TTL (`1h`, `24h`).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::duration::seconds)]
    pub cap: Duration,
    /// List the live elements per device with the seconds they have left (read from the
    /// kernel's sets), then exit.
    #[arg(long)]
    pub status: bool,
    /// A name no flow of the asking device states: `answer` it (opens nothing; the default),
    /// `refuse` it (REFUSED) or `nxdomain` it, without asking the upstream.
    #[arg(long, value_enum, default_value_t = UnlistedArg::Answer)]
    pub unlisted: UnlistedArg,
    /// A DNS-over-HTTPS host of the site's own whose lookups are reported like the shipped
    /// ones' (repeatable).
    #[arg(long, value_name = "NAME")]
    pub doh_name: Vec<String>,
    /// Serve Prometheus metrics (text format, GET /metrics) on this address, in the
    /// namespace portolan runs in: answers, elements added, refreshed and expired, refused
    /// names, DoH lookups, bypass attempts (the policy's counters), commit latency.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// How often (milliseconds) to look in conntrack for live flows of elements about to
    /// expire, which are then kept; 0: never. Default: a third of --floor (250 ms to 10 s).
    #[arg(long, value_name = "MS")]
    pub sweep_ms: Option<u64>,
    /// Log lines as `json` (one object per line, the default, as journald and log shippers
    /// take them) or `text` (event key=value, for reading at a terminal).
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

/// `ADDR` (port 53) or `ADDR:PORT`, IPv6 as `[ADDR]:PORT`.
fn parse_server(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("`{s}`: give ADDR or ADDR:PORT (IPv6: [ADDR]:PORT)"))
}

/// Arguments of the hidden rollback timer (see `portolan_nft::apply::rollback_args`).
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long)]
    pub token: String,
    /// Seconds to wait.
    #[arg(long)]
    pub after: u64,
    #[arg(long)]
    pub netns: Option<String>,
}

#[derive(Debug, Args)]
#[command(mut_arg("format", |a| a.help(
    "`json`: JSON lines, one per flow, then one per device group and one summary"
)))]
pub struct AuditArgs {
    /// The site file.
    pub site: PathBuf,
    /// Captures (pcap, pcapng), flow logs (Zeek conn.log and dns.log as TSV or JSON,
    /// `conntrack -L`/`-E` output, log lines of the emitted nftables ruleset) and flow records
    /// (files of IPFIX, NetFlow v9 or v5 messages as a collector writes the datagrams,
    /// `nfdump -o csv` output run with TZ=UTC, Suricata eve.json), gzip-compressed or not; `-`
    /// reads standard input. Told apart by their first bytes.
    #[arg(required_unless_present_any = ["listen", "from"], value_name = "CAPTURE|FLOWLOG")]
    pub inputs: Vec<PathBuf>,
    /// Live mode: receive IPFIX / NetFlow v9 / v5 datagrams on this UDP address
    /// (`udp://0.0.0.0:4739`) and print a report of each period as JSON lines (its violations,
    /// then a `period` line); Ctrl-C ends with a `live-summary` line.
    #[arg(long, value_name = "udp://ADDR:PORT", conflicts_with = "inputs")]
    pub listen: Option<String>,
    /// Live mode: publish every record received to Kafka instead of auditing here, as goflow2
    /// `FlowMessage`s (protobuf, goflow2's `bin` framing) keyed by the site device's address,
    /// for `--from` workers. Ctrl-C ends with a `forwarded` line.
    #[arg(long, value_name = "kafka://BROKERS/TOPIC", requires = "listen")]
    pub to: Option<String>,
    /// Be a worker of a Kafka consumer group: read goflow2 `FlowMessage`s (protobuf or JSON)
    /// and Zeek conn.log / dns.log JSON lines from TOPIC, keyed by device address, and produce
    /// findings (violations, flows of unknown devices) as JSON to --findings, keyed SITE/DEVICE,
    /// each with a stable `id` to de-duplicate by. Offsets are committed only once the
    /// findings they caused are delivered (at-least-once). Records that cannot be read go to
    /// --dead-letter with their offset. SIGINT/SIGTERM closes every window, commits and ends
    /// with a `kafka-worker` line. Example: portolan audit site.yaml --from
    /// kafka://127.0.0.1:9092/flows --group portolan
    #[arg(long, value_name = "kafka://BROKERS/TOPIC", conflicts_with_all = ["inputs", "listen"], requires = "group")]
    pub from: Option<String>,
    /// `--from`: the consumer group's name (every worker of one site uses the same).
    #[arg(long, value_name = "NAME", requires = "from")]
    pub group: Option<String>,
    /// `--from`: the topic findings go to (default: TOPIC.findings).
    #[arg(long, value_name = "TOPIC", requires = "from")]
    pub findings: Option<String>,
    /// `--from`: the topic poison records go to (default: TOPIC.dead-letter).
    #[arg(long, value_name = "TOPIC", requires = "from")]
    pub dead_letter: Option<String>,
    /// `--from`, `--to`: a librdkafka property for every Kafka client of this process, after
    /// Portolan's own (as kcat's `-X`); repeat for several. Example: `--kafka-option
    /// fetch.wait.max.ms=10` against tansu, whose fetch sleeps up to half this wait after
    /// returning data (see bench/README.md).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
    /// `--from`: a partition's window also closes after this many records.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "from")]
    pub window_records: u64,
    /// Live mode: the period (`10`, `10s`, `1m`); `--from`: a partition's window.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = crate::duration::seconds
    )]
    pub every: Duration,
    /// This firewall's own addresses, for flows bound to `firewall` (local DNS, DHCP, NTP).
    #[arg(long, value_name = "ADDR")]
    pub firewall: Vec<IpAddr>,
    /// List conforming flows and flows of unknown devices in the table too (JSON always has
    /// every flow).
    #[arg(long)]
    pub all: bool,
    /// Threads: the flow table is split in this many shards (by a hash of each flow's
    /// addresses and ports) and the flows judged in as many runs; the report is the same
    /// for any number. Default: the cores available.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
pub struct LearnArgs {
    /// Captures or flow logs, as `portolan audit` reads them; `-` reads standard input.
    #[arg(required = true, value_name = "CAPTURE|FLOWLOG")]
    pub inputs: Vec<PathBuf>,
    /// The device's address (or prefix, for a group of identical devices).
    #[arg(long, value_name = "ADDR")]
    pub device: String,
    /// The profile's id (default: `learned-<address>`).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub file: OutputFile,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum MudCmd {
    /// Write a profile (one mode of it) as a MUD file.
    ///
    /// The file holds the `ietf-mud:mud` container and one ACL per direction and address
    /// family. Host names become `ietf-acldns` names, addresses networks, the local services
    /// DNS and NTP the `controller` URNs, DHCP `local-networks`, roles controller classes
    /// named `<mud-url>#<role>`, port lists several ACEs and ranges RFC 8519 port ranges.
    /// What MUD cannot say (modes, alternatives and their policies, keepalives, idle timeouts,
    /// conditions, replaces, TLS, proxies, requirements, unspecified ports, wildcard domains,
    /// params) travels in the `portolan` extension; what that leaves out of the ACLs or lets
    /// them admit more than a configured device needs is also printed as a warning. The ACLs
    /// never allow more than the profile: a `policy: one` choice group needs --choose, and a
    /// multi-homed profile is written one interface per file (--interface).
    ///
    /// `last-update` is --last-update, else SOURCE_DATE_EPOCH, else 1970-01-01T00:00:00Z:
    /// the same profile and options always give the same bytes.
    ///
    /// Exit 0 when written (warnings on stderr), 2 on bad input.
    ///
    /// Example: portolan mud export thingpark-lrr --mode ipsec --mud-url https://example.com/lrr.json -o lrr.json
    Export(ExportArgs),
    /// Read a MUD file as a profile (YAML on stdout, or -o).
    ///
    /// Real MUD files are often draft-era or slightly off the RFCs; each repair is a warning
    /// naming the JSON path (e.g. /ietf-access-control-list:access-lists). --strict turns
    /// every deviation from RFC 8519/8520 into an error. The profile is validated before it
    /// is written; a file that cannot make a valid profile is refused.
    ///
    /// Exit 0 when imported (warnings on stderr), 2 when refused.
    ///
    /// Example: portolan mud import HueBulbMud.json -o huebulb.yaml
    Import(ImportArgs),
    /// Check a MUD file's detached CMS signature (DER SignedData over the file's bytes).
    ///
    /// The signer's certificate must chain to --ca, be valid now (or at --at), carry the
    /// digitalSignature key usage, and, with --signer-subject, have that subject.
    ///
    /// Exit 0 when the signature verifies, 1 when it is refused (bad signature, wrong signer,
    /// expired certificate), 2 when a file cannot be read.
    ///
    /// Example: portolan mud verify lrr.json --signature lrr.p7s --ca vendor-ca.pem
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
#[command(mut_arg("format", |a| a.help(
    "`json`: print a report (with the MUD file inside unless -o) instead of the file"
)))]
pub struct ExportArgs {
    /// Profile id (see `portolan catalog list`) or a profile file.
    pub id: String,
    /// The mode to export (required when the profile has several).
    #[arg(long)]
    pub mode: Option<String>,
    /// The interface of a multi-homed profile to export (required when it has several): a
    /// MUD file holds one interface's flows; publish one MUD URL per interface.
    #[arg(long, value_name = "INTERFACE")]
    pub interface: Option<String>,
    /// Pick a flow in a choice group, as a site's `choose:` does (repeatable); the group's
    /// other flows get no ACE. Required for a `policy: one` group.
    #[arg(long, value_name = "GROUP=FLOW", value_parser = parse_choose)]
    pub choose: Vec<(String, String)>,
    /// Where the MUD file will be published (https).
    #[arg(long, value_name = "URL")]
    pub mud_url: String,
    #[command(flatten)]
    pub file: OutputFile,
    /// `last-update`, RFC 3339 with a time zone (default: SOURCE_DATE_EPOCH, else the epoch).
    #[arg(long, value_name = "TIME")]
    pub last_update: Option<String>,
    /// `cache-validity` in hours, 1 to 168.
    #[arg(long, default_value_t = 48, value_name = "HOURS")]
    pub cache_validity: u8,
    /// Set `is-supported` to false: the manufacturer no longer supports the device.
    #[arg(long)]
    pub unsupported: bool,
    /// `documentation` URL (default: the profile's `documentation` source, else its first
    /// source's URL).
    #[arg(long, value_name = "URL")]
    pub documentation: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

#[derive(Debug, Args)]
#[command(mut_arg("format", |a| a.help(
    "`json`: print a report (with the profile inside unless -o) instead of the profile"
)))]
pub struct ImportArgs {
    /// The MUD file (JSON).
    pub file: PathBuf,
    #[command(flatten)]
    pub to: OutputFile,
    /// Refuse any deviation from RFC 8519/8520 instead of repairing it.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The MUD file, exactly as published.
    pub file: PathBuf,
    /// The detached signature (DER, or PEM). Default: the file the MUD file's `mud-signature`
    /// URL names (its last path segment), next to the MUD file; never fetched.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// Trust anchor(s): a CA certificate, PEM (one or more) or DER.
    #[arg(long, value_name = "CERT")]
    pub ca: PathBuf,
    /// The subject the signer must have, compared as a distinguished name: RFC 4514
    /// ("CN=Example MUD signer,O=Example") or as `openssl x509 -subject` prints it
    /// ("O = Example, CN = Example MUD signer" or "/O=Example/CN=Example MUD signer").
    #[arg(long, value_name = "DN")]
    pub signer_subject: Option<String>,
    /// Check certificate validity at this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `GROUP=FLOW` of `mud export --choose`.
fn parse_choose(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((g, f)) if !g.is_empty() && !f.is_empty() => Ok((g.to_string(), f.to_string())),
        _ => Err(format!("`{s}` is not GROUP=FLOW (e.g. mqtt=mqtt-8883)")),
    }
}

/// `portolan verify` (of a firewall; `mud verify` is [`VerifyArgs`]).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["ruleset", "live"])))]
pub struct RulesetVerifyArgs {
    /// The site file.
    pub site: PathBuf,
    /// The ruleset: a `.nft` file (loaded by `nft` into a scratch network namespace, never
    /// this machine's, listed as JSON, and the namespace removed; needs root), or iptables
    /// text read as it is: `iptables-save`, `ip6tables-save`, `ipset save` (or `ipset
    /// restore` input), or Portolan's own `--target iptables` file. Give iptables text in one
    /// file or several (`--ruleset v4.save --ruleset v6.save --ruleset sets.save`).
    #[arg(long, value_name = "FILE")]
    pub ruleset: Vec<PathBuf>,
    /// What `--ruleset` holds. `auto`: iptables text when it has a table line (`*filter`),
    /// an ipset `create` line or Portolan's section markers, else nftables; a table block is
    /// IPv6 after an `ip6tables-save` header or a `#> ip6tables` marker, or when it names an
    /// IPv6 address. `ip6tables`: every table block is IPv6.
    #[arg(long, value_enum, default_value_t = RulesetFormat::Auto, value_name = "FORMAT")]
    pub ruleset_format: RulesetFormat,
    /// The ruleset loaded now, in this namespace or `--netns`: `nft -j list ruleset`, or with
    /// `--firewall iptables`, `iptables-save`, `ip6tables-save` and `ipset save`.
    #[arg(long)]
    pub live: bool,
    /// With --live: which firewall to read.
    #[arg(long, value_enum, default_value_t = Firewall::Nftables, requires = "live")]
    pub firewall: Firewall,
    /// With --live: the network namespace to read.
    #[arg(long, value_name = "NS", requires = "live")]
    pub netns: Option<String>,
    /// The DNS server's configuration (dnsmasq `nftset=` or `ipset=` lines) saying which sets
    /// it fills for which names. Default: the `#> dnsmasq` section of a Portolan iptables
    /// file, else what `portolan compile` writes for the site (`--target dnsmasq` for
    /// nftables, the `ipset=` lines of `--target iptables` for iptables).
    #[arg(long, value_name = "FILE")]
    pub dns_config: Option<PathBuf>,
    /// Resolve the site's hostnames now (A and AAAA, 2 s per try): a hostname peer whose
    /// packets no set the DNS fills admits counts as permitted when rules on static
    /// addresses admit every address it resolves to now; the report says which way.
    #[arg(long)]
    pub resolve: bool,
    /// The DNS server for --resolve (ADDR or ADDR:PORT); default: /etc/resolv.conf's first.
    #[arg(long, value_name = "ADDR", requires = "resolve")]
    pub dns_server: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}

/// What `verify --ruleset` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesetFormat {
    Auto,
    Nft,
    Iptables,
    Ip6tables,
}

/// Which firewall `verify --live` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Firewall {
    Nftables,
    Iptables,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derive attributes hold together (clap's own consistency check), and every
    /// command with `--format` reports it through [`Command::json`].
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let json = |args: &[&str]| {
            let mut argv = vec!["portolan"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).expect("parses").command.json()
        };
        assert!(json(&["catalog", "list", "--format", "json"]));
        assert!(json(&["show", "x", "--format=json"]));
        assert!(json(&["doc", "x", "--format", "json"]));
        assert!(!json(&["doc", "x", "--format", "markdown"]));
        assert!(json(&["compile", "s.yaml", "--format", "json"]));
        assert!(!json(&["compile", "s.yaml", "-o", "x.nft"]));
        assert!(json(&[
            "mud", "import", "m.json", "--format", "json", "-o", "p.yaml"
        ]));
        assert!(json(&["apply", "--confirmed", "--format", "json"]));
        assert!(!json(&["learn", "c.pcap", "--device", "10.0.0.1"]));
        assert!(json(&[
            "learn", "c.pcap", "--device", "10.0.0.1", "--format", "json"
        ]));
        assert!(json(&["lint", "p.yaml", "--format", "sarif"]));
        assert!(!json(&["lint", "p.yaml"]));
    }
}

/// `portolan report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The site file.
    pub site: PathBuf,
    /// `portolan lab SITE --format json` output.
    #[arg(long, value_name = "JSON")]
    pub lab: Option<PathBuf>,
    /// `portolan probe SITE --device NAME --format json` output.
    #[arg(long, value_name = "JSON")]
    pub probe: Option<PathBuf>,
    /// `portolan audit SITE ... --format json` output (JSON lines).
    #[arg(long, value_name = "JSON")]
    pub audit: Option<PathBuf>,
    /// `portolan verify SITE --ruleset FILE --format json` output.
    #[arg(long, value_name = "JSON")]
    pub verify: Option<PathBuf>,
    /// `portolan lint SITE --format json` output.
    #[arg(long, value_name = "JSON")]
    pub lint: Option<PathBuf>,
    /// `portolan scan SITE --device GROUP --format json` output; once per device scanned.
    /// The profile's `listens` entries found open mark their flows; ports open beyond the
    /// profile are red notes on the group.
    #[arg(long, value_name = "JSON")]
    pub scan: Vec<PathBuf>,
    #[command(flatten)]
    pub file: OutputFile,
    /// With -o, the summary printed (`json`: groups, flows, green/grey/red counts, the red
    /// flows' anchors); without -o the page goes to standard output, so `json` needs -o.
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub cat: CatalogArgs,
}
