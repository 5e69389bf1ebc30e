//! `portolan learn INPUT... --device ADDR`: a draft profile from one device's observed flows
//! (peers by DNS name where the traffic resolved them, ports, protocols, who initiated, the
//! services it used and the ports it served), validated before it is written.

use anyhow::bail;
use portolan_audit::learn::{draft, parse_device, to_yaml, LearnOptions};

use crate::cli::LearnArgs;
use crate::output::Outcome;
use crate::write;

pub fn run(a: &LearnArgs) -> anyhow::Result<Outcome> {
    let Some(device) = parse_device(&a.device) else {
        return crate::contract::fail(
            "usage",
            format!("--device `{}` is not an IP address or prefix", a.device),
        );
    };
    if let Some(id) = &a.id {
        if !portolan_model::syntax::is_profile_id(id) {
            return crate::contract::fail(
                "invalid-id",
                format!("--id `{id}` is not a profile id: lowercase letters, digits and '-'"),
            );
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
        return crate::contract::fail(
            "no-flows",
            format!("no flow of {} in the input(s)", a.device),
        );
    }
    let text = match to_yaml(&profile) {
        Ok(t) => t,
        Err(d) => bail!("the draft does not validate (a bug, please report it):\n{d}"),
    };
    if a.out.json() {
        // The draft in the profile file format (`portolan schema profile`), or the file written.
        if let Some(p) = a.file.output.as_deref() {
            write::atomically(p, text.as_bytes())?;
        }
        crate::contract::print(
            "learn",
            &serde_json::json!({
                "device": a.device,
                "inputs": opts.inputs,
                "flows": profile.flows.len(),
                "peers": profile.endpoints.len(),
                "output": a.file.output.as_ref().map(|p| p.display().to_string()),
                "profile": a.file.output.is_none().then_some(&profile),
            }),
        )?;
        return Ok(Outcome::Ok);
    }
    write::to_output(a.file.output.as_deref(), text.as_bytes())?;
    eprintln!(
        "learned {} flow(s) to {} peer(s); review it before use",
        profile.flows.len(),
        profile.endpoints.len()
    );
    Ok(Outcome::Ok)
}
