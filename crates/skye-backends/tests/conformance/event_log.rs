//! The [`EventLog`] contract (see `skye_core::event_log`).

use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::{EmbeddedEventLog, LogLimits};
use skye_core::error::{ErrorCode, HasErrorCode};
use skye_core::event_log::{EventLog, Produce, next_offsets};

/// Long enough for a broker to assign partitions to a new group member.
const WAIT: Duration = Duration::from_secs(20);

fn rec(topic: &str, key: &str, value: &str) -> Produce {
    Produce::new(topic, key, value.as_bytes().to_vec())
}

/// Every case, on topics named under `root`.
pub async fn run_suite(log: Arc<dyn EventLog>, root: &str) {
    produce_assigns_offsets_in_order_and_keys_stick(&*log, &format!("{root}.keys")).await;
    a_group_resumes_after_its_commit(&*log, &format!("{root}.resume")).await;
    seek_redelivers(&*log, &format!("{root}.seek")).await;
    poll_waits_for_new_records(log.clone(), &format!("{root}.wait")).await;
    bad_input_is_refused(&*log, &format!("{root}.bad")).await;
    read_needs_no_group(&*log, &format!("{root}.read")).await;
}

async fn read_needs_no_group(log: &dyn EventLog, topic: &str) {
    assert!(
        log.read(topic, 0, 0, 10).await.unwrap().is_empty(),
        "unknown topic"
    );
    log.ensure_topic(topic, 1).await.unwrap();
    let batch: Vec<_> = (0..5).map(|i| rec(topic, "k", &i.to_string())).collect();
    log.produce(batch).await.unwrap();
    let some = log.read(topic, 0, 1, 2).await.unwrap();
    let offsets: Vec<u64> = some.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![1, 2]);
    assert_eq!(some[0].value, b"1".to_vec());
    assert_eq!(log.read(topic, 0, 0, 100).await.unwrap().len(), 5);
    assert!(
        log.read(topic, 0, 5, 10).await.unwrap().is_empty(),
        "at the end"
    );
    assert_eq!(
        log.partitions(topic).await.unwrap(),
        Some(1),
        "reading created nothing"
    );
}

async fn produce_assigns_offsets_in_order_and_keys_stick(log: &dyn EventLog, topic: &str) {
    assert_eq!(
        log.partitions(topic).await.unwrap(),
        None,
        "asking about a topic does not create it"
    );
    assert_eq!(log.ensure_topic(topic, 4).await.unwrap(), 4);
    assert_eq!(log.partitions(topic).await.unwrap(), Some(4));
    assert_eq!(
        log.ensure_topic(topic, 9).await.unwrap(),
        4,
        "existing topic keeps its partitions"
    );
    let batch: Vec<_> = (0..40)
        .map(|i| rec(topic, &format!("k{}", i % 5), &i.to_string()))
        .collect();
    let assigned = log.produce(batch).await.unwrap();
    assert_eq!(assigned.len(), 40);
    for i in 0..40 {
        assert_eq!(assigned[i].0, assigned[i % 5].0, "same key, same partition");
    }
    let mut sub = log
        .subscribe(&format!("{topic}.g"), &[topic])
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 40 {
        let got = sub.poll(7, WAIT).await.unwrap();
        assert!(!got.is_empty(), "records missing: saw {}", seen.len());
        seen.extend(got);
    }
    for p in 0..4 {
        let offsets: Vec<u64> = seen
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        let expected: Vec<u64> = (0..offsets.len() as u64).collect();
        assert_eq!(offsets, expected, "partition {p} delivered in offset order");
    }
    let values: Vec<u32> = seen
        .iter()
        .filter(|r| r.key == "k3")
        .map(|r| std::str::from_utf8(&r.value).unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        values,
        [3, 8, 13, 18, 23, 28, 33, 38],
        "one key's records keep their order"
    );
}

