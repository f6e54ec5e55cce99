//! ScyllaDB (or Cassandra) as the embedding and aggregator stores, over CQL with the `scylla`
//! driver, on the original's tables (spec AC §5.2, §5.3), so an existing keyspace is read and
//! written as it is:
//!
//! ```text
//! <embeddings_table>: model_name text, version int, id text,
//!     embedding frozen<list<float>>, search_embedding frozen<list<float>>,
//!     <variant>_to_be_indexed boolean ...,
//!     PRIMARY KEY ((model_name, version, id))
//! <aggregator_table>: candidate_id text PRIMARY KEY, <label> text ...
//! ```
//!
//! Skye does not create or alter tables (the original's Horizon does): [`embeddings_table_ddl`]
//! and [`aggregator_table_ddl`] print the statements for an operator. A write naming a column the
//! table lacks (a new variant's flag, a new label) fails with the server's message.
//!
//! Every statement runs at consistency ONE (as the original), prepared once per text. Rows of
//! a call are written and read concurrently (bounded). Table, variant and label names are
//! checked to be plain CQL identifiers before they go into a statement.
//!
//! The partition key is (model, version, id), so a generation cannot be deleted by key:
//! [`EmbeddingStore::drop_generation`] scans the table's keys (paged) and deletes the
//! generation's rows; TTL remains the cheap way out, as in the original.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use skye_core::error::Cause;
use skye_core::storage::{
    AggregatorRow, AggregatorStore, EmbeddingRow, EmbeddingStore, Generation, StorageError,
};
use tokio::sync::Mutex;

/// Suffix of the per-variant flag columns of the embeddings table.
const FLAG_SUFFIX: &str = "_to_be_indexed";
/// Skye's optional column of the embeddings table: the row's job payload as a JSON object of
/// texts ([`ScyllaConfig::payload_column`]).
pub const PAYLOAD_COLUMN: &str = "skye_payload";

/// Where and how to connect (the original's `STORAGE_*_<n>_*` block, spec AC §6.4).
#[derive(Debug, Clone)]
pub struct ScyllaConfig {
    /// `host:port` contact points.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Statements of one call in flight at once.
    pub concurrency: usize,
    /// Wait for schema agreement after DDL (off for single-node test peers, which have no
    /// peers table).
    pub await_schema_agreement: bool,
    /// The embeddings tables have [`PAYLOAD_COLUMN`] ([`payload_column_ddl`]): rows keep their
    /// job payload. Off, rows are written as the original writes them and read back without.
    pub payload_column: bool,
}

impl ScyllaConfig {
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> Self {
        ScyllaConfig {
            nodes,
            keyspace: keyspace.into(),
            username: None,
            password: None,
            request_timeout: Duration::from_secs(5),
            concurrency: 64,
            await_schema_agreement: true,
            payload_column: false,
        }
    }
}

/// Both stores on one session.
#[derive(Debug)]
pub struct ScyllaStorage {
    session: Arc<Session>,
    keyspace: String,
    concurrency: usize,
    payload_column: bool,
    prepared: Mutex<HashMap<String, PreparedStatement>>,
}

fn unavailable(message: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("scylla: {message}").into())
}

/// A failed statement: a client-side request timeout is a timeout (DEADLINE_EXCEEDED, as the
/// server may still be up), anything else says the cluster cannot serve it now.
fn execution(e: ExecutionError) -> StorageError {
    match e {
        ExecutionError::RequestTimeout(after) => StorageError::Timeout(Cause::new(
            format!("scylla: no answer within {} ms", after.as_millis()),
            e,
        )),
        e => driver("statement failed", e),
    }
}

/// A driver error, kept as the cause.
fn driver(
    context: impl std::fmt::Display,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StorageError {
    StorageError::Unavailable(Cause::new(format!("scylla: {context}: {e}"), e))
}

/// A name that goes into a statement: letters, digits and `_`, not starting with a digit.
fn identifier<'a>(what: &str, name: &'a str) -> Result<&'a str, StorageError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48;
    if ok {
        Ok(name)
    } else {
        Err(StorageError::InvalidArgument(format!(
            "{what} '{name}' is not a valid CQL identifier (letters, digits and '_', at most 48)"
        )))
    }
}

