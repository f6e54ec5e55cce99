//! Proto ↔ engine types.

use skye_engine::search::filters::{FilterOp, FilterSpec};
use skye_engine::search::similar::SimilarRequest;
use skye_proto::{Filters, SkyeRequest};
use tonic::Status;

fn specs(group: &Filters) -> Result<Vec<FilterSpec>, Status> {
    group
        .filter
        .iter()
        .map(|f| {
            let op = FilterOp::from_proto(f.op).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "filter on '{}': unknown operator {}",
                    f.field, f.op
                ))
            })?;
            Ok(FilterSpec {
                field: f.field.clone(),
                op,
                values: f.values.clone(),
            })
        })
        .collect()
}

/// The engine's request for a proto request (operators checked here).
pub(crate) fn similar_request(r: SkyeRequest) -> Result<SimilarRequest, Status> {
    {
        Ok(SimilarRequest {
            entity: r.entity,
            model: r.model_name,
            variant: r.variant,
            limit: i64::from(r.limit),
            offset: i64::from(r.offset),
            embeddings: r.embeddings.into_iter().map(|e| e.embedding).collect(),
            candidate_ids: r.candidate_ids,
            filters: r.filters.iter().map(specs).collect::<Result<_, _>>()?,
            global_filters: r
                .global_filters
                .as_ref()
                .map(specs)
                .transpose()?
                .unwrap_or_default(),
            attributes: r.attribute,
        })
    }
}
