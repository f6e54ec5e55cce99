//! The [`EmbeddingStore`] and [`AggregatorStore`] contracts (see `skye_core::storage`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skye_backends::embedded::EmbeddedStorage;
use skye_core::storage::{AggregatorStore, EmbeddingRow, EmbeddingStore, Generation};

fn row(id: &str, x: f32, search: Option<f32>) -> EmbeddingRow {
    EmbeddingRow {
        id: id.into(),
        embedding: vec![x, 1.0],
        search_embedding: vec![search.unwrap_or(x), 1.0],
        to_be_indexed: BTreeMap::from([("v1".to_string(), true), ("v2".to_string(), false)]),
        payload: BTreeMap::from([
            ("brand".to_string(), format!("brand of {id}")),
            ("sizes".to_string(), "[1, 2]".to_string()),
        ]),
    }
}

/// What a store keeps of a row.
#[derive(Debug, Clone, Copy)]
pub struct Keeps {
    /// Expired rows read as absent (a test peer may ignore `USING TTL`).
    pub ttl: bool,
    /// The job payload comes back with the row.
    pub payload: bool,
}

/// The row as a store that keeps `keeps` reads it back.
fn as_kept(mut row: EmbeddingRow, keeps: Keeps) -> EmbeddingRow {
    if !keeps.payload {
        row.payload.clear();
    }
    row
}

pub async fn embedding_suite(store: Arc<dyn EmbeddingStore>, table: &str, keeps: Keeps) {
    let enforces_ttl = keeps.ttl;
    let g1 = Generation {
        table,
        model: "m",
        version: 1,
    };
    let g2 = Generation {
        table,
        model: "m",
        version: 2,
    };
    store
        .put(
            g1,
            vec![row("1", 0.5, None), row("abc-2", 0.25, Some(9.0))],
            None,
        )
        .await
        .unwrap();
    store
        .put(g2, vec![row("1", 7.0, None)], None)
        .await
        .unwrap();
    let ids: Vec<String> = ["1", "missing", "abc-2", "1"].map(String::from).to_vec();
    let got = store.get(g1, &ids).await.unwrap();
    assert_eq!(
        got[0].as_ref().unwrap(),
        &as_kept(row("1", 0.5, None), keeps)
    );
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().unwrap().search_embedding, vec![9.0, 1.0]);
    assert_eq!(got[2].as_ref().unwrap().embedding, vec![0.25, 1.0]);
    assert_eq!(got[3], got[0], "duplicate ids are answered each time");
    assert_eq!(
        store.get(g2, &ids[..1]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .embedding[0],
        7.0
    );

    // Replace, then drop a generation without touching the other.
    store
        .put(g1, vec![row("1", 0.75, None)], None)
        .await
        .unwrap();
    assert_eq!(
        store.get(g1, &ids[..1]).await.unwrap()[0]
            .as_ref()
            .unwrap()
            .embedding[0],
        0.75
    );
    store.drop_generation(g1).await.unwrap();
    assert!(
        store
            .get(g1, &ids)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    assert!(store.get(g2, &ids[..1]).await.unwrap()[0].is_some());
    store.drop_generation(g1).await.unwrap();

    // TTL: an expired row reads as absent.
    if !enforces_ttl {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "NOTE embedding_suite on {table}: TTL expiry not checked (the peer ignores USING TTL)"
        );
    }
    let g3 = Generation {
        table,
        model: "m",
        version: 3,
    };
    store
        .put(g3, vec![row("t", 1.0, None)], Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(store.get(g3, &["t".to_string()]).await.unwrap()[0].is_some());
    if enforces_ttl {
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(
            store.get(g3, &["t".to_string()]).await.unwrap()[0].is_none(),
            "row outlived its TTL"
        );
    }

    assert!(
        store.get(g2, &[String::new()]).await.is_err(),
        "empty id is invalid"
    );
}

pub async fn aggregator_suite(store: Arc<dyn AggregatorStore>, table: &str) {
    let cols = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    store
        .merge(
            table,
            vec![(
                "7".into(),
                cols(&[("out_of_stock", "false"), ("ad", "true")]),
            )],
        )
        .await
        .unwrap();
    store
        .merge(
            table,
            vec![
                ("7".into(), cols(&[("out_of_stock", "true")])),
                ("8".into(), cols(&[("ad", "false")])),
                ("7".into(), cols(&[("ad", "false")])),
            ],
        )
        .await
        .unwrap();
    let got = store
        .get(table, &["7".into(), "8".into(), "9".into()])
        .await
        .unwrap();
    assert_eq!(
        got[0].as_ref().unwrap(),
        &cols(&[("out_of_stock", "true"), ("ad", "false")])
    );
    assert_eq!(got[1].as_ref().unwrap(), &cols(&[("ad", "false")]));
    assert!(got[2].is_none());
    let other = store.get("other_table", &["7".into()]).await.unwrap();
    assert!(other[0].is_none(), "tables are separate");
}

#[tokio::test]
async fn embedded_storage_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(EmbeddedStorage::open(&dir.path().join("storage.redb")).unwrap());
    let keeps = Keeps {
        ttl: true,
        payload: true,
    };
    embedding_suite(storage.clone(), "catalog_embeddings", keeps).await;
    aggregator_suite(storage, "catalog_aggregator").await;
}