/// The embeddings table as the original's Horizon creates it, with one flag column per variant.
pub fn embeddings_table_ddl(
    keyspace: &str,
    table: &str,
    variants: &[&str],
    ttl: Option<Duration>,
) -> String {
    let flags: String = variants
        .iter()
        .map(|v| format!(", {v}{FLAG_SUFFIX} boolean"))
        .collect();
    let ttl = ttl.map_or(String::new(), |t| {
        format!(" WITH default_time_to_live = {}", t.as_secs())
    });
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (model_name text, version int, id text, \
         embedding frozen<list<float>>, search_embedding frozen<list<float>>{flags}, \
         PRIMARY KEY ((model_name, version, id))){ttl}"
    )
}

/// Adds Skye's payload column to an embeddings table of the original's shape.
pub fn payload_column_ddl(keyspace: &str, table: &str) -> String {
    format!("ALTER TABLE {keyspace}.{table} ADD {PAYLOAD_COLUMN} text")
}

/// The aggregator table with its label columns.
pub fn aggregator_table_ddl(keyspace: &str, table: &str, labels: &[&str]) -> String {
    let columns: String = labels.iter().map(|l| format!(", {l} text")).collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {keyspace}.{table} (candidate_id text PRIMARY KEY{columns})"
    )
}

impl ScyllaStorage {
    /// Connects and checks that the keyspace exists.
    pub async fn connect(config: &ScyllaConfig) -> Result<Self, StorageError> {
        identifier("keyspace", &config.keyspace)?;
        if config.nodes.is_empty() {
            return Err(StorageError::InvalidArgument(
                "scylla: no contact points".into(),
            ));
        }
        let mut builder = SessionBuilder::new()
            .known_nodes(&config.nodes)
            .connection_timeout(config.request_timeout)
            .auto_await_schema_agreement(config.await_schema_agreement);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.user(user, password);
        }
        let session = tokio::time::timeout(config.request_timeout * 2, builder.build())
            .await
            .map_err(|_| unavailable(format!("no answer from {:?}", config.nodes)))?
            .map_err(|e| driver(format!("cannot connect to {:?}", config.nodes), e))?;
        Ok(ScyllaStorage {
            session: Arc::new(session),
            keyspace: config.keyspace.clone(),
            concurrency: config.concurrency.max(1),
            payload_column: config.payload_column,
            prepared: Mutex::new(HashMap::new()),
        })
    }

    /// The session, e.g. to run [`embeddings_table_ddl`].
    pub fn session(&self) -> &Session {
        &self.session
    }

    async fn prepare(&self, cql: String) -> Result<PreparedStatement, StorageError> {
        if let Some(p) = self.prepared.lock().await.get(&cql) {
            return Ok(p.clone());
        }
        let mut p = self.session.prepare(cql.as_str()).await.map_err(|e| {
            // A missing table or column is the caller's schema, not an outage.
            let text = e.to_string();
            if text.contains("Undefined")
                || text.contains("unconfigured")
                || text.contains("does not exist")
                || text.contains("Unknown")
            {
                StorageError::InvalidArgument(format!("scylla: {cql}: {text}"))
            } else {
                unavailable(format!("{cql}: {text}"))
            }
        })?;
        p.set_consistency(Consistency::One);
        self.prepared.lock().await.insert(cql, p.clone());
        Ok(p)
    }

    /// Runs `(statement text, values)` pairs, `concurrency` at a time (each text prepared once).
    async fn execute_all(
        &self,
        statements: Vec<(String, Vec<CqlValue>)>,
    ) -> Result<(), StorageError> {
        futures_util::stream::iter(statements)
            .map(|(cql, values)| async move {
                let statement = self.prepare(cql).await?;
                self.session
                    .execute_unpaged(&statement, values)
                    .await
                    .map(|_| ())
                    .map_err(execution)
            })
            .buffer_unordered(self.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn select_one(
        &self,
        statement: &PreparedStatement,
        values: Vec<CqlValue>,
    ) -> Result<Option<Vec<(String, CqlValue)>>, StorageError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(execution)?
            .into_rows_result()
            .map_err(unavailable)?;
        let names: Vec<String> = result
            .column_specs()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let mut rows = result.rows::<Row>().map_err(unavailable)?;
        let Some(row) = rows.next().transpose().map_err(unavailable)? else {
            return Ok(None);
        };
        Ok(Some(
            names
                .into_iter()
                .zip(row.columns)
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect(),
        ))
    }
}

