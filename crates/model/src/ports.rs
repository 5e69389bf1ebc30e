//! Port specifications: a single port, a list, an inclusive range, a reference to a param
//! (`{telemetry_port}`), or the explicit statement that the source does not give the port.

use std::fmt;

use serde::{Serialize, Serializer};

/// One element of a port list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortItem {
    Single(u16),
    /// Inclusive; `lo < hi` is guaranteed by validation.
    Range(u16, u16),
    /// A param of type `port` or `ports`, set by the site.
    Param(String),
}

impl fmt::Display for PortItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortItem::Single(p) => write!(f, "{p}"),
            PortItem::Range(a, b) => write!(f, "{a}-{b}"),
            PortItem::Param(p) => write!(f, "{{{p}}}"),
        }
    }
}

/// The ports of a flow (destination, or source with `src_ports`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// The protocol has no ports (ESP, ICMP, …), or none were given where they are optional.
    #[default]
    None,
    /// The source document does not say; the site must supply the value.
    Unspecified,
    /// Never empty.
    List(Vec<PortItem>),
}

impl PortSpec {
    /// The spec as display strings: `["443"]`, `["3001-3003"]`, `["{p}"]`, `["unspecified"]`.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            PortSpec::None => Vec::new(),
            PortSpec::Unspecified => vec!["unspecified".to_string()],
            PortSpec::List(items) => items.iter().map(ToString::to_string).collect(),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, PortSpec::None)
    }

    /// Whether a concrete port is covered by the literal items (params are not resolved here).
    pub fn contains(&self, port: u16) -> bool {
        match self {
            PortSpec::List(items) => items.iter().any(|i| match i {
                PortItem::Single(p) => *p == port,
                PortItem::Range(a, b) => (*a..=*b).contains(&port),
                PortItem::Param(_) => false,
            }),
            _ => false,
        }
    }

    /// The params the spec refers to.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        let items: &[PortItem] = match self {
            PortSpec::List(items) => items,
            _ => &[],
        };
        items.iter().filter_map(|i| match i {
            PortItem::Param(p) => Some(p.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::None => f.write_str("-"),
            other => f.write_str(&other.to_strings().join(",")),
        }
    }
}

impl Serialize for PortItem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortItem::Single(p) => s.serialize_u16(*p),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl Serialize for PortSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PortSpec::None => s.serialize_none(),
            PortSpec::Unspecified => s.serialize_str("unspecified"),
            PortSpec::List(items) if items.len() == 1 => items[0].serialize(s),
            PortSpec::List(items) => items.serialize(s),
        }
    }
}

/// Why one port item could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum PortError {
    OutOfRange(i64),
    Reversed(u16, u16),
    Syntax(String),
}

/// Reads one item: `443`, `"443"`, `"3001-3003"` or `"{param}"`.
pub fn parse_item(text: &str) -> Result<PortItem, PortError> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        if crate::syntax::is_ident(inner) {
            return Ok(PortItem::Param(inner.to_string()));
        }
        return Err(PortError::Syntax(t.to_string()));
    }
    if let Some((a, b)) = t.split_once('-') {
        let a = parse_port(a)?;
        let b = parse_port(b)?;
        return match a.cmp(&b) {
            std::cmp::Ordering::Less => Ok(PortItem::Range(a, b)),
            std::cmp::Ordering::Equal => Ok(PortItem::Single(a)),
            std::cmp::Ordering::Greater => Err(PortError::Reversed(a, b)),
        };
    }
    parse_port(t).map(PortItem::Single)
}

fn parse_port(t: &str) -> Result<u16, PortError> {
    let n: i64 = t
        .trim()
        .parse()
        .map_err(|_| PortError::Syntax(t.trim().to_string()))?;
    port_number(n)
}

/// A number as a port: 1..=65535.
pub fn port_number(n: i64) -> Result<u16, PortError> {
    match u16::try_from(n) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(PortError::OutOfRange(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        assert_eq!(parse_item("443"), Ok(PortItem::Single(443)));
        assert_eq!(parse_item("3001-3003"), Ok(PortItem::Range(3001, 3003)));
        assert_eq!(parse_item("{p_1}"), Ok(PortItem::Param("p_1".into())));
        assert_eq!(parse_item("0"), Err(PortError::OutOfRange(0)));
        assert_eq!(parse_item("65536"), Err(PortError::OutOfRange(65536)));
        assert_eq!(parse_item("9-3"), Err(PortError::Reversed(9, 3)));
        assert!(matches!(parse_item("http"), Err(PortError::Syntax(_))));
        assert!(matches!(parse_item("{a b}"), Err(PortError::Syntax(_))));
    }

    #[test]
    fn contains_and_strings() {
        let s = PortSpec::List(vec![PortItem::Single(22), PortItem::Range(3001, 3003)]);
        assert!(s.contains(3002) && s.contains(22) && !s.contains(3004));
        assert_eq!(s.to_strings(), vec!["22", "3001-3003"]);
        assert_eq!(PortSpec::Unspecified.to_strings(), vec!["unspecified"]);
        assert!(PortSpec::None.to_strings().is_empty());
    }
}
