//! `show SITE --device D`: how the site's compiled policy carries each of the device's flows,
//! read from the IR alone (never from the site's text): a rule with `via_proxy` is the leg to
//! the site's proxy (its peers are the proxy's address or the firewall, its port the proxy's);
//! any other rule of the flow is direct; a flow listed in `Policy.documented` is documented
//! only; a flow with neither opens nothing here (its conditions do not hold, another flow was
//! chosen or replaces it, the site switched it off).

use portolan_model::ir::{Group, Policy, Rule};
use serde::Serialize;

/// The route of one flow for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    pub via: Via,
    /// `via: proxy`: the proxy's address and port (`firewall:3128`, `10.99.0.8:8080`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// `via: documented`: why no rule enforces it; `via: none`: that none applies here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Direct,
    Proxy,
    Documented,
    None,
}

impl Route {
    /// The route in a table's notes.
    pub fn text(&self) -> String {
        match (self.via, &self.proxy, &self.reason) {
            (Via::Proxy, Some(p), _) => format!("via proxy {p}"),
            (Via::Direct, _, _) => "direct".to_string(),
            (Via::Documented, _, Some(r)) => format!("documented only: {r}"),
            (Via::None, _, _) => "opens nothing here".to_string(),
            _ => format!("{:?}", self.via).to_lowercase(),
        }
    }
}

/// The groups of a device: its own, or one per interface of a multi-homed device.
pub fn groups<'a>(policy: &'a Policy, device: &str) -> Vec<&'a Group> {
    policy
        .groups
        .iter()
        .filter(|g| g.device() == device)
        .collect()
}

/// `address:port` of a proxy leg's rule.
fn proxy_text(r: &Rule) -> String {
    let mut at: Vec<String> = Vec::new();
    if r.peers.firewall {
        at.push("firewall".to_string());
    }
    for p in &r.peers.prefixes {
        if p.prefix_len() == p.max_prefix_len() {
            at.push(match p.addr() {
                std::net::IpAddr::V6(a) => format!("[{a}]"),
                a => a.to_string(),
            });
        } else {
            at.push(p.to_string());
        }
    }
    let ports: Vec<String> = r
        .ports
        .iter()
        .map(|p| {
            if p.lo == p.hi {
                p.lo.to_string()
            } else {
                format!("{}-{}", p.lo, p.hi)
            }
        })
        .collect();
    at.iter()
        .map(|a| format!("{a}:{}", ports.join(",")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the policy carries flow `flow` of the device's `groups`.
pub fn route(policy: &Policy, groups: &[&Group], flow: &str) -> Route {
    let mine = |g: &str| groups.iter().any(|x| x.id == g);
    let rules: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| mine(&r.group) && r.flow == flow)
        .collect();
    let legs: Vec<String> = rules
        .iter()
        .filter(|r| r.via_proxy.is_some())
        .map(|r| proxy_text(r))
        .collect();
    if !legs.is_empty() {
        let mut legs = legs;
        legs.dedup();
        return Route {
            via: Via::Proxy,
            proxy: Some(legs.join(", ")),
            reason: None,
        };
    }
    if !rules.is_empty() {
        return Route {
            via: Via::Direct,
            proxy: None,
            reason: None,
        };
    }
    if let Some(d) = policy
        .documented
        .iter()
        .find(|d| mine(&d.group) && d.flow == flow)
    {
        return Route {
            via: Via::Documented,
            proxy: None,
            reason: Some(d.reason.clone()),
        };
    }
    Route {
        via: Via::None,
        proxy: None,
        reason: Some(
            "no rule: its conditions do not hold, another flow is chosen or replaces it, or the site switches it off".to_string(),
        ),
    }
}