async fn a_group_resumes_after_its_commit(log: &dyn EventLog, topic: &str) {
    log.produce((0..10).map(|i| rec(topic, "", &i.to_string())).collect())
        .await
        .unwrap();
    let group = format!("{topic}.g");
    {
        let mut sub = log.subscribe(&group, &[topic]).await.unwrap();
        let first = sub.poll(4, WAIT).await.unwrap();
        assert_eq!(first.len(), 4);
        sub.commit(&next_offsets(&first)).await.unwrap();
        // Polled but not committed: must come back after the member leaves.
        let second = sub.poll(3, WAIT).await.unwrap();
        assert_eq!(second[0].offset, 4);
    }
    assert_eq!(log.committed(&group, topic, 0).await.unwrap(), Some(4));
    let mut again = log.subscribe(&group, &[topic]).await.unwrap();
    let got = again.poll(100, WAIT).await.unwrap();
    let offsets: Vec<u64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (4..10).collect::<Vec<_>>());
    // Another group starts at the oldest retained record: nothing that g-resume has not yet
    // committed past may be gone.
    let mut other = log
        .subscribe(&format!("{topic}.other"), &[topic])
        .await
        .unwrap();
    assert!(other.poll(1, WAIT).await.unwrap()[0].offset <= 4);
}

async fn seek_redelivers(log: &dyn EventLog, topic: &str) {
    log.produce((0..3).map(|i| rec(topic, "", &i.to_string())).collect())
        .await
        .unwrap();
    let mut sub = log
        .subscribe(&format!("{topic}.g"), &[topic])
        .await
        .unwrap();
    let got = sub.poll(10, WAIT).await.unwrap();
    assert_eq!(got.len(), 3);
    sub.seek(topic, 0, 1).await.unwrap();
    let again = sub.poll(10, WAIT).await.unwrap();
    assert_eq!(again.iter().map(|r| r.offset).collect::<Vec<_>>(), [1, 2]);
}

async fn poll_waits_for_new_records(log: Arc<dyn EventLog>, topic: &str) {
    log.ensure_topic(topic, 1).await.unwrap();
    let mut sub = log
        .subscribe(&format!("{topic}.g"), &[topic])
        .await
        .unwrap();
    let empty = sub.poll(10, Duration::from_millis(50)).await.unwrap();
    assert!(
        empty.is_empty(),
        "poll on an empty topic times out with nothing"
    );
    let producer = log.clone();
    let t = topic.to_string();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut r = rec(&t, "k", "late");
        r.headers.push(("h".into(), "v".into()));
        producer.produce(vec![r]).await.unwrap();
    });
    let got = sub.poll(10, WAIT).await.unwrap();
    handle.await.unwrap();
    assert_eq!(got.len(), 1, "a waiting poll wakes on produce");
    assert_eq!(got[0].value, b"late");
    assert_eq!(got[0].header("h"), Some("v"));
}

async fn bad_input_is_refused(log: &dyn EventLog, topic: &str) {
    assert!(log.ensure_topic("bad topic!", 1).await.is_err());
    assert!(log.ensure_topic(topic, 0).await.is_err());
    log.ensure_topic(topic, 2).await.unwrap();
    let mut r = rec(topic, "", "x");
    r.partition = Some(2);
    assert!(
        log.produce(vec![r]).await.is_err(),
        "partition out of range"
    );
    assert_eq!(
        log.end_offset(topic, 0).await.unwrap(),
        0,
        "a refused batch writes nothing"
    );
}

#[tokio::test]
async fn embedded_event_log_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedEventLog::open(&dir.path().join("events.redb")).unwrap());
    run_suite(log, "conf").await;
}

