//! Point operations on a collection, applied in order with consecutive operations of one kind
//! batched into one call.

use std::collections::BTreeMap;

use skye_core::vector_store::{
    CollectionRef, PayloadValue, VectorPoint, VectorStore, VectorStoreError,
};

/// One change to a collection.
#[derive(Debug, Clone, PartialEq)]
pub enum PointOp {
    Upsert(VectorPoint),
    Delete(String),
    Payload(String, BTreeMap<String, PayloadValue>),
}

impl PointOp {
    fn kind(&self) -> u8 {
        match self {
            PointOp::Upsert(_) => 0,
            PointOp::Delete(_) => 1,
            PointOp::Payload(..) => 2,
        }
    }
}

/// Refuses a vector the model cannot index: the wrong length, or a NaN/infinite value. Checked
/// per event before any write, since a store refuses the whole batch it arrives in.
pub fn check_vector(what: &str, v: &[f32], dim: usize, model: &str) -> Result<(), String> {
    if v.len() != dim {
        return Err(format!(
            "{what} has {} values but model '{model}' has dimension {dim}",
            v.len()
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format!("{what} contains NaN or infinity"));
    }
    Ok(())
}

/// Applies `ops` to `collection` in order; runs of one kind go in one call.
pub async fn apply(
    vectors: &dyn VectorStore,
    collection: &CollectionRef,
    ops: Vec<PointOp>,
) -> Result<(), VectorStoreError> {
    let mut ops = ops.into_iter().peekable();
    while let Some(first) = ops.next() {
        let kind = first.kind();
        let mut run = vec![first];
        while ops.peek().is_some_and(|o| o.kind() == kind) {
            run.extend(ops.next());
        }
        let mut points = Vec::new();
        let mut ids = Vec::new();
        let mut updates = Vec::new();
        for op in run {
            match op {
                PointOp::Upsert(p) => points.push(p),
                PointOp::Delete(id) => ids.push(id),
                PointOp::Payload(id, p) => updates.push((id, p)),
            }
        }
        if !points.is_empty() {
            vectors.upsert(collection, points).await?;
        }
        if !ids.is_empty() {
            vectors.delete_points(collection, ids).await?;
        }
        if !updates.is_empty() {
            vectors.set_payload(collection, updates).await?;
        }
    }
    Ok(())
}
