//! The site diagram, laid out in layers rather than placed by hand: device groups in their
//! zones on the left, the firewall in the middle, peers on the right, grouped by where they
//! are (a zone of the site, or outside it: the Internet and the vendors' clouds). Services the
//! firewall itself answers (DNS, DHCP) end at a peer node "this firewall" at the top of the
//! right layer, so that every arrow crosses the firewall bar and every label sits at the same
//! place: just before the peer, right-aligned, one line per arrow arriving there.
//!
//! Labels never overlap by construction: a peer node is as tall as the arrows arriving at it
//! need (one [`LANE`] each), each arrow ends at its own lane, and its label sits on that lane
//! in the label column between the firewall and the peers. The browser test checks this on
//! the boxes Chromium lays out.
//!
//! The order within the peer layer is the one crossing-reduction step of a layered
//! (Sugiyama) layout: each peer is placed at the mean position of the groups it talks to (its
//! barycenter), clusters by the mean of their peers, ties broken by name. The device layer
//! keeps the site's order, which the reader knows. All coordinates are computed here; the
//! template only writes them.
//!
//! Edges join one group (or collapsed profile) to one peer node and carry every flow between
//! them: the labels (`udp/500,4500`), the initiator (arrowheads: towards the responder), the
//! worst status colour, and a link to the first flow's anchor.
//!
//! A site with more than [`COLLAPSE_AT`] groups is drawn by profile: one node per zone and
//! profile ("37 groups"), and the profile's endpoint roles as peers, so a thousand-device site
//! stays a readable drawing (the tables below it list every group).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use portolan_model::ir::{Initiator, Policy, Rule};
use serde::Serialize;

use crate::view::{peers_of, traffic_of, Page};

/// Above this many groups the diagram shows one node per zone and profile.
pub const COLLAPSE_AT: usize = 40;

const ROW: f64 = 34.0;
const NODE_H: f64 = 28.0;
const ZONE_HEAD: f64 = 40.0;
const ZONE_GAP: f64 = 16.0;
const LEFT_X: f64 = 16.0;
const LEFT_W: f64 = 230.0;
const FW_X: f64 = 320.0;
const FW_W: f64 = 72.0;
const RIGHT_X: f64 = 690.0;
/// Width of the label column left of the peers (labels are at most [`LABEL_MAX`] characters
/// of a 10 px font).
const LABEL_COL: f64 = 210.0;
/// Vertical room of one arrow arriving at a peer.
pub const LANE: f64 = 14.0;
/// The place of the peer node standing for the firewall's own services.
const FIREWALL: &str = "@firewall";
const RIGHT_W: f64 = 280.0;
const TOP: f64 = 40.0;
const WIDTH: f64 = RIGHT_X + RIGHT_W + 16.0;
/// Labels longer than this are cut (the `<title>` keeps the whole text).
const LABEL_MAX: usize = 34;

#[derive(Debug, Serialize)]
pub struct Diagram {
    pub width: f64,
    pub height: f64,
    pub collapsed: bool,
    pub clusters: Vec<Cluster>,
    pub nodes: Vec<Node>,
    pub firewall: Rect,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Serialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A zone (left) or a peer cluster (right): a box with a heading.
#[derive(Debug, Serialize)]
pub struct Cluster {
    /// `zone` (device layer) or `peers`.
    pub kind: &'static str,
    pub rect: Rect,
    pub title: String,
    pub subtitle: String,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub rect: Rect,
    pub label: String,
    pub subtitle: String,
    /// `group` or `peer`.
    pub kind: &'static str,
    /// A link target on the page (`#group-…`), empty for peers.
    pub href: String,
}

#[derive(Debug, Serialize)]
pub struct Edge {
    /// An SVG path (`M x y C …`).
    pub path: String,
    pub label: String,
    pub label_x: f64,
    pub label_y: f64,
    pub title: String,
    pub status: &'static str,
    pub href: String,
    /// Arrowhead at the peer end (the device initiates) and at the device end (the peer does).
    pub to_peer: bool,
    pub to_device: bool,
    /// The device node it leaves (a group id, or `zone/profile` when collapsed) and the peer
    /// node's text (`this firewall` for the firewall's own services).
    pub group: String,
    pub peer: String,
}

/// A peer node: where it is (a zone id, empty for outside, `@firewall`), and its text.
type PeerKey = (String, String);

/// Where a peer is: the zone whose networks hold every prefix of it, else outside.
fn place(policy: &Policy, r: &Rule) -> String {
    let inside = |n: &IpNet| {
        policy
            .zones
            .iter()
            .find(|z| z.networks.iter().any(|zn| zn.contains(n)))
            .map(|z| z.id.clone())
    };
    if !r.peers.names.is_empty() || !r.peers.wildcards.is_empty() || r.peers.prefixes.is_empty() {
        return String::new();
    }
    let zones: BTreeSet<Option<String>> = r.peers.prefixes.iter().map(inside).collect();
    match zones.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(z)] => z.clone(),
        _ => String::new(),
    }
}

