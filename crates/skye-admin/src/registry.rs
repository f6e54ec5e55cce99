//! Registry endpoints (spec AC §1.1) and the read endpoints.

use axum::Json;
use axum::extract::{Path, State};
use bytes::Bytes;
use serde_json::{Value, json};
use skye_core::error::{ErrorCode, ValidationErrors};
use skye_core::registration::{
    RegisterEntity, RegisterFrequency, RegisterModel, RegisterStore, RegisterVariant,
};

use crate::{AdminBody, AdminState, ApiError, LimitedBody};

type ApiResult = Result<Json<Value>, ApiError>;

/// Parses a JSON body. Go's binding accepts any content type, so we do too.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "request body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("invalid JSON body: {e}"),
        )
    })
}

fn decode<T>(
    body: &Bytes,
    from_json: fn(Value) -> Result<T, ValidationErrors>,
) -> Result<T, ApiError> {
    from_json(parse_body(body)?).map_err(ApiError::invalid)
}

fn message(text: &str) -> Json<Value> {
    Json(json!({ "message": text }))
}

pub(crate) async fn register_store(
    State(s): State<AdminState>,
    LimitedBody(body): AdminBody,
) -> ApiResult {
    let req = decode(&body, RegisterStore::from_json)?;
    let id = s
        .registry
        .register_store(req)
        .await
        .map_err(ApiError::from_error)?;
    tracing::info!(store_id = %id, "store registered");
    Ok(Json(
        json!({"message": "Store Created successfully", "store_id": id}),
    ))
}

pub(crate) async fn register_frequency(
    State(s): State<AdminState>,
    LimitedBody(body): AdminBody,
) -> ApiResult {
    let req = decode(&body, RegisterFrequency::from_json)?;
    s.registry
        .register_frequency(req)
        .await
        .map_err(ApiError::from_error)?;
    Ok(message("Frequency Created successfully"))
}

pub(crate) async fn register_entity(
    State(s): State<AdminState>,
    LimitedBody(body): AdminBody,
) -> ApiResult {
    let req = decode(&body, RegisterEntity::from_json)?;
    let entity = req.entity.clone();
    s.registry
        .register_entity(req)
        .await
        .map_err(ApiError::from_error)?;
    tracing::info!(%entity, "entity registered");
    Ok(message("Entity registered successfully"))
}

pub(crate) async fn register_model(
    State(s): State<AdminState>,
    LimitedBody(body): AdminBody,
) -> ApiResult {
    let req = decode(&body, RegisterModel::from_json)?;
    let (entity, model) = (req.model.entity.clone(), req.model.name.clone());
    s.registry
        .register_model(req)
        .await
        .map_err(ApiError::from_error)?;
    tracing::info!(%entity, %model, "model registered");
    Ok(message("Model registered successfully"))
}

pub(crate) async fn register_variant(
    State(s): State<AdminState>,
    LimitedBody(body): AdminBody,
) -> ApiResult {
    let req = decode(&body, RegisterVariant::from_json)?;
    let v = &req.variant;
    let (entity, model, variant) = (v.entity.clone(), v.model.clone(), v.name.clone());
    s.registry
        .register_variant(req)
        .await
        .map_err(ApiError::from_error)?;
    tracing::info!(%entity, %model, %variant, "variant registered");
    Ok(message("Variant registered successfully"))
}

pub(crate) async fn list_entities(State(s): State<AdminState>) -> ApiResult {
    let snap = s.registry.snapshot();
    let entities: Vec<Value> = snap
        .entities
        .values()
        .map(|e| {
            json!({
                "entity": e.name,
                "store_id": e.store_id,
                "models": e.models.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "entities": entities })))
}

pub(crate) async fn list_frequencies(State(s): State<AdminState>) -> ApiResult {
    Ok(Json(
        json!({ "frequencies": s.registry.snapshot().frequencies }),
    ))
}

pub(crate) async fn list_stores(State(s): State<AdminState>) -> ApiResult {
    Ok(Json(json!({ "stores": s.registry.snapshot().stores })))
}

pub(crate) async fn get_model(
    State(s): State<AdminState>,
    Path((entity, model)): Path<(String, String)>,
) -> ApiResult {
    let snap = s.registry.snapshot();
    let model = snap.model(&entity, &model).map_err(ApiError::from_error)?;
    serde_json::to_value(model)
        .map(Json)
        .map_err(ApiError::from_serde)
}

pub(crate) async fn get_variant(
    State(s): State<AdminState>,
    Path((entity, model, variant)): Path<(String, String, String)>,
) -> ApiResult {
    let snap = s.registry.snapshot();
    let variant = snap
        .variant(&entity, &model, &variant)
        .map_err(ApiError::from_error)?;
    serde_json::to_value(variant)
        .map(Json)
        .map_err(ApiError::from_serde)
}
