//! Audit as a Kafka consumer group, the way flow pipelines already run: exporters → a
//! collector (goflow2, or `portolan audit --listen … --to kafka://…`) → a Kafka topic → as many
//! `portolan audit SITE --from kafka://… --group NAME` workers as the load needs.
//!
//! [`goflow`] reads goflow2's `FlowMessage` (protobuf and JSON); [`worker`] is the consumer
//! group member (per-partition state, windows, at-least-once commits, dead letters);
//! [`finding`] the findings it produces and their stable ids; [`ledger`] which offsets may be
//! committed, given the deliveries of the findings; [`collector`] the producer side.
//! Flows are judged by `portolan_audit`'s matcher, DNS names kept by its name table, Zeek
//! lines read by its reader, and goflow2 records folded by its record folder: this crate only
//! moves records and findings.
//!
//! This is the only crate (with the cli) that links librdkafka.

pub mod collector;
pub mod finding;
pub mod goflow;
pub mod ledger;
pub mod worker;

/// The Kafka client this crate is built on, for the cli's tests and benchmarks (one librdkafka
/// in the build).
pub use rdkafka;

/// A `KEY=VALUE` librdkafka property (`--kafka-option`): the key's characters as librdkafka
/// names its properties (letters, digits, `.`, `_`, `-`), the value anything.
pub fn parse_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: write KEY=VALUE, e.g. fetch.wait.max.ms=10"))?;
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!("`{s}`: `{k}` is not a librdkafka property name"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A `kafka://BROKERS/TOPIC` address: brokers (`host:port`, comma-separated) and the topic.
pub fn parse_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("kafka://")
        .ok_or_else(|| format!("`{url}`: write kafka://HOST:PORT[,HOST:PORT...]/TOPIC"))?;
    let (brokers, topic) = rest
        .split_once('/')
        .ok_or_else(|| format!("`{url}`: the topic is missing (kafka://HOST:PORT/TOPIC)"))?;
    if brokers.is_empty() || brokers.split(',').any(|b| !b.contains(':')) {
        return Err(format!("`{url}`: give each broker as HOST:PORT"));
    }
    // Kafka topic names: [a-zA-Z0-9._-], 1 to 249 characters.
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "`{url}`: the topic `{topic}` is not a Kafka topic name ([a-zA-Z0-9._-], 1 to 249)"
        ));
    }
    Ok((brokers.to_string(), topic.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(
            parse_option("fetch.wait.max.ms=100"),
            Ok(("fetch.wait.max.ms".into(), "100".into()))
        );
        // The value may hold `=`; only the first splits.
        assert_eq!(
            parse_option("sasl.jaas=a=b"),
            Ok(("sasl.jaas".into(), "a=b".into()))
        );
        assert!(parse_option("fetch").is_err());
        assert!(parse_option("=1").is_err());
        assert!(parse_option("a b=1").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("kafka://127.0.0.1:9092,10.0.0.2:9092/flows"),
            Ok(("127.0.0.1:9092,10.0.0.2:9092".into(), "flows".into()))
        );
        assert!(parse_url("kafka://127.0.0.1:9092").is_err());
        assert!(parse_url("kafka://127.0.0.1/flows").is_err());
        assert!(parse_url("udp://127.0.0.1:9092/flows").is_err());
        assert!(parse_url("kafka://127.0.0.1:9092/fl ows").is_err());
    }
}
