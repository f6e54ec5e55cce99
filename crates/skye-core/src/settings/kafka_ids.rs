//! The original's per-id Kafka blocks (spec AC §6.2, §6.3), mapped onto Skye's settings so an
//! existing deployment's environment works unchanged:
//!
//! * `EMBEDDING_CONSUMER_KAFKA_IDS`, `EMBEDDING_CONSUMER_SEQUENCE_KAFKA_IDS` → the embedding
//!   consumer: the union of their `KAFKA_<id>_TOPICS`, the first id's `GROUP_ID`;
//! * `REALTIME_CONSUMER_KAFKA_IDS` → the real-time consumer, likewise;
//! * `REALTIME_DELTA_CONSUMER_KAFKA_ID` → the delta consumer's `GROUP_ID` (its topic is Skye's
//!   delta topic);
//! * every referenced block's `BOOTSTRAP_SERVERS` (and the producers'
//!   `KAFKA_PRODUCER_<id>_BOOTSTRAP_SERVERS` of `REALTIME_PRODUCER_KAFKA_ID` and
//!   `REALTIME_DELTA_PRODUCER_KAFKA_ID`) → the one cluster Skye talks to; blocks that disagree
//!   are an error, as are their SASL settings;
//! * `BATCH_SIZE` → the smallest one, for every consumer.
//!
//! Accepted and not used: `AUTO_OFFSET_RESET` (a new group starts at the earliest record),
//! `ENABLE_AUTO_COMMIT` and `AUTO_COMMIT_INTERVAL_MS` (Skye commits after applying a batch),
//! `LISTENER_CONCURRENCY`, `CLIENT_ID`, `POLL_TIMEOUT`, `RE_BALANCE_ENABLE`,
//! `BASIC_AUTH_CREDENTIAL_SOURCE`, producer `TOPICS` (Skye's topic names are fixed).

use std::collections::BTreeMap;

use super::Settings;
use crate::error::ValidationErrors;
use crate::event_log::topics;

/// The variables of the per-id scheme seen while reading the environment.
#[derive(Debug, Default)]
pub(super) struct KafkaIds {
    /// `KAFKA_<id>_<SUFFIX>` by id.
    consumers: BTreeMap<String, BTreeMap<String, String>>,
    /// `KAFKA_PRODUCER_<id>_<SUFFIX>` by id.
    producers: BTreeMap<String, BTreeMap<String, String>>,
    /// `EMBEDDING_CONSUMER_KAFKA_IDS` etc. by variable name.
    lists: BTreeMap<&'static str, Vec<String>>,
}

const LISTS: [&str; 6] = [
    "EMBEDDING_CONSUMER_KAFKA_IDS",
    "EMBEDDING_CONSUMER_SEQUENCE_KAFKA_IDS",
    "REALTIME_CONSUMER_KAFKA_IDS",
    "REALTIME_DELTA_CONSUMER_KAFKA_ID",
    "REALTIME_PRODUCER_KAFKA_ID",
    "REALTIME_DELTA_PRODUCER_KAFKA_ID",
];

