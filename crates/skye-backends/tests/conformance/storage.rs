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
    }
}

pub async fn embedding_suite(store: Arc<dyn EmbeddingStore>, table: &str) {
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
    assert_eq!(got[0].as_ref().unwrap(), &row("1", 0.5, None));
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
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        store.get(g3, &["t".to_string()]).await.unwrap()[0].is_none(),
        "row outlived its TTL"
    );

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
    embedding_suite(storage.clone(), "catalog_embeddings").await;
    aggregator_suite(storage, "catalog_aggregator").await;
}
