//! `portolan responder --listen ADDR:PORT --token T`: the far-side helper of
//! `probe --nat-timeout`. Runs until interrupted.

use std::net::SocketAddr;

use anyhow::Context;
use portolan_net::responder::{bind, Limits};
use portolan_net::runtime::block_on;

use crate::cli::ResponderArgs;
use crate::output::Outcome;

pub fn run(a: &ResponderArgs) -> anyhow::Result<Outcome> {
    let listen: Vec<SocketAddr> = a
        .listen
        .iter()
        .map(|l| {
            l.parse()
                .with_context(|| format!("--listen {l}: write ADDR:PORT"))
        })
        .collect::<anyhow::Result<_>>()?;
    let limits = Limits {
        max_hold: a.max_hold,
        ..Limits::default()
    };
    let token = a.token.clone();
    let serve = move || -> anyhow::Result<()> {
        block_on(async move {
            let b = bind(&listen, &token, limits).await?;
            for addr in b.local_addrs() {
                eprintln!("portolan responder: answering on {addr} (UDP and TCP)");
            }
            b.serve().await;
            Ok::<(), portolan_net::NetError>(())
        })??;
        Ok(())
    };
    match &a.netns {
        Some(ns) => portolan_net::netns::run_in(ns, serve)??,
        None => serve()?,
    }
    Ok(Outcome::Ok)
}
