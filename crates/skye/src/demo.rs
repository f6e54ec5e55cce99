//! `skye standalone --demo`: a first search for newcomers, through the real pipeline.
//!
//! Registers a small synthetic catalog (entity `demo`, model `products`, 32-d cosine, variants
//! `all` and `in_stock`), ingests 2,000 products as embedding events on the event log (with an
//! EOF per partition), waits for the state machine to reach COMPLETED, prints a search, marks the
//! best match out of stock with a real-time event, and searches the filtered variant. A restart on the same data directory
//! finds the catalog in place and only searches.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use skye_core::domain::VariantState;
use skye_core::event_log::{EventLog, Produce, topics};
use skye_core::registration::{RegisterEntity, RegisterModel, RegisterStore, RegisterVariant};
use skye_engine::lifecycle::{Lifecycle, ProcessRequest, Selection};
use skye_engine::registry::Registry;
use skye_engine::search::filters::{FilterOp, FilterSpec};
use skye_engine::search::similar::{SimilarRequest, SimilarService};

use crate::rng::Rng;

const ENTITY: &str = "demo";
const MODEL: &str = "products";
const DIM: usize = 32;
const PRODUCTS: usize = 2_000;
const CATEGORIES: [&str; 5] = ["shoes", "bags", "watches", "shirts", "lamps"];
const BRANDS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];

