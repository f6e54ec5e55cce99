//! Re-driving failure records: picks in any order, runs read together, a missing one refusing
//! the whole call before anything is produced.

use skye_backends::embedded::EmbeddedEventLog;
use skye_core::event_log::{EventLog, Produce, topics};
use skye_engine::ingest::failures::{FailureError, redrive};

#[tokio::test]
async fn picks_come_back_in_the_order_asked_and_a_missing_one_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedEventLog::open(&dir.path().join("events.redb")).unwrap();
    let failed: Vec<Produce> = (0..6)
        .map(|i| {
            let mut p = Produce::new(topics::EMBEDDING_FAILURE, "k", format!("e{i}").into_bytes());
            p.headers = vec![
                ("skye-error".into(), "bad".into()),
                ("skye-source-topic".into(), topics::EMBEDDING.into()),
                ("trace".into(), "t".into()),
            ];
            p
        })
        .collect();
    log.produce(failed).await.unwrap();

    let missing = redrive(&log, topics::EMBEDDING_FAILURE, &[(0, 1), (0, 60)]).await;
    assert!(
        matches!(missing, Err(FailureError::NotFound(_))),
        "{missing:?}"
    );
    assert_eq!(
        log.partitions(topics::EMBEDDING).await.unwrap(),
        None,
        "nothing sent"
    );

    let sent = redrive(&log, topics::EMBEDDING_FAILURE, &[(0, 4), (0, 1), (0, 4)])
        .await
        .unwrap();
    let from: Vec<u64> = sent.iter().map(|r| r.offset).collect();
    assert_eq!(from, vec![4, 1, 4]);
    let back = log.read(topics::EMBEDDING, 0, 0, 10).await.unwrap();
    let values: Vec<&[u8]> = back.iter().map(|r| r.value.as_slice()).collect();
    assert_eq!(values, vec![b"e4".as_slice(), b"e1", b"e4"]);
    for r in &back {
        assert_eq!(r.header("skye-error"), None);
        assert_eq!(r.header("skye-source-topic"), None);
        assert_eq!(r.header("trace"), Some("t"));
        assert!(r.header("skye-redriven-from").is_some());
    }
}
