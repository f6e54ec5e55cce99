//! Lifecycle endpoints (`/api/v1/qdrant/...`, spec AC §1.2): same paths and bodies as the
//! original, answered only once the change is durable.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use skye_core::domain::VectorDbType;
use skye_core::error::ErrorCode;
use skye_core::json_compat::string_or_number;
use skye_core::vector_store::{CollectionRef, SnapshotInfo};
use skye_engine::lifecycle::{EofReport, ProcessRequest, Selection, VariantVersion};

use crate::registry::parse_body;
use crate::{AdminBody, AdminState, ApiError, LimitedBody};

type ApiResult = Result<Json<Value>, ApiError>;

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_value(parse_body(bytes)?)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, format!("invalid request: {e}")))
}

fn required(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("{field} is required"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct ModelBody {
    entity: String,
    model: String,
    variant: String,
    variants: Vec<String>,
    vector_db_type: String,
    frequency: String,
    host: String,
    version: i64,
}

impl ModelBody {
    fn model(&self) -> Result<(), ApiError> {
        required("entity", &self.entity)?;
        required("model", &self.model)
    }
}

fn ticket(t: Option<skye_engine::lifecycle::JobTicket>) -> ApiResult {
    // The original answers the JSON literal `null` when no variant was processed.
    Ok(Json(match t {
        Some(t) => serde_json::to_value(t).map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("cannot encode the ticket: {e}"),
            )
        })?,
        None => Value::Null,
    }))
}

pub(crate) async fn create_collection(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    b.model()?;
    required("variant", &b.variant)?;
    let collection = s
        .lifecycle
        .create_collection(&b.entity, &b.model, &b.variant, b.version)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(
        json!({"message": "Collection created successfully", "collection": collection_json(&collection)}),
    ))
}

pub(crate) async fn process_models_with_freq(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    required("entity", &b.entity)?;
    required("frequency", &b.frequency)?;
    let models = s
        .lifecycle
        .models_with_frequency(&b.entity, &b.frequency)
        .map_err(ApiError::from_error)?;
    let response: Value = if models.is_empty() {
        Value::Null
    } else {
        models.into_iter().map(|m| json!({"model": m})).collect()
    };
    Ok(Json(json!({ "response": response })))
}

pub(crate) async fn process_model(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    b.model()?;
    let vdb_type = if b.vector_db_type.trim().is_empty() {
        None
    } else {
        Some(
            b.vector_db_type
                .parse::<VectorDbType>()
                .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()))?,
        )
    };
    let t = s
        .lifecycle
        .process(&ProcessRequest {
            entity: b.entity,
            model: b.model,
            selection: Selection::All(vdb_type),
            force_reset: false,
        })
        .await
        .map_err(ApiError::from_error)?;
    ticket(t)
}

async fn multi_variant(s: AdminState, bytes: Bytes, force_reset: bool) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    b.model()?;
    let t = s
        .lifecycle
        .process(&ProcessRequest {
            entity: b.entity,
            model: b.model,
            selection: Selection::Listed(b.variants),
            force_reset,
        })
        .await
        .map_err(ApiError::from_error)?;
    ticket(t)
}

pub(crate) async fn process_multi_variant(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    multi_variant(s, bytes, false).await
}

pub(crate) async fn process_multi_variant_force_reset(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    multi_variant(s, bytes, true).await
}

pub(crate) async fn promote_variant(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    b.model()?;
    required("variant", &b.variant)?;
    let t = s
        .lifecycle
        .promote(&b.entity, &b.model, &b.variant, &b.host)
        .await
        .map_err(ApiError::from_error)?;
    ticket(t)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct TriggerBody {
    entity: String,
    model: String,
    variants_version_map: BTreeMap<String, i64>,
    embedding_store_version: i64,
    #[serde(deserialize_with = "string_or_number")]
    partition: String,
}

/// Records an EOF synchronously (the original answers before doing anything, spec AC §8 B13).
pub(crate) async fn trigger_indexing(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: TriggerBody = body(&bytes)?;
    required("entity", &b.entity)?;
    required("model", &b.model)?;
    let outcome = s
        .lifecycle
        .eof(&EofReport {
            entity: b.entity,
            model: b.model,
            partition: b.partition,
            variants_version_map: b.variants_version_map,
            embedding_store_version: b.embedding_store_version,
        })
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({
        "message": "Indexing Triggered successfully",
        "waiting_for_partitions": outcome.waiting_for,
        "started": outcome.started,
        "skipped": outcome.skipped,
    })))
}

