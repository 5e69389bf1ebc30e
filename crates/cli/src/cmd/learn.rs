//! `portolan learn INPUT... --device ADDR`: a draft profile from one device's observed flows
//! (peers by DNS name where the traffic resolved them, ports, protocols, who initiated, the
//! services it used and the ports it served), validated before it is written.

use anyhow::bail;
use portolan_audit::learn::{draft, parse_device, to_yaml, LearnOptions};

use crate::cli::{Global, LearnArgs};
use crate::output::Outcome;
use crate::write;

pub fn run(_g: &Global, a: &LearnArgs) -> anyhow::Result<Outcome> {
    let Some(device) = parse_device(&a.device) else {
        bail!("`{}` is not an IP address or prefix", a.device);
    };
    if let Some(id) = &a.id {
        if !portolan_model::syntax::is_profile_id(id) {
            bail!("`{id}` is not a profile id: lowercase letters, digits and '-'");
        }
    }
    let Some(c) = super::audit::collect(&a.inputs) else {
        return Ok(Outcome::BadInput);
    };
    let obs = c.finish();
    let opts = LearnOptions {
        device,
        id: a.id.clone(),
        inputs: a.inputs.iter().map(|p| p.display().to_string()).collect(),
    };
    let profile = draft(&obs, &opts);
    if profile.flows.is_empty() {
        eprintln!("error: no flow of {} in the input(s)", a.device);
        return Ok(Outcome::BadInput);
    }
    let text = match to_yaml(&profile) {
        Ok(t) => t,
        Err(d) => bail!("the draft does not validate (a bug, please report it):\n{d}"),
    };
    write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    eprintln!(
        "learned {} flow(s) to {} peer(s); review it before use",
        profile.flows.len(),
        profile.endpoints.len()
    );
    Ok(Outcome::Ok)
}