#[derive(Default)]
struct EdgeAcc {
    labels: Vec<String>,
    flows: Vec<String>,
    status: &'static str,
    to_peer: bool,
    to_device: bool,
    href: String,
}

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| match s {
        "red" => 3,
        "grey" => 2,
        "green" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn cut(s: &str) -> String {
    cut_to(s, LABEL_MAX)
}

/// A device node's name (12 px) in its box: fewer characters than a label of 10 px.
const GROUP_LABEL_MAX: usize = 29;

fn cut_to(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Lays the diagram out for `policy`, with the flow statuses and anchors of `page`.
pub fn diagram(policy: &Policy, page: &Page) -> Diagram {
    let collapsed = policy.groups.len() > COLLAPSE_AT;
    // Status and anchor of each (group, flow), from the page.
    let mut flow_info: BTreeMap<(&str, &str), (&'static str, &str)> = BTreeMap::new();
    for g in &page.groups {
        for f in &g.flows {
            flow_info.insert(
                (g.id.as_str(), f.id.as_str()),
                (f.status, f.anchor.as_str()),
            );
        }
    }
    // Left layer: device nodes by zone, in the site's order.
    let mut left: Vec<(String, Vec<LeftNode>)> = policy
        .zones
        .iter()
        .map(|z| (z.id.clone(), Vec::new()))
        .collect();
    let mut node_of_group: BTreeMap<&str, String> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for g in &policy.groups {
        let key = if collapsed {
            format!("{}/{}", g.zone, g.profile)
        } else {
            g.id.clone()
        };
        node_of_group.insert(g.id.as_str(), key.clone());
        let n = counts.entry(key.clone()).or_default();
        *n += 1;
        if *n > 1 {
            continue;
        }
        let zi = match left.iter().position(|(z, _)| *z == g.zone) {
            Some(i) => i,
            None => {
                left.push((g.zone.clone(), Vec::new()));
                left.len() - 1
            }
        };
        let (label, sub, href) = if collapsed {
            (g.profile.clone(), String::new(), String::new())
        } else {
            let addrs: Vec<String> = g.addresses.iter().map(crate::view::net_text).collect();
            (
                g.id.clone(),
                format!("{} · {}", g.profile, addrs.join(", ")),
                format!("#group-{}", g.id),
            )
        };
        left[zi].1.push(LeftNode {
            key,
            label,
            sub,
            href,
        });
    }
    let groups: std::collections::HashMap<&str, &portolan_model::ir::Group> =
        policy.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    // Edges keyed by (device node, peer node); peer nodes keyed by (place, text).
    let mut edges: BTreeMap<(String, (String, String)), EdgeAcc> = BTreeMap::new();
    let mut peer_roles: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut edge_order: Vec<(String, (String, String))> = Vec::new();
    for r in &policy.rules {
        let Some(dev) = node_of_group.get(r.group.as_str()) else {
            continue;
        };
        let group = groups.get(r.group.as_str()).copied();
        let pflow = group.and_then(|g| {
            let p = policy.profiles.get(&g.profile)?;
            crate::view::flow_of(p, g.mode.as_deref(), &r.flow)
        });
        let role = pflow
            .map(|f| {
                if f.from == "device" {
                    f.to.clone()
                } else {
                    f.from.clone()
                }
            })
            .unwrap_or_default();
        let peer = if r.peers.firewall && r.peers.prefixes.is_empty() {
            (FIREWALL.to_string(), "this firewall".to_string())
        } else if collapsed {
            (place(policy, r), role.clone())
        } else {
            (place(policy, r), peers_of(r))
        };
        {
            peer_roles.entry(peer.clone()).or_default().insert(role);
        }
        let key = (dev.clone(), peer);
        let acc = edges.entry(key.clone()).or_insert_with(|| {
            edge_order.push(key.clone());
            EdgeAcc::default()
        });
        let (status, anchor) = flow_info
            .get(&(r.group.as_str(), r.flow.as_str()))
            .copied()
            .unwrap_or(("none", ""));
        let label = traffic_of(r);
        if !acc.labels.contains(&label) {
            acc.labels.push(label);
        }
        if !acc.flows.contains(&r.flow) {
            acc.flows.push(r.flow.clone());
        }
        acc.status = worse(acc.status, status);
        if acc.href.is_empty() {
            acc.href = format!("#{anchor}");
        }
        match r.initiator {
            Initiator::Device => acc.to_peer = true,
            Initiator::Peer => acc.to_device = true,
        }
    }
    // Place the left layer.
    let mut clusters = Vec::new();
    let mut nodes = Vec::new();
    let mut y_of: BTreeMap<String, f64> = BTreeMap::new();
    let mut y = TOP;
    for (zone, members) in &left {
        if members.is_empty() {
            continue;
        }
        let z = policy.zone(zone);
        let h = ZONE_HEAD + members.len() as f64 * ROW + 6.0;
        clusters.push(Cluster {
            kind: "zone",
            rect: Rect {
                x: LEFT_X,
                y,
                w: LEFT_W,
                h,
            },
            title: match z.and_then(|z| z.interface.as_deref()) {
                Some(i) => format!("zone {zone} ({i})"),
                None => format!("zone {zone}"),
            },
            subtitle: z
                .map(|z| {
                    z.networks
                        .iter()
                        .map(crate::view::net_text)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        });
        let mut ny = y + ZONE_HEAD;
        for LeftNode {
            key,
            label,
            sub,
            href,
        } in members
        {
            // Collapsed: the profile, and its count below it (a long profile id and the
            // count would not fit one line of the node).
            let sub = if collapsed {
                let n = counts.get(key).copied().unwrap_or(1);
                format!("{n} group{} of this profile", if n == 1 { "" } else { "s" })
            } else {
                sub.clone()
            };
            nodes.push(Node {
                rect: Rect {
                    x: LEFT_X + 8.0,
                    y: ny,
                    w: LEFT_W - 16.0,
                    h: NODE_H,
                },
                label: cut_to(label, GROUP_LABEL_MAX),
                subtitle: cut(&sub),
                kind: "group",
                href: href.clone(),
            });
            y_of.insert(key.clone(), ny + NODE_H / 2.0);
            ny += ROW;
        }
        y += h + ZONE_GAP;
    }
    let left_bottom = y;
    // Right layer: peers by place, ordered by barycenter.
    let mut bary: BTreeMap<(String, String), (f64, usize)> = BTreeMap::new();
    for (dev, peer) in edges.keys() {
        let e = bary.entry(peer.clone()).or_default();
        e.0 += y_of.get(dev).copied().unwrap_or(0.0);
        e.1 += 1;
    }
    let mean = |(s, n): (f64, usize)| if n == 0 { 0.0 } else { s / n as f64 };
    let mut places: BTreeMap<String, Vec<(PeerKey, f64)>> = BTreeMap::new();
    for (peer, b) in &bary {
        places
            .entry(peer.0.clone())
            .or_default()
            .push((peer.clone(), mean(*b)));
    }
    let mut place_order: Vec<(String, f64)> = places
        .iter()
        .map(|(p, v)| {
            (
                p.clone(),
                v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64,
            )
        })
        .collect();
    // The firewall's own services first (they are nearest to it), then by barycenter.
    place_order.sort_by(|a, b| {
        (b.0 == FIREWALL)
            .cmp(&(a.0 == FIREWALL))
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    // The arrows arriving at each peer, by the height they leave their device at: each its
    // own lane, so that they do not cross at the end.
    let mut arriving: BTreeMap<PeerKey, Vec<usize>> = BTreeMap::new();
    for (i, (dev, peer)) in edge_order.iter().enumerate() {
        arriving.entry(peer.clone()).or_default().push(i);
        let _ = dev;
    }
    for list in arriving.values_mut() {
        list.sort_by(|a, b| {
            let ya = y_of.get(&edge_order[*a].0).copied().unwrap_or(0.0);
            let yb = y_of.get(&edge_order[*b].0).copied().unwrap_or(0.0);
            ya.total_cmp(&yb).then(a.cmp(b))
        });
    }
    let node_h = |peer: &PeerKey| {
        let k = arriving.get(peer).map_or(1, Vec::len) as f64;
        NODE_H.max(k * LANE + 6.0)
    };
    let mut lane_y: Vec<f64> = vec![TOP; edge_order.len()];
    let mut y = TOP;
    for (place, _) in &place_order {
        let mut members = places.get(place).cloned().unwrap_or_default();
        members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let h = ZONE_HEAD
            + members
                .iter()
                .map(|(p, _)| node_h(p) + ROW - NODE_H)
                .sum::<f64>()
            + 6.0;
        let (title, subtitle) = if place == FIREWALL {
            (
                "the firewall itself".to_string(),
                "services it answers".to_string(),
            )
        } else if place.is_empty() {
            (
                "outside the site's zones".to_string(),
                "Internet, vendors' clouds".to_string(),
            )
        } else {
            (format!("peers in zone {place}"), String::new())
        };
        clusters.push(Cluster {
            kind: "peers",
            rect: Rect {
                x: RIGHT_X,
                y,
                w: RIGHT_W,
                h,
            },
            title,
            subtitle,
        });
        let mut ny = y + ZONE_HEAD;
        for (peer, _) in members {
            let roles: Vec<String> = peer_roles
                .get(&peer)
                .map(|r| r.iter().filter(|x| !x.is_empty()).cloned().collect())
                .unwrap_or_default();
            let (label, subtitle) = if collapsed && place != FIREWALL {
                (peer.1.clone(), "bound per group".to_string())
            } else {
                (peer.1.clone(), roles.join(", "))
            };
            let nh = node_h(&peer);
            nodes.push(Node {
                rect: Rect {
                    x: RIGHT_X + 8.0,
                    y: ny,
                    w: RIGHT_W - 16.0,
                    h: nh,
                },
                label: cut(&label),
                subtitle: cut(&subtitle),
                kind: "peer",
                href: String::new(),
            });
            if let Some(list) = arriving.get(&peer) {
                let first = ny + (nh - LANE * (list.len() as f64 - 1.0)) / 2.0;
                for (lane, i) in list.iter().enumerate() {
                    lane_y[*i] = first + LANE * lane as f64;
                }
            }
            ny += nh + ROW - NODE_H;
        }
        y += h + ZONE_GAP;
    }
    let bottom = left_bottom.max(y).max(TOP + 120.0);
    let firewall = Rect {
        x: FW_X,
        y: TOP,
        w: FW_W,
        h: bottom - TOP - ZONE_GAP,
    };
    // Edges, in the order the rules first produced them: along the device's row through the
    // firewall bar, a curve to the arrow's lane, then straight under its label to the peer.
    let mut out = Vec::with_capacity(edge_order.len());
    for (i, key) in edge_order.iter().enumerate() {
        let Some(acc) = edges.get(key) else { continue };
        let y0 = y_of.get(&key.0).copied().unwrap_or(TOP);
        let y1 = lane_y[i];
        let x0 = LEFT_X + LEFT_W - 8.0;
        let fw_right = FW_X + FW_W;
        let xs = RIGHT_X - LABEL_COL;
        let x1 = RIGHT_X + 8.0;
        let bend = (xs - fw_right) / 2.0;
        let full = format!("{}: {}", acc.flows.join(", "), acc.labels.join(", "));
        out.push(Edge {
            path: format!(
                "M {x0:.1} {y0:.1} L {fw_right:.1} {y0:.1} C {:.1} {y0:.1}, {:.1} {y1:.1}, {xs:.1} {y1:.1} L {x1:.1} {y1:.1}",
                fw_right + bend,
                xs - bend
            ),
            label: cut(&acc.labels.join(", ")),
            label_x: RIGHT_X - 4.0,
            label_y: y1 - 3.0,
            title: full,
            status: if acc.status.is_empty() { "none" } else { acc.status },
            href: acc.href.clone(),
            to_peer: acc.to_peer,
            to_device: acc.to_device,
            group: key.0.clone(),
            peer: key.1 .1.clone(),
        });
    }
    Diagram {
        width: WIDTH,
        height: bottom,
        collapsed,
        clusters,
        nodes,
        firewall,
        edges: out,
    }
}

/// A node of the device layer before it is placed.
struct LeftNode {
    key: String,
    label: String,
    sub: String,
    href: String,
}
