//! `skye ingest`: a whole job from a file, without Databricks or Kafka.
//!
//! 1. starts the job on admin (`process-multi-variant` for the named variants, else
//!    `process-model`) and gets the job ticket;
//! 2. reads the file (JSON lines, a float32 `.npy` matrix with an optional ids file, or Parquet
//!    — see [`crate::parquet_rows`] for its columns) and
//!    posts the embedding events to the consumers' `/api/v1/ingest/{topic}` in batches, spread
//!    over the model's partitions, with a progress bar (as Skye's binary events, or JSON arrays
//!    with `--json`);
//! 3. posts one EOF per partition and waits until every variant of the ticket is COMPLETED.
//!
//! JSON lines format, one candidate per line:
//! `{"id": "42", "embedding": [..], "search_embedding": [..]?, "payload": {"brand": "acme"}?,
//!   "operation": "ADD"?, "index": {"variant": false}?}`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use skye_engine::ingest::events::{EmbeddingEvent, IndexSpace, SearchSpace, payload_text};
use skye_engine::ingest::wire;

use crate::http_client::HttpClient;

/// What to ingest and where.
#[derive(Debug, Clone)]
pub struct IngestJob {
    pub entity: String,
    pub model: String,
    pub variants: Vec<String>,
    pub file: PathBuf,
    pub ids: Option<PathBuf>,
    pub admin: String,
    pub consumers: String,
    pub topic: Option<String>,
    pub batch: usize,
    pub wait: bool,
    pub timeout: Duration,
    /// Send JSON arrays instead of Skye's binary events.
    pub json: bool,
}

/// One line of a JSON lines file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    #[serde(deserialize_with = "skye_core::json_compat::string_or_number")]
    id: String,
    #[serde(default)]
    embedding: Vec<f32>,
    #[serde(default)]
    search_embedding: Option<Vec<f32>>,
    #[serde(default)]
    payload: BTreeMap<String, Value>,
    #[serde(default)]
    operation: Option<String>,
    /// Per-variant "to be indexed" flags (default: every variant of the ticket).
    #[serde(default)]
    index: BTreeMap<String, bool>,
}

/// The rows of the input, read lazily for JSON lines and at once for `.npy`.
enum Source {
    Lines(std::io::Lines<BufReader<std::fs::File>>, usize),
    Matrix {
        values: Vec<f32>,
        dim: usize,
        ids: Vec<String>,
        next: usize,
    },
    Parquet(Box<crate::parquet_rows::ParquetRows>),
}