fn say(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// The pieces of a running standalone the demo drives.
pub struct Demo {
    pub registry: Arc<Registry>,
    pub lifecycle: Arc<Lifecycle>,
    pub events: Arc<dyn EventLog>,
    pub search: SimilarService,
    pub serving_port: u16,
}

impl Demo {
    pub async fn run(self) -> anyhow::Result<()> {
        let snapshot = self.registry.snapshot();
        let loaded = snapshot
            .variant(ENTITY, MODEL, "all")
            .is_ok_and(|v| v.onboarded && v.variant_state == VariantState::Completed);
        if loaded {
            say("demo: catalog already loaded (data survives restarts); searching");
        } else {
            self.load().await?;
        }
        self.show(!loaded).await
    }

    async fn load(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.register().await?;
        let ticket = self
            .lifecycle
            .process(&ProcessRequest {
                entity: ENTITY.into(),
                model: MODEL.into(),
                selection: Selection::All(None),
                force_reset: false,
            })
            .await?
            .context("demo: no variant to ingest into")?;
        let versions = json!(ticket.variants);
        let mut rng = Rng(0x5EED);
        let centroids: Vec<Vec<f32>> = CATEGORIES
            .iter()
            .map(|_| (0..DIM).map(|_| rng.unit()).collect())
            .collect();
        let mut records = Vec::with_capacity(PRODUCTS + 2);
        for i in 0..PRODUCTS {
            let c = i % CATEGORIES.len();
            let vector: Vec<f32> = centroids[c].iter().map(|x| x + 0.35 * rng.unit()).collect();
            let price = 20 + (rng.next() % 180);
            let partition = (i % ticket.number_of_partitions as usize).to_string();
            let event = json!({
                "entity": ENTITY, "model_name": MODEL, "candidate_id": format!("p{i}"),
                "environment": "demo", "embedding_store_version": ticket.embedding_store_version,
                "partition": partition,
                "index_space": {
                    "embedding": vector, "variants_version_map": versions,
                    "variants_index_map": {"all": true, "in_stock": true},
                    "operation": "ADD",
                    "payload": {"category": CATEGORIES[c], "brand": BRANDS[i % BRANDS.len()],
                        "price": price.to_string()}
                }
            });
            records.push(record(format!("partition-{partition}"), &event)?);
        }
        for p in 0..ticket.number_of_partitions {
            let eof = json!({"entity": ENTITY, "model_name": MODEL, "candidate_id": "EOF",
                "embedding_store_version": ticket.embedding_store_version,
                "partition": p.to_string(), "index_space": {"variants_version_map": versions}});
            records.push(record(format!("partition-{p}"), &eof)?);
        }
        self.events.produce(records).await?;
        say(&format!(
            "demo: {PRODUCTS} products queued on {} with an EOF per partition; waiting for the \
             consumers and the state machine...",
            topics::EMBEDDING
        ));
        for variant in ["all", "in_stock"] {
            self.wait_completed(variant).await?;
        }
        say(&format!(
            "demo: catalog indexed in {:.1} s (versions {:?})",
            started.elapsed().as_secs_f64(),
            ticket.variants
        ));
        Ok(())
    }

    async fn register(&self) -> anyhow::Result<()> {
        let r = &self.registry;
        let snapshot = r.snapshot();
        if snapshot.entities.contains_key(ENTITY) {
            return Ok(());
        }
        let store = r
            .register_store(RegisterStore::from_json(json!({"conf_id": 1,
                "embeddings_table": "demo_embeddings", "aggregator_table": "demo_aggregator"}))?)
            .await?;
        r.register_entity(RegisterEntity::from_json(
            json!({"entity": ENTITY, "store_id": store}),
        )?)
        .await?;
        r.register_model(RegisterModel::from_json(
            json!({"entity": ENTITY, "model": MODEL,
            "embedding_store_enabled": true, "number_of_partitions": 2, "model_type": "RESET",
            "model_config": {"distance_function": "COSINE", "vector_dimension": DIM}}),
        )?)
        .await?;
        let payload = json!({"category": {"field_schema": "keyword"},
            "brand": {"field_schema": "keyword"}, "price": {"field_schema": "float"}});
        r.register_variant(RegisterVariant::from_json(
            json!({"entity": ENTITY, "model": MODEL,
            "variant": "all", "vector_db_config": {"payload": payload}}),
        )?)
        .await?;
        r.register_variant(RegisterVariant::from_json(
            json!({"entity": ENTITY, "model": MODEL,
            "variant": "in_stock", "vector_db_config": {"payload": payload},
            "filter": [{"column_name": "out_of_stock", "filter_value": "false",
                "default_value": "false"}]}),
        )?)
        .await?;
        Ok(())
    }

    async fn wait_completed(&self, variant: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let snapshot = self.registry.snapshot();
            let v = snapshot.variant(ENTITY, MODEL, variant)?;
            if v.variant_state == VariantState::Completed && v.onboarded {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("demo: variant {variant} is stuck in {}", v.variant_state);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn show(&self, flag_top_hit: bool) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let ask = |variant: &str, filters: Vec<FilterSpec>| SimilarRequest {
            entity: ENTITY.into(),
            model: MODEL.into(),
            variant: variant.into(),
            limit: 5,
            candidate_ids: vec!["p40".into()],
            global_filters: filters,
            attributes: vec!["category".into(), "brand".into(), "price".into()],
            ..Default::default()
        };
        say("");
        say("demo: products similar to p40 (shoes), variant `all`:");
        let answer = self.search.similar(ask("all", vec![]), now).await?;
        print_hits(&answer.answers[0]);
        if flag_top_hit && let Some(top) = answer.answers[0].first() {
            // A real-time aggregator event takes the best match out of the `in_stock` variant.
            let flag = json!({"timestamp": now, "type": "stock", "entity": ENTITY,
                "data": [{"id": top.id, "data": [{"label": "out_of_stock", "value": "true"}]}]});
            let mut event = record(ENTITY.to_string(), &flag)?;
            event.topic = topics::REALTIME.to_string();
            self.events.produce(vec![event]).await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let hits = self.search.similar(ask("in_stock", vec![]), now).await?;
                if !hits.answers[0].iter().any(|h| h.id == top.id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            say(&format!(
                "demo: real-time event on {}: {} is now out_of_stock=true",
                topics::REALTIME,
                top.id
            ));
        }
        say("demo: variant `in_stock` (vss filter out_of_stock=false) with filter price < 100:");
        let cheap = vec![FilterSpec {
            field: "price".into(),
            op: FilterOp::Lt,
            values: vec!["100".into()],
        }];
        let answer = self.search.similar(ask("in_stock", cheap), now).await?;
        print_hits(&answer.answers[0]);
        say(&format!(
            "\nTry it over gRPC (no proto file needed, reflection is on):\n  grpcurl -plaintext -d \
             '{{\"entity\":\"demo\",\"modelName\":\"products\",\"variant\":\"all\",\"limit\":5,\
             \"candidateIds\":[\"p40\"],\"attribute\":[\"category\",\"price\"]}}' \
             localhost:{} SkyeSimilarCandidateService/getSimilarCandidates\n",
            self.serving_port
        ));
        Ok(())
    }
}

fn print_hits(hits: &[skye_core::vector_store::ScoredPoint]) {
    for h in hits {
        let attr = |k: &str| h.payload.get(k).map(String::as_str).unwrap_or("-");
        say(&format!(
            "  {:>6}  score {:.3}  {:<8} {:<9} price {}",
            h.id,
            h.score,
            attr("category"),
            attr("brand"),
            attr("price")
        ));
    }
}

fn record(key: String, event: &Value) -> anyhow::Result<Produce> {
    Ok(Produce::new(
        topics::EMBEDDING,
        key,
        serde_json::to_vec(event)?,
    ))
}