/// The tables the suites use, on a Scylla keyspace. `frozen` = the original's column types
/// (`frozen<list<float>>`); the protocol test double only parses `list<float>`, which has the
/// same value encoding.
#[cfg(feature = "scylla")]
async fn scylla_schema(store: &skye_backends::scylla::ScyllaStorage, keyspace: &str, frozen: bool) {
    use skye_backends::scylla::{aggregator_table_ddl, embeddings_table_ddl};
    let session = store.session();
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .unwrap();
    let mut statements = vec![
        embeddings_table_ddl(keyspace, "catalog_embeddings", &["v1", "v2"], None),
        embeddings_table_ddl(keyspace, "payload_embeddings", &["v1", "v2"], None),
        aggregator_table_ddl(keyspace, "catalog_aggregator", &["out_of_stock", "ad"]),
        aggregator_table_ddl(keyspace, "other_table", &["out_of_stock", "ad"]),
    ];
    // The table with Skye's payload column (the test double parses no ALTER TABLE, so it is
    // created with it; an operator adds it with `payload_column_ddl`).
    statements[1] = statements[1].replace(
        ", PRIMARY KEY",
        &format!(
            ", {} text, PRIMARY KEY",
            skye_backends::scylla::PAYLOAD_COLUMN
        ),
    );
    if !frozen {
        for s in &mut statements[..2] {
            *s = s.replace("frozen<list<float>>", "list<float>");
        }
    }
    for cql in statements {
        session.query_unpaged(cql, ()).await.unwrap();
    }
}

/// Against the in-memory CQL v4 server of the crate `kassandra-tester`: a **protocol test
/// double**, not ScyllaDB (no server installs here, INFRA.md §5). It checks the statements, the
/// value encodings and the driver plumbing; it ignores `USING TTL`, so expiry is checked only
/// against a live server (below).
#[cfg(feature = "scylla")]
#[test]
fn scylla_storage_conforms_against_the_kassandra_protocol_double() {
    use kassandra_tester::KassandraTester;
    use kassandra_tester::kassandra::session::KassandraSession;
    use skye_backends::scylla::{ScyllaConfig, ScyllaStorage};
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "NOTE scylla conformance: running against kassandra-tester, an in-memory CQL protocol \
             test double, not ScyllaDB"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(
            KassandraTester::new(KassandraSession::default()).in_scope(|addr| async move {
                let mut config = ScyllaConfig::new(vec![addr.to_string()], "skye");
                config.await_schema_agreement = false;
                let store = ScyllaStorage::connect(&config).await.unwrap();
                scylla_schema(&store, "skye", false).await;
                let store = Arc::new(store);
                let keeps = Keeps {
                    ttl: false,
                    payload: false,
                };
                embedding_suite(store.clone(), "catalog_embeddings", keeps).await;
                aggregator_suite(store, "catalog_aggregator").await;
                // With Skye's payload column added, rows keep their job payload.
                let mut with_payload = config.clone();
                with_payload.payload_column = true;
                let store = ScyllaStorage::connect(&with_payload).await.unwrap();
                let keeps = Keeps {
                    ttl: false,
                    payload: true,
                };
                embedding_suite(Arc::new(store), "payload_embeddings", keeps).await;
                Ok::<(), std::convert::Infallible>(())
            }),
        )
        .unwrap();
}

/// Against a live ScyllaDB or Cassandra: `SKYE_TEST_SCYLLA_NODES=host:9042[,…]` (e.g.
/// `docker run -p 9042:9042 scylladb/scylla --smp 1`). Uses a fresh keyspace per run.
#[cfg(feature = "scylla")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_storage_conforms_against_a_live_server() {
    use skye_backends::scylla::{ScyllaConfig, ScyllaStorage};
    // Not required by SKYE_REQUIRE_SERVICES: CI has no Scylla (INFRA.md §5).
    let Ok(nodes) = std::env::var("SKYE_TEST_SCYLLA_NODES") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED scylla_storage_conforms_against_a_live_server: SKYE_TEST_SCYLLA_NODES is not \
             set (no Scylla server installs here; see the test's doc comment)"
        );
        return;
    };
    let keyspace = format!(
        "skye_conf_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let nodes = nodes.split(',').map(str::to_string).collect();
    let store = ScyllaStorage::connect(&ScyllaConfig::new(nodes, "system"))
        .await
        .unwrap();
    scylla_schema(&store, &keyspace, true).await;
    let nodes = std::env::var("SKYE_TEST_SCYLLA_NODES").unwrap();
    let store = ScyllaStorage::connect(&ScyllaConfig::new(
        nodes.split(',').map(str::to_string).collect(),
        keyspace,
    ))
    .await
    .unwrap();
    let store = Arc::new(store);
    let keeps = Keeps {
        ttl: true,
        payload: false,
    };
    embedding_suite(store.clone(), "catalog_embeddings", keeps).await;
    aggregator_suite(store, "catalog_aggregator").await;
}