#[tokio::test]
async fn embedded_event_log_keeps_records_and_offsets_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    {
        let log = EmbeddedEventLog::open(&path).unwrap();
        log.produce((0..5).map(|i| rec("t", "", &i.to_string())).collect())
            .await
            .unwrap();
        let mut sub = log.subscribe("g", &["t"]).await.unwrap();
        let got = sub.poll(2, WAIT).await.unwrap();
        sub.commit(&next_offsets(&got)).await.unwrap();
    }
    let log = EmbeddedEventLog::open(&path).unwrap();
    assert_eq!(log.end_offset("t", 0).await.unwrap(), 5);
    let mut sub = log.subscribe("g", &["t"]).await.unwrap();
    let got = sub.poll(10, WAIT).await.unwrap();
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [2, 3, 4]);
    let next = log.produce(vec![rec("t", "", "5")]).await.unwrap();
    assert_eq!(next, [(0, 5)], "offsets continue after a reopen");
}

#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_event_log_conformance() {
    use skye_backends::kafka::{KafkaConfig, KafkaEventLog};
    let Some(brokers) = crate::service("SKYE_TEST_KAFKA_BROKERS", "kafka_event_log_conformance")
    else {
        return;
    };
    let mut config = KafkaConfig::new(brokers);
    // Tansu forms groups after about session.timeout / 2 (INFRA.md §3).
    config.session_timeout_ms = 6_000;
    config.max_poll_interval_ms = 10_000;
    let log = Arc::new(KafkaEventLog::new(config).unwrap());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    run_suite(log, &format!("conf{nanos}")).await;
}

/// The limits the retention tests use: 5 records kept of a topic nobody reads, 20 unread ones
/// at most.
const SMALL: LogLimits = LogLimits {
    retained_records: 5,
    max_backlog_records: 20,
};

#[tokio::test]
async fn embedded_event_log_caps_partitions_nobody_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedEventLog::open_with(&dir.path().join("events.redb"), SMALL).unwrap();
    for i in 0..12 {
        log.produce(vec![rec("failures", "", &i.to_string())])
            .await
            .unwrap();
    }
    assert_eq!(
        log.end_offset("failures", 0).await.unwrap(),
        12,
        "offsets keep counting"
    );
    let mut sub = log.subscribe("late", &["failures"]).await.unwrap();
    let got = sub.poll(100, WAIT).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [7, 8, 9, 10, 11],
        "only the newest 5 are kept"
    );
}

/// Retention never deletes what a group that reads the topic has not committed (however far it
/// is behind, as a reset job's consumers that were stopped); past the backlog cap a produce is
/// refused whole, and goes through again once the group catches up.
#[tokio::test]
async fn embedded_event_log_never_drops_what_a_group_has_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let log = EmbeddedEventLog::open_with(&path, SMALL).unwrap();
    // The consumers subscribed once (at start) and are now stopped.
    drop(log.subscribe("g", &["jobs"]).await.unwrap());
    for i in 0..12 {
        log.produce(vec![rec("jobs", "", &i.to_string())])
            .await
            .unwrap();
    }
    drop(log);
    let log = EmbeddedEventLog::open_with(&path, SMALL).unwrap();
    let mut sub = log.subscribe("g", &["jobs"]).await.unwrap();
    let got = sub.poll(100, WAIT).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..12).collect::<Vec<u64>>(),
        "every record the group has not read is kept, past the size bound and a reopen"
    );
    // 12 unread: 8 more fit under the cap of 20, the next one is refused whole.
    log.produce((12..20).map(|i| rec("jobs", "", &i.to_string())).collect())
        .await
        .unwrap();
    let e = log
        .produce(vec![rec("jobs", "", "20"), rec("other", "", "x")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ResourceExhausted);
    assert!(
        e.to_string().contains("jobs/0") && e.to_string().contains("'g'"),
        "{e}"
    );
    assert_eq!(
        log.end_offset("jobs", 0).await.unwrap(),
        20,
        "nothing written"
    );
    assert_eq!(log.refused_produces(), 1);
    // The group catches up: the produce goes through and the read records go.
    sub.commit(&next_offsets(&got)).await.unwrap();
    log.produce(vec![rec("jobs", "", "20")]).await.unwrap();
    let rest = sub.poll(100, WAIT).await.unwrap();
    assert_eq!(rest.first().map(|r| r.offset), Some(12));
    assert_eq!(rest.len(), 9);
}
