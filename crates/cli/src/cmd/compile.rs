//! `portolan compile SITE --target T [-o FILE]`: site → policy for one target.

use std::io::Write as _;

use anyhow::Context;
use portolan_emit::{emit, Options, Target};

use crate::cli::{CompileArgs, Format, Global, TargetArg};
use crate::output::Outcome;

pub fn run(g: &Global, a: &CompileArgs) -> anyhow::Result<Outcome> {
    let Some(policy) = super::load_site(g, &a.site, a.format == Format::Json)? else {
        return Ok(Outcome::BadInput);
    };
    let text = match a.target {
        TargetArg::Ir => serde_json::to_string_pretty(&policy)? + "\n",
        t => {
            let target = match t {
                TargetArg::Nftables => Target::Nftables,
                TargetArg::Iptables => Target::Iptables,
                _ => Target::Dnsmasq,
            };
            emit(target, &policy, &Options::default())?
        }
    };
    write_output(a.output.as_deref(), &text)?;
    Ok(Outcome::Ok)
}

/// Writes the whole text to a file atomically (temporary file, then rename), or to stdout.
pub fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path {
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
        Some(p) => {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.portolan-tmp",
                p.file_name().and_then(|n| n.to_str()).unwrap_or("out")
            ));
            std::fs::write(&tmp, text)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
            Ok(())
        }
    }
}
