//! Unit tests of the embedded event log that need its internals.

use super::*;

fn rec(topic: &str, value: &str) -> Produce {
    Produce::new(topic.to_string(), "", value.as_bytes().to_vec())
}

const WAIT: Duration = Duration::from_millis(200);

/// A log of an older release: a group committed offset 2 of `t`, then size retention
/// deleted records 0..5 (it did not wait for groups). The group is told once, then reads on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_behind_the_log_start_is_told_once_then_reads_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    {
        let log = EmbeddedEventLog::open(&path).unwrap();
        log.produce((0..8).map(|i| rec("t", &i.to_string())).collect())
            .await
            .unwrap();
        let write = log.inner.db.begin_write().unwrap();
        {
            let mut offsets = write.open_table(OFFSETS).unwrap();
            offsets.insert(("g", "t", 0), 2).unwrap();
            let mut records = write.open_table(RECORDS).unwrap();
            records
                .retain_in(("t", 0, 0)..("t", 0, 5), |_, _| false)
                .unwrap();
            write.delete_table(GROUPS).unwrap();
        }
        write.commit().unwrap();
    }
    let log = EmbeddedEventLog::open(&path).unwrap();
    assert_eq!(
        log.groups_of("t").into_iter().collect::<Vec<_>>(),
        ["g"],
        "groups are recovered from their commits"
    );
    let mut sub = log.subscribe("g", &["t"]).await.unwrap();
    let e = sub.poll(10, WAIT).await.unwrap_err();
    match &e {
        EventLogError::OffsetOutOfRange { from, to, .. } => assert_eq!((*from, *to), (2, 5)),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("lost records 2..5"), "{e}");
    let got = sub.poll(10, WAIT).await.unwrap();
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), [5, 6, 7]);
}