fn floats(what: &str, value: CqlValue) -> Result<Vec<f32>, StorageError> {
    match value {
        CqlValue::List(items) | CqlValue::Vector(items) => items
            .into_iter()
            .map(|v| match v {
                CqlValue::Float(f) => Ok(f),
                other => Err(StorageError::Internal(
                    format!("scylla: {what} holds {other:?}, not float").into(),
                )),
            })
            .collect(),
        other => Err(StorageError::Internal(
            format!("scylla: {what} is {other:?}, not list<float>").into(),
        )),
    }
}

fn float_list(v: &[f32]) -> CqlValue {
    CqlValue::List(v.iter().map(|f| CqlValue::Float(*f)).collect())
}

fn version(generation: &Generation<'_>) -> Result<i32, StorageError> {
    i32::try_from(generation.version).map_err(|_| {
        StorageError::InvalidArgument(format!(
            "version {} does not fit the table's int column",
            generation.version
        ))
    })
}

fn check_ids(ids: &[String]) -> Result<(), StorageError> {
    match ids.iter().position(|id| id.is_empty()) {
        Some(i) => Err(StorageError::InvalidArgument(format!("id {i} is empty"))),
        None => Ok(()),
    }
}

#[async_trait]
impl EmbeddingStore for ScyllaStorage {
    async fn put(
        &self,
        generation: Generation<'_>,
        rows: Vec<EmbeddingRow>,
        ttl: Option<Duration>,
    ) -> Result<(), StorageError> {
        let table = identifier("table", generation.table)?;
        let version = version(&generation)?;
        let using = match ttl {
            Some(t) if t.as_secs() > 0 => format!(" USING TTL {}", t.as_secs()),
            _ => String::new(),
        };
        let mut statements = Vec::with_capacity(rows.len());
        for row in rows {
            if row.id.is_empty() {
                return Err(StorageError::InvalidArgument("id is empty".into()));
            }
            let mut columns = vec![
                "embedding".to_string(),
                "id".into(),
                "model_name".into(),
                "search_embedding".into(),
                "version".into(),
            ];
            let mut values = vec![
                float_list(&row.embedding),
                CqlValue::Text(row.id.clone()),
                CqlValue::Text(generation.model.to_string()),
                float_list(&row.search_embedding),
                CqlValue::Int(version),
            ];
            // `to_be_indexed` is a BTreeMap: the column list is sorted, as the original's.
            for (variant, flag) in &row.to_be_indexed {
                columns.push(format!("{}{FLAG_SUFFIX}", identifier("variant", variant)?));
                values.push(CqlValue::Boolean(*flag));
            }
            if self.payload_column {
                let json = serde_json::to_string(&row.payload).map_err(|e| {
                    StorageError::Internal(format!("payload of '{}': {e}", row.id).into())
                })?;
                columns.push(PAYLOAD_COLUMN.to_string());
                values.push(CqlValue::Text(json));
            }
            let marks = vec!["?"; columns.len()].join(", ");
            let cql = format!(
                "INSERT INTO {}.{table} ({}) VALUES ({marks}){using}",
                self.keyspace,
                columns.join(", ")
            );
            statements.push((cql, values));
        }
        self.execute_all(statements).await
    }