impl KafkaIds {
    /// Takes `name` (upper-case) if it belongs to the scheme.
    pub(super) fn offer(&mut self, name: &str, value: &str) -> bool {
        if let Some(list) = LISTS.iter().find(|l| **l == name) {
            let ids = super::split_list(value)
                .into_iter()
                .filter(|id| id != "0")
                .collect();
            self.lists.insert(list, ids);
            return true;
        }
        let (map, rest) = if let Some(rest) = name.strip_prefix("KAFKA_PRODUCER_") {
            (&mut self.producers, rest)
        } else if let Some(rest) = name.strip_prefix("KAFKA_") {
            (&mut self.consumers, rest)
        } else {
            return false;
        };
        let Some((id, suffix)) = rest.split_once('_') else {
            return false;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        map.entry(id.to_string())
            .or_default()
            .insert(suffix.to_string(), value.trim().to_string());
        true
    }

    /// Applies the referenced blocks to `s`.
    pub(super) fn apply(self, s: &mut Settings, errors: &mut ValidationErrors) {
        let ids = |list: &str| self.lists.get(list).cloned().unwrap_or_default();
        let mut referenced: Vec<(String, &BTreeMap<String, String>)> = Vec::new();
        let mut block = |kind: &str, id: &str, list: &str, errors: &mut ValidationErrors| {
            let map = if kind == "KAFKA_PRODUCER_" {
                &self.producers
            } else {
                &self.consumers
            };
            match map.get(id) {
                Some(b) => {
                    referenced.push((format!("{kind}{id}_"), b));
                    Some(b)
                }
                None => {
                    errors.push(
                        format!("environment variable {list}"),
                        format!("names Kafka id {id}, but no {kind}{id}_* variables are set"),
                    );
                    None
                }
            }
        };

        // Consumers: topics and group per family.
        let mut family = |lists: &[&str], errors: &mut ValidationErrors| {
            let mut topics_out = Vec::new();
            let mut group = None;
            for list in lists {
                for id in ids(list) {
                    let Some(b) = block("KAFKA_", &id, list, errors) else {
                        continue;
                    };
                    for t in super::split_list(b.get("TOPICS").map_or("", String::as_str)) {
                        if !topics_out.contains(&t) {
                            topics_out.push(t);
                        }
                    }
                    if group.is_none() {
                        group = b.get("GROUP_ID").filter(|g| !g.is_empty()).cloned();
                    }
                }
            }
            (topics_out, group)
        };
        let (embedding_topics, embedding_group) = family(
            &[
                "EMBEDDING_CONSUMER_KAFKA_IDS",
                "EMBEDDING_CONSUMER_SEQUENCE_KAFKA_IDS",
            ],
            errors,
        );
        let (realtime_topics, realtime_group) = family(&["REALTIME_CONSUMER_KAFKA_IDS"], errors);
        let (delta_topics, delta_group) = family(&["REALTIME_DELTA_CONSUMER_KAFKA_ID"], errors);
        for list in [
            "REALTIME_PRODUCER_KAFKA_ID",
            "REALTIME_DELTA_PRODUCER_KAFKA_ID",
        ] {
            for id in ids(list) {
                block("KAFKA_PRODUCER_", &id, list, errors);
            }
        }
        if !embedding_topics.is_empty() {
            s.consumers.embedding_topics = embedding_topics;
        }
        if !realtime_topics.is_empty() {
            s.consumers.realtime_topics = realtime_topics;
        }
        if let Some(t) = delta_topics.iter().find(|t| *t != topics::REALTIME_DELTA) {
            errors.push(
                "environment variable REALTIME_DELTA_CONSUMER_KAFKA_ID",
                format!(
                    "its TOPICS names '{t}', but Skye's delta topic is '{}'",
                    topics::REALTIME_DELTA
                ),
            );
        }
        for (group, slot) in [
            (embedding_group, &mut s.consumers.embedding_group),
            (realtime_group, &mut s.consumers.realtime_group),
            (delta_group, &mut s.consumers.delta_group),
        ] {
            if let Some(g) = group {
                *slot = g;
            }
        }

        // One cluster, one security setting, one batch size.
        let agreed = |suffix: &str, current: &str, errors: &mut ValidationErrors| {
            let mut value: Option<(String, String)> =
                (!current.is_empty()).then(|| ("the settings".to_string(), current.to_string()));
            for (prefix, b) in &referenced {
                let Some(v) = b.get(suffix).filter(|v| !v.is_empty()) else {
                    continue;
                };
                match &value {
                    Some((from, seen)) if seen != v => errors.push(
                        format!("environment variable {prefix}{suffix}"),
                        format!(
                            "'{v}' differs from '{seen}' ({from}): Skye talks to one Kafka \
                             cluster per process with one security setting"
                        ),
                    ),
                    Some(_) => {}
                    None => value = Some((format!("{prefix}{suffix}"), v.clone())),
                }
            }
            value.map(|(_, v)| v)
        };
        let k = &mut s.backends.kafka;
        if let Some(v) = agreed("BOOTSTRAP_SERVERS", &k.broker.clone(), errors) {
            k.broker = v;
        }
        for (suffix, slot) in [
            ("SASL_USERNAME", &mut k.sasl_username),
            ("SASL_PASSWORD", &mut k.sasl_password),
            ("SASL_MECHANISM", &mut k.sasl_mechanism),
            ("SECURITY_PROTOCOL", &mut k.security_protocol),
        ] {
            if let Some(v) = agreed(suffix, &slot.clone(), errors) {
                *slot = v;
            }
        }
        let batch = referenced
            .iter()
            .filter_map(|(prefix, b)| b.get("BATCH_SIZE").map(|v| (prefix, v)))
            .filter_map(|(prefix, v)| match v.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(
                        format!("environment variable {prefix}BATCH_SIZE"),
                        format!("'{v}' is not a number"),
                    );
                    None
                }
            })
            .min();
        if let Some(n) = batch {
            s.consumers.batch_size = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::PortTarget;
    use super::*;

    fn apply(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let mut s = Settings::default();
        s.apply_env(vars.iter().copied(), PortTarget::Consumers)
            .map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn an_original_consumers_environment_configures_skye() {
        let s = apply(&[
            ("EMBEDDING_CONSUMER_KAFKA_IDS", "1"),
            ("EMBEDDING_CONSUMER_SEQUENCE_KAFKA_IDS", "2"),
            ("REALTIME_CONSUMER_KAFKA_IDS", "3"),
            ("REALTIME_DELTA_CONSUMER_KAFKA_ID", "4"),
            ("REALTIME_PRODUCER_KAFKA_ID", "1"),
            ("REALTIME_DELTA_PRODUCER_KAFKA_ID", "0"),
            ("KAFKA_1_TOPICS", "emb.a,emb.b"),
            ("KAFKA_1_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_1_GROUP_ID", "skye-emb"),
            ("KAFKA_1_BATCH_SIZE", "300"),
            ("KAFKA_1_AUTO_OFFSET_RESET", "latest"),
            ("KAFKA_1_SASL_MECHANISM", "PLAIN"),
            ("KAFKA_2_TOPICS", "emb.seq"),
            ("KAFKA_2_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_2_GROUP_ID", "skye-emb-seq"),
            ("KAFKA_3_TOPICS", "rt"),
            ("KAFKA_3_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_3_GROUP_ID", "skye-rt"),
            ("KAFKA_3_BATCH_SIZE", "200"),
            ("KAFKA_4_TOPICS", "skye.realtime-delta"),
            ("KAFKA_4_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_4_GROUP_ID", "skye-delta"),
            ("KAFKA_PRODUCER_1_TOPICS", "rt.retry"),
            ("KAFKA_PRODUCER_1_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
            ("KAFKA_9_TOPICS", "unreferenced blocks are ignored"),
            ("KAFKA_9_BOOTSTRAP_SERVERS", "elsewhere:9092"),
        ])
        .unwrap();
        assert_eq!(s.consumers.embedding_topics, ["emb.a", "emb.b", "emb.seq"]);
        assert_eq!(s.consumers.realtime_topics, ["rt"]);
        assert_eq!(
            (
                s.consumers.embedding_group.as_str(),
                s.consumers.realtime_group.as_str(),
                s.consumers.delta_group.as_str()
            ),
            ("skye-emb", "skye-rt", "skye-delta")
        );
        assert_eq!(s.backends.kafka.broker, "k1:9092,k2:9092");
        assert_eq!(s.backends.kafka.sasl_mechanism, "PLAIN");
        assert_eq!(s.consumers.batch_size, 200);
    }

    #[test]
    fn disagreeing_or_missing_blocks_are_reported() {
        let err = apply(&[
            ("EMBEDDING_CONSUMER_KAFKA_IDS", "1,2"),
            ("REALTIME_CONSUMER_KAFKA_IDS", "5"),
            ("REALTIME_DELTA_CONSUMER_KAFKA_ID", "6"),
            ("KAFKA_1_TOPICS", "a"),
            ("KAFKA_1_BOOTSTRAP_SERVERS", "k1:9092"),
            ("KAFKA_2_TOPICS", "b"),
            ("KAFKA_2_BOOTSTRAP_SERVERS", "other:9092"),
            ("KAFKA_2_BATCH_SIZE", "lots"),
            ("KAFKA_6_TOPICS", "my.delta"),
        ])
        .unwrap_err();
        for needle in [
            "KAFKA_2_BOOTSTRAP_SERVERS: 'other:9092' differs from 'k1:9092'",
            "KAFKA_2_BATCH_SIZE: 'lots' is not a number",
            "REALTIME_CONSUMER_KAFKA_IDS: names Kafka id 5, but no KAFKA_5_* variables are set",
            "its TOPICS names 'my.delta'",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
        // KAFKA_BROKER and the blocks must agree too.
        let err = apply(&[
            ("KAFKA_BROKER", "a:1"),
            ("EMBEDDING_CONSUMER_KAFKA_IDS", "1"),
            ("KAFKA_1_BOOTSTRAP_SERVERS", "b:1"),
        ])
        .unwrap_err();
        assert!(err.contains("differs from 'a:1' (the settings)"), "{err}");
        // The names Skye already reads keep their meaning.
        let s = apply(&[
            ("KAFKA_BROKER", "a:1"),
            ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.backends.kafka.broker.as_str(),
                s.backends.kafka.session_timeout_ms
            ),
            ("a:1", 6000)
        );
    }
}