/// Abandons a variant's running job (a stuck variant can always be recovered over the API).
pub(crate) async fn reset_variant_state(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b: ModelBody = body(&bytes)?;
    b.model()?;
    required("variant", &b.variant)?;
    let v = s
        .lifecycle
        .reset_variant_state(&b.entity, &b.model, &b.variant)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({
        "message": "Variant state reset",
        "variant_state": v.variant_state,
        "vector_db_read_version": v.vector_db_read_version,
        "vector_db_write_version": v.vector_db_write_version,
    })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(crate) struct SnapshotBody {
    entity: String,
    model: String,
    variant: String,
    /// Collection version; 0 = the variant's read version.
    version: i64,
    snapshot: String,
}

impl SnapshotBody {
    fn parse(bytes: &Bytes, named: bool) -> Result<Self, ApiError> {
        let b: SnapshotBody = body(bytes)?;
        required("entity", &b.entity)?;
        required("model", &b.model)?;
        required("variant", &b.variant)?;
        if named {
            required("snapshot", &b.snapshot)?;
        }
        Ok(b)
    }

    fn target(&self) -> VariantVersion<'_> {
        VariantVersion {
            entity: &self.entity,
            model: &self.model,
            variant: &self.variant,
            version: self.version,
        }
    }
}

/// A collection as the admin API shows it: its parts, never a joined name.
fn collection_json(c: &CollectionRef) -> Value {
    json!({
        "entity": c.variant.entity(),
        "model": c.variant.model(),
        "variant": c.variant.variant(),
        "version": c.version,
        "vector_db_type": c.variant.db(),
    })
}

fn snapshot_json(s: &SnapshotInfo) -> Value {
    json!({"name": s.name, "created_unix": s.created_unix, "size_bytes": s.size_bytes})
}

/// Snapshots a variant's collection (Skye extension).
pub(crate) async fn create_snapshot(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b = SnapshotBody::parse(&bytes, false)?;
    let (collection, info) = s
        .lifecycle
        .create_snapshot(b.target())
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({
        "message": "Snapshot created",
        "collection": collection_json(&collection),
        "snapshot": snapshot_json(&info),
    })))
}

/// Lists the snapshots of a variant's collection (Skye extension).
pub(crate) async fn list_snapshots(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b = SnapshotBody::parse(&bytes, false)?;
    let (collection, list) = s
        .lifecycle
        .list_snapshots(b.target())
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({
        "collection": collection_json(&collection),
        "snapshots": list.iter().map(snapshot_json).collect::<Vec<_>>(),
    })))
}

/// Deletes one snapshot (Skye extension).
pub(crate) async fn delete_snapshot(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b = SnapshotBody::parse(&bytes, true)?;
    let collection = s
        .lifecycle
        .delete_snapshot(b.target(), &b.snapshot)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(
        json!({"message": "Snapshot deleted", "collection": collection_json(&collection)}),
    ))
}

/// Returns a variant's collection to a snapshot (Skye extension).
pub(crate) async fn recover_snapshot(
    State(s): State<AdminState>,
    LimitedBody(bytes): AdminBody,
) -> ApiResult {
    let b = SnapshotBody::parse(&bytes, true)?;
    let collection = s
        .lifecycle
        .recover_snapshot(b.target(), &b.snapshot)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(
        json!({"message": "Collection recovered", "collection": collection_json(&collection), "snapshot": b.snapshot}),
    ))
}
