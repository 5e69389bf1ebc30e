//! The keepalive stage: the path's idle timeouts against the flows' keepalives.

use crate::keepalive;
use crate::remedy::{and_list, proto_key, proto_name};
use crate::report::{Check, Kind, Stage, StageReport, Verdict};

use super::Ctx;

pub(super) async fn keepalive_stage(ctx: &Ctx<'_>, k: &keepalive::Options) -> StageReport {
    let m = keepalive::measure(k).await;
    let mut checks = Vec::new();
    for (name, r) in [("udp", &m.udp), ("tcp", &m.tcp)] {
        match r {
            Ok(b) => checks.push(
                Check::new(
                    Kind::NatTimeout,
                    Verdict::Pass,
                    b.state(),
                    format!("{}: {}", name.to_uppercase(), b.describe()),
                )
                .proto(name, None),
            ),
            Err(e) => checks.push(
                Check::new(
                    Kind::NatTimeout,
                    Verdict::Warn,
                    "not-measured",
                    format!("{}: {e}", name.to_uppercase()),
                )
                .proto(name, None),
            ),
        }
    }
    for f in &ctx.plan.flows {
        let Some(ka) = f.keepalive else { continue };
        let r = match f.protocol {
            6 => &m.tcp,
            17 => &m.udp,
            _ => continue,
        };
        let Ok(b) = r else { continue };
        let name = proto_name(f.protocol);
        let to: Vec<String> = if f.names.is_empty() {
            f.prefixes.iter().map(ToString::to_string).collect()
        } else {
            f.names.clone()
        };
        let c = match b.dropped {
            Some(d) if d <= u64::from(ka) => Check::new(
                Kind::Keepalive,
                if f.optional { Verdict::Warn } else { Verdict::Fail },
                "too-short",
                format!(
                    "{}: the path forgets an idle {name} mapping after {}, before the device's keepalive every {ka} s",
                    f.flow,
                    b.describe_drop()
                ),
            )
            .remedy(format!(
                "raise the idle timeout for {name} {} from {} to {} above {ka} s (NAT/conntrack {} timeout), or make the device send keepalives more often — {}, flow `{}`",
                crate::remedy::ports_text(&f.ports),
                ctx.from,
                and_list(&to),
                if f.protocol == 6 { "TCP established" } else { "UDP" },
                ctx.product,
                f.flow
            )),
            Some(_) => Check::new(
                Kind::Keepalive,
                Verdict::Pass,
                "ok",
                format!("{}: keepalive every {ka} s is shorter than the path's idle timeout ({})", f.flow, b.describe_drop()),
            ),
            None if b.survived.is_some_and(|s| s >= u64::from(ka)) => Check::new(
                Kind::Keepalive,
                Verdict::Pass,
                "ok",
                format!("{}: idle {name} mappings survive {} s, longer than the keepalive every {ka} s", f.flow, b.survived.unwrap_or_default()),
            ),
            None => Check::new(
                Kind::Keepalive,
                Verdict::Warn,
                "not-long-enough",
                format!(
                    "{}: keepalive every {ka} s, but idle mappings were only tried up to {} s; measure with --nat-max {}",
                    f.flow,
                    b.survived.unwrap_or_default(),
                    u64::from(ka) + 60
                ),
            ),
        };
        checks.push(c.flow(f.flow.clone()).proto(proto_key(f.protocol), None));
    }
    StageReport::new(Stage::Keepalive, checks)
}
