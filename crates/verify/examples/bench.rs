//! `cargo run --release -p portolan-verify --example bench -- SITE LISTING.json DNSMASQ.conf`:
//! the time `verify` takes for a site and a ruleset already listed as JSON (`nft -j list
//! ruleset`), split into lowering, flows and excess. `bench/verify.sh` prepares the inputs.

use std::time::Instant;

use portolan_model::catalog::Catalog;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        return Err("usage: bench SITE LISTING.json DNSMASQ.conf".into());
    }
    let text = std::fs::read_to_string(&args[1])?;
    let cat = Catalog::embedded()?;
    let policy = portolan_model::compile::site_text(&args[1], &text, &cat)
        .map_err(|d| format!("site: {d:?}"))?
        .value;
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&args[2])?)?;
    let dns = portolan_verify::site::DnsFills::from_dnsmasq(&std::fs::read_to_string(&args[3])?);
    let rules = doc["nftables"]
        .as_array()
        .map(|a| a.iter().filter(|o| o.get("rule").is_some()).count())
        .unwrap_or(0);
    let t0 = Instant::now();
    let prog = portolan_verify::program_for_site(&doc, None, &policy, &dns)?;
    let t1 = Instant::now();
    let w0 = portolan_verify::eval::work();
    let flows = portolan_verify::site::flows(&policy, &prog, &dns);
    let t2 = Instant::now();
    let w1 = portolan_verify::eval::work();
    let excess = portolan_verify::site::excess(&policy, &prog, &dns);
    let t3 = Instant::now();
    let w2 = portolan_verify::eval::work();
    let permitted = flows
        .iter()
        .filter(|f| f.status == portolan_verify::site::Status::Permitted)
        .count();
    println!(
        "devices/groups {} rules {} | lower {:.3} s | {} flows ({} permitted) {:.3} s, {:.2} ms per flow | excess of {} groups ({} classes) {:.3} s, {:.2} ms per group | total {:.3} s",
        policy.groups.len(),
        rules,
        (t1 - t0).as_secs_f64(),
        flows.len(),
        permitted,
        (t2 - t1).as_secs_f64(),
        (t2 - t1).as_secs_f64() * 1000.0 / flows.len().max(1) as f64,
        policy.groups.len(),
        excess.len(),
        (t3 - t2).as_secs_f64(),
        (t3 - t2).as_secs_f64() * 1000.0 / policy.groups.len().max(1) as f64,
        (t3 - t0).as_secs_f64()
    );
    println!(
        "  evaluator work (boxes x rules looked at, map elements split on): flows {} excess {}",
        w1 - w0,
        w2 - w1
    );
    Ok(())
}