    async fn get(
        &self,
        generation: Generation<'_>,
        ids: &[String],
    ) -> Result<Vec<Option<EmbeddingRow>>, StorageError> {
        let table = identifier("table", generation.table)?;
        let version = version(&generation)?;
        check_ids(ids)?;
        let statement = self
            .prepare(format!(
                "SELECT * FROM {}.{table} WHERE model_name = ? AND version = ? AND id = ?",
                self.keyspace
            ))
            .await?;
        let statement = &statement;
        futures_util::stream::iter(ids.to_vec())
            .map(|id: String| async move {
                let values = vec![
                    CqlValue::Text(generation.model.to_string()),
                    CqlValue::Int(version),
                    CqlValue::Text(id.clone()),
                ];
                let Some(columns) = self.select_one(statement, values).await? else {
                    return Ok(None);
                };
                let mut row = EmbeddingRow {
                    id: id.clone(),
                    embedding: Vec::new(),
                    search_embedding: Vec::new(),
                    to_be_indexed: BTreeMap::new(),
                    payload: BTreeMap::new(),
                };
                for (name, value) in columns {
                    match name.as_str() {
                        "embedding" => row.embedding = floats("embedding", value)?,
                        "search_embedding" => {
                            row.search_embedding = floats("search_embedding", value)?
                        }
                        PAYLOAD_COLUMN => {
                            if let CqlValue::Text(json) = value {
                                row.payload = serde_json::from_str(&json).map_err(|e| {
                                    StorageError::Internal(format!(
                                        "{PAYLOAD_COLUMN} of '{id}' is not a JSON object of texts: {e}"
                                    ).into())
                                })?;
                            }
                        }
                        _ => {
                            if let (Some(variant), CqlValue::Boolean(flag)) =
                                (name.strip_suffix(FLAG_SUFFIX), value)
                            {
                                row.to_be_indexed.insert(variant.to_string(), flag);
                            }
                        }
                    }
                }
                if row.search_embedding.is_empty() {
                    row.search_embedding = row.embedding.clone();
                }
                Ok(Some(row))
            })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    async fn drop_generation(&self, generation: Generation<'_>) -> Result<(), StorageError> {
        let table = identifier("table", generation.table)?;
        let version = version(&generation)?;
        let mut scan = self
            .prepare(format!(
                "SELECT model_name, version, id FROM {}.{table}",
                self.keyspace
            ))
            .await?;
        scan.set_page_size(1000);
        let delete = format!(
            "DELETE FROM {}.{table} WHERE model_name = ? AND version = ? AND id = ?",
            self.keyspace
        );
        let mut pages = self
            .session
            .execute_iter(scan, ())
            .await
            .map_err(unavailable)?
            .rows_stream::<(String, i32, String)>()
            .map_err(unavailable)?;
        let mut doomed = Vec::new();
        while let Some((model, v, id)) = pages.try_next().await.map_err(unavailable)? {
            if model == generation.model && v == version {
                doomed.push(id);
            }
        }
        let statements = doomed
            .into_iter()
            .map(|id| {
                let values = vec![
                    CqlValue::Text(generation.model.to_string()),
                    CqlValue::Int(version),
                    CqlValue::Text(id),
                ];
                (delete.clone(), values)
            })
            .collect();
        self.execute_all(statements).await
    }
}

#[async_trait]
impl AggregatorStore for ScyllaStorage {
    async fn get(
        &self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<Option<AggregatorRow>>, StorageError> {
        let table = identifier("table", table)?;
        check_ids(ids)?;
        let statement = self
            .prepare(format!(
                "SELECT * FROM {}.{table} WHERE candidate_id = ?",
                self.keyspace
            ))
            .await?;
        let statement = &statement;
        futures_util::stream::iter(ids.to_vec())
            .map(|id: String| async move {
                let columns = self
                    .select_one(statement, vec![CqlValue::Text(id.clone())])
                    .await?;
                Ok(columns.map(|columns| {
                    columns
                        .into_iter()
                        .filter(|(name, _)| name != "candidate_id")
                        .filter_map(|(name, value)| match value {
                            CqlValue::Text(s) | CqlValue::Ascii(s) => Some((name, s)),
                            _ => None,
                        })
                        .collect()
                }))
            })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    async fn merge(
        &self,
        table: &str,
        updates: Vec<(String, AggregatorRow)>,
    ) -> Result<(), StorageError> {
        let table = identifier("table", table)?;
        // Later updates of an id win, column by column: one write per id.
        let mut merged: BTreeMap<String, AggregatorRow> = BTreeMap::new();
        for (id, columns) in updates {
            if id.is_empty() {
                return Err(StorageError::InvalidArgument(
                    "candidate_id is empty".into(),
                ));
            }
            merged.entry(id).or_default().extend(columns);
        }
        let mut statements = Vec::with_capacity(merged.len());
        for (id, columns) in merged {
            let mut names = vec!["candidate_id".to_string()];
            let mut values = vec![CqlValue::Text(id)];
            for (label, value) in columns {
                names.push(identifier("label", &label)?.to_string());
                values.push(CqlValue::Text(value));
            }
            let marks = vec!["?"; names.len()].join(", ");
            let cql = format!(
                "INSERT INTO {}.{table} ({}) VALUES ({marks})",
                self.keyspace,
                names.join(", ")
            );
            statements.push((cql, values));
        }
        self.execute_all(statements).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skye_core::error::{ErrorCode, HasErrorCode};

    #[test]
    fn a_request_timeout_is_a_deadline_and_other_failures_unavailable() {
        let slow = execution(ExecutionError::RequestTimeout(Duration::from_millis(5000)));
        assert_eq!(slow.code(), ErrorCode::Timeout);
        assert!(slow.to_string().contains("5000 ms"), "{slow}");
        let down = execution(ExecutionError::EmptyPlan);
        assert_eq!(down.code(), ErrorCode::Unavailable);
    }

    #[test]
    fn names_that_go_into_statements_are_checked() {
        assert!(identifier("table", "catalog_embeddings").is_ok());
        assert!(identifier("table", "_x9").is_ok());
        for bad in [
            "",
            "9lives",
            "a-b",
            "x; DROP TABLE y",
            "a.b",
            "é",
            &"x".repeat(49),
        ] {
            assert!(
                matches!(
                    identifier("variant", bad),
                    Err(StorageError::InvalidArgument(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_ddl_matches_the_original_schema() {
        assert_eq!(
            embeddings_table_ddl(
                "ks",
                "emb",
                &["organic", "ad"],
                Some(Duration::from_secs(86400))
            ),
            "CREATE TABLE IF NOT EXISTS ks.emb (model_name text, version int, id text, \
             embedding frozen<list<float>>, search_embedding frozen<list<float>>, \
             organic_to_be_indexed boolean, ad_to_be_indexed boolean, \
             PRIMARY KEY ((model_name, version, id))) WITH default_time_to_live = 86400"
        );
        assert_eq!(
            aggregator_table_ddl("ks", "agg", &["out_of_stock"]),
            "CREATE TABLE IF NOT EXISTS ks.agg (candidate_id text PRIMARY KEY, out_of_stock text)"
        );
        assert_eq!(
            payload_column_ddl("ks", "catalog_embeddings"),
            "ALTER TABLE ks.catalog_embeddings ADD skye_payload text"
        );
    }

    #[test]
    fn rows_decode_from_cql_lists() {
        assert_eq!(
            floats("e", float_list(&[0.5, -1.0])).unwrap(),
            vec![0.5, -1.0]
        );
        assert!(floats("e", CqlValue::Text("x".into())).is_err());
        assert!(floats("e", CqlValue::List(vec![CqlValue::Int(1)])).is_err());
    }
}
