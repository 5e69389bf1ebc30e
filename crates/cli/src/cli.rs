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
    /// Check profile files; report every problem with file:line:column and a code.
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
    /// Print the JSON Schema of a file format, for editors.
    ///
    /// Example: portolan schema profile > profile.schema.json
    Schema(SchemaArgs),
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
    /// Profile files.
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