impl Source {
    fn open(file: &Path, ids: Option<&Path>) -> anyhow::Result<(Source, Option<u64>)> {
        let name = file.display().to_string();
        if file.extension().is_some_and(|e| e == "npy") {
            let (values, rows, dim) =
                skye_index::npy::read_f32(&name).map_err(anyhow::Error::msg)?;
            let ids = match ids {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let ids: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect();
                    if ids.len() != rows {
                        bail!(
                            "{} has {} ids but {name} has {rows} rows",
                            path.display(),
                            ids.len()
                        );
                    }
                    ids
                }
                None => (0..rows).map(|i| i.to_string()).collect(),
            };
            return Ok((
                Source::Matrix {
                    values,
                    dim,
                    ids,
                    next: 0,
                },
                Some(rows as u64),
            ));
        }
        if ids.is_some() {
            bail!("--ids only applies to .npy input");
        }
        if file.extension().is_some_and(|e| e == "parquet") {
            let (rows, total) = crate::parquet_rows::ParquetRows::open(file)?;
            return Ok((Source::Parquet(Box::new(rows)), Some(total)));
        }
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        let total = count_lines(file).ok();
        Ok((Source::Lines(BufReader::new(f).lines(), 0), total))
    }

    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        match self {
            Source::Lines(lines, n) => loop {
                let Some(line) = lines.next() else {
                    return Ok(None);
                };
                *n += 1;
                let line = line.context("read error")?;
                if line.trim().is_empty() {
                    continue;
                }
                return serde_json::from_str(&line)
                    .map(Some)
                    .with_context(|| format!("line {n}: not a candidate row"));
            },
            Source::Parquet(rows) => Ok(rows.next_row()?.map(|r| Row {
                id: r.id,
                embedding: r.embedding,
                search_embedding: r.search_embedding,
                payload: r.payload,
                operation: r.operation,
                index: BTreeMap::new(),
            })),
            Source::Matrix {
                values,
                dim,
                ids,
                next,
            } => {
                let i = *next;
                if i >= ids.len() {
                    return Ok(None);
                }
                *next += 1;
                Ok(Some(Row {
                    id: ids[i].clone(),
                    embedding: values[i * *dim..(i + 1) * *dim].to_vec(),
                    search_embedding: None,
                    payload: BTreeMap::new(),
                    operation: None,
                    index: BTreeMap::new(),
                }))
            }
        }
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    let f = std::fs::File::open(path)?;
    let mut n = 0;
    for line in BufReader::new(f).lines() {
        if !line?.trim().is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

/// Runs the job; returns a one-line summary.
pub async fn run(job: IngestJob, client: HttpClient) -> anyhow::Result<String> {
    let started = Instant::now();
    let (path, body) = if job.variants.is_empty() {
        (
            "process-model",
            json!({"entity": job.entity, "model": job.model}),
        )
    } else {
        (
            "process-multi-variant",
            json!({"entity": job.entity, "model": job.model, "variants": job.variants}),
        )
    };
    let ticket = client
        .post(&format!("{}/api/v1/qdrant/{path}", job.admin), &body)
        .await
        .context("cannot start the job")?;
    if ticket.is_null() {
        bail!(
            "no enabled variant to ingest into for model '{}'",
            job.model
        );
    }
    let versions = ticket["variants"].clone();
    let es_version = ticket["embedding_store_version"].clone();
    let partitions = ticket["number_of_partitions"].as_u64().unwrap_or(1).max(1);
    let topic = job
        .topic
        .clone()
        .or_else(|| {
            ticket["topic_name"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| skye_core::event_log::topics::EMBEDDING.to_string());
    let url = format!("{}/api/v1/ingest/{topic}", job.consumers);
    let default_index: BTreeMap<String, bool> = versions
        .as_object()
        .map(|m| m.keys().map(|k| (k.clone(), true)).collect())
        .unwrap_or_default();

    let (mut source, total) = Source::open(&job.file, job.ids.as_deref())?;
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} ingesting [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    // Each batch is encoded while the one before it is being stored (one request in flight, so
    // the server appends batches in file order: a later row for the same id stays later).
    let binary = if job.json {
        None
    } else {
        Some(TicketVersions::of(&es_version, &versions)?)
    };
    let mut batch = Batch::new(job.batch, binary);
    let mut in_flight: Option<InFlight> = None;
    let mut sent = 0u64;
    let mut row_no = 0u64;
    while let Some(row) = source.next_row()? {
        let partition = row_no % partitions;
        row_no += 1;
        let mut index = default_index.clone();
        index.extend(row.index);
        let event = EventOut {
            entity: &job.entity,
            model_name: &job.model,
            candidate_id: &row.id,
            environment: "skye-ingest",
            embedding_store_version: &es_version,
            partition: partition.to_string(),
            index_space: IndexSpaceOut {
                embedding: &row.embedding,
                variants_version_map: &versions,
                variants_index_map: &index,
                operation: row.operation.as_deref().unwrap_or("ADD"),
                payload: &row.payload,
            },
            search_space: row
                .search_embedding
                .as_deref()
                .map(|embedding| SearchSpaceOut { embedding }),
        };
        batch.push(&event)?;
        if batch.rows >= job.batch {
            sent += finish(in_flight.take()).await?;
            in_flight = Some(batch.send(&client, &url));
            bar.set_position(sent);
        }
    }
    sent += finish(in_flight.take()).await?;
    sent += finish((batch.rows > 0).then(|| batch.send(&client, &url))).await?;
    bar.finish_and_clear();
    let eofs: Vec<Value> = (0..partitions)
        .map(|p| {
            json!({"entity": job.entity, "model_name": job.model, "candidate_id": "EOF",
                "embedding_store_version": es_version, "partition": p.to_string(),
                "index_space": {"variants_version_map": versions}})
        })
        .collect();
    client
        .post(&url, &Value::Array(eofs))
        .await
        .context("cannot send the EOF events")?;
    let ingested = started.elapsed();
    let mut summary = format!(
        "{sent} rows sent to {topic} in {:.1} s ({:.0} rows/s); job ticket {}",
        ingested.as_secs_f64(),
        sent as f64 / ingested.as_secs_f64().max(1e-9),
        ticket
    );
    if job.wait {
        let variants: Vec<String> = versions
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        wait_completed(&client, &job, &variants).await?;
        summary.push_str(&format!(
            "; COMPLETED after {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(summary)
}

/// One embedding event as `skye ingest` writes it, borrowing the row (no JSON tree).
#[derive(Serialize)]
struct EventOut<'a> {
    entity: &'a str,
    model_name: &'a str,
    candidate_id: &'a str,
    environment: &'a str,
    embedding_store_version: &'a Value,
    partition: String,
    index_space: IndexSpaceOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    search_space: Option<SearchSpaceOut<'a>>,
}

/// The job ticket's versions as binary events carry them, read once per job.
struct TicketVersions {
    store: i64,
    variants: BTreeMap<String, i64>,
}

impl TicketVersions {
    fn of(store: &Value, variants: &Value) -> anyhow::Result<Self> {
        let version = |v: &Value| {
            v.as_i64()
                .with_context(|| format!("the job ticket's version {v} is not an integer"))
        };
        let variants = match variants.as_object() {
            Some(m) => m
                .iter()
                .map(|(k, v)| Ok((k.clone(), version(v)?)))
                .collect::<anyhow::Result<_>>()?,
            None => BTreeMap::new(),
        };
        Ok(TicketVersions {
            store: version(store)?,
            variants,
        })
    }
}

impl EventOut<'_> {
    /// The event as the server decodes it, for the binary encoding.
    fn decoded(&self, versions: &TicketVersions) -> EmbeddingEvent {
        let space = &self.index_space;
        EmbeddingEvent {
            entity: self.entity.into(),
            model_name: self.model_name.into(),
            candidate_id: self.candidate_id.into(),
            environment: self.environment.into(),
            embedding_store_version: versions.store,
            partition: self.partition.clone(),
            index_space: IndexSpace {
                embedding: space.embedding.to_vec(),
                variants_version_map: versions.variants.clone(),
                variants_index_map: space.variants_index_map.clone(),
                operation: space.operation.into(),
                payload: space
                    .payload
                    .iter()
                    .map(|(k, v)| (k.clone(), payload_text(v.clone())))
                    .collect(),
            },
            search_space: self.search_space.as_ref().map(|s| SearchSpace {
                embedding: s.embedding.to_vec(),
            }),
        }
    }
}

#[derive(Serialize)]
struct IndexSpaceOut<'a> {
    embedding: &'a [f32],
    variants_version_map: &'a Value,
    variants_index_map: &'a BTreeMap<String, bool>,
    operation: &'a str,
    payload: &'a BTreeMap<String, Value>,
}

#[derive(Serialize)]
struct SearchSpaceOut<'a> {
    embedding: &'a [f32],
}

/// The body of the next ingest request, written event by event: a JSON array, or binary events
/// (no float formatted here or parsed by the server).
struct Batch {
    body: Vec<u8>,
    rows: usize,
    /// Binary events with these versions; `None`: a JSON array.
    binary: Option<TicketVersions>,
}

/// A posted batch: its rows, and the request until it is answered.
type InFlight = (u64, tokio::task::JoinHandle<anyhow::Result<Value>>);

impl Batch {
    fn new(rows: usize, binary: Option<TicketVersions>) -> Batch {
        Batch {
            body: Vec::with_capacity(rows.saturating_mul(4096).min(64 << 20)),
            rows: 0,
            binary,
        }
    }

    fn push(&mut self, event: &EventOut<'_>) -> anyhow::Result<()> {
        match &self.binary {
            Some(versions) => wire::push_frame(&mut self.body, &event.decoded(versions))
                .map_err(anyhow::Error::msg)?,
            None => {
                self.body.push(if self.rows == 0 { b'[' } else { b',' });
                serde_json::to_writer(&mut self.body, event)?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Posts the batch on a task of its own and starts the next one.
    fn send(&mut self, client: &HttpClient, url: &str) -> InFlight {
        let capacity = self.body.capacity();
        let mut body = std::mem::replace(&mut self.body, Vec::with_capacity(capacity));
        let content_type = if self.binary.is_some() {
            wire::BINARY_CONTENT_TYPE
        } else {
            body.push(b']');
            "application/json"
        };
        let rows = std::mem::take(&mut self.rows) as u64;
        let (client, url) = (client.clone(), url.to_string());
        let request =
            tokio::spawn(async move { client.post_bytes_as(&url, body, content_type).await });
        (rows, request)
    }
}

/// Waits for a posted batch; returns its rows once stored.
async fn finish(posted: Option<InFlight>) -> anyhow::Result<u64> {
    let Some((rows, request)) = posted else {
        return Ok(0);
    };
    request
        .await
        .context("the ingest request task failed")?
        .context("ingest failed")?;
    Ok(rows)
}

async fn wait_completed(
    client: &HttpClient,
    job: &IngestJob,
    variants: &[String],
) -> anyhow::Result<()> {
    let spinner = ProgressBar::new_spinner();
    let deadline = Instant::now() + job.timeout;
    for v in variants {
        let url = format!(
            "{}/api/v1/models/{}/{}/variants/{v}",
            job.admin, job.entity, job.model
        );
        loop {
            let state = client.get(&url).await?;
            let s = state["variant_state"].as_str().unwrap_or("?").to_string();
            spinner.set_message(format!("variant {v}: {s}"));
            spinner.tick();
            if s == "COMPLETED" {
                break;
            }
            if Instant::now() > deadline {
                spinner.finish_and_clear();
                bail!(
                    "variant {v} is still {s} after {:?}; inspect it with GET {url} or reset it \
                     with POST /api/v1/qdrant/reset-variant-state",
                    job.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    spinner.finish_and_clear();
    Ok(())
}
