//! Filters and attributes for variants whose vector DB holds no payloads (NGT, Eigenix).
//!
//! The original sends such a request unfiltered and returns no attributes. Skye evaluates them
//! itself: it asks the service for more neighbours than the page needs, builds each hit's
//! payload the way ingestion builds a point's (the aggregator row's column, else the field's
//! default; spec AC §4.3), keeps the hits the filter admits, and widens the search (×4, up to
//! [`MAX_CANDIDATES`] neighbours) while the page is short and the service may hold more. The
//! filter is evaluated by the embedded engine's own rules (`skye_index::neutral`), so a filter
//! means the same on every vector DB.
//!
//! Limits of a post-filter, said plainly: values that only ever arrived on embedding events
//! (never in the aggregator) are unknown here and take the field's default; and a filter that
//! admits fewer hits than the page needs among the first [`MAX_CANDIDATES`] neighbours returns a
//! short page.

use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

use skye_core::domain::{Variant, VectorDbType};
use skye_core::storage::{AggregatorRow, AggregatorStore};
use skye_core::vector_store::{CollectionRef, PayloadValue, ScoredPoint, SearchQuery, VectorRead};
use skye_index::Value;
use skye_index::neutral::NamedFilter;

use super::similar::SearchError;
use crate::ingest::payload::build_payload;

/// The most neighbours asked of the service for one filtered query.
pub const MAX_CANDIDATES: usize = 4096;
/// How much the search widens per round.
const WIDEN: usize = 4;

/// Whether `variant`'s vector DB holds no payloads, so Skye filters its answers.
pub fn applies(variant: &Variant) -> bool {
    matches!(
        variant.vector_db_type,
        VectorDbType::Ngt | VectorDbType::Eigenix
    )
}

/// Whether a query needs payloads (a filter or attributes).
pub fn needs_payloads(q: &SearchQuery) -> bool {
    q.filter.as_ref().is_some_and(|f| !f.is_empty()) || !q.with_payload.is_empty()
}

/// Where hit payloads come from.
#[derive(Debug, Clone, Copy)]
pub struct PayloadSource<'a> {
    pub variant: &'a Variant,
    pub aggregator: &'a dyn AggregatorStore,
    /// The entity's aggregator table.
    pub table: &'a str,
}

/// One query still being answered.
struct Pending {
    index: usize,
    query: SearchQuery,
    filter: Option<NamedFilter>,
    /// Neighbours asked for in the next round.
    fetch: usize,
}

impl Pending {
    fn wanted(&self) -> usize {
        self.query.offset + self.query.limit
    }

    /// The service's query: no filter, no payload, from the first neighbour.
    fn remote(&self) -> SearchQuery {
        SearchQuery {
            vector: self.query.vector.clone(),
            limit: self.fetch,
            offset: 0,
            filter: None,
            with_payload: Vec::new(),
            exclude: self.query.exclude.clone(),
            ef: self.query.ef,
            exact: self.query.exact,
            indexed_only: self.query.indexed_only,
            score_threshold: self.query.score_threshold,
            stop: self.query.stop.clone(),
        }
    }
}

/// Answers `queries` on `collection`, filtering and attaching attributes from `source`.
pub async fn search(
    vectors: &dyn VectorRead,
    collection: &CollectionRef,
    source: PayloadSource<'_>,
    queries: Vec<SearchQuery>,
) -> Result<Vec<Vec<ScoredPoint>>, SearchError> {
    let store_error = |source| SearchError::Store {
        collection: collection.clone(),
        source,
    };
    let mut answers = vec![Vec::new(); queries.len()];
    let mut pending: Vec<Pending> = queries
        .into_iter()
        .enumerate()
        .map(|(index, query)| {
            let filter = query
                .filter
                .as_ref()
                .filter(|f| !f.is_empty())
                .map(NamedFilter::new);
            let wanted = query.offset + query.limit;
            let fetch = match filter {
                Some(_) => (wanted * WIDEN).min(MAX_CANDIDATES).max(wanted),
                None => wanted,
            };
            Pending {
                index,
                query,
                filter,
                fetch,
            }
        })
        .collect();
    while !pending.is_empty() {
        let found = vectors
            .search(collection, pending.iter().map(Pending::remote).collect())
            .await
            .map_err(store_error)?;
        let rows = rows_of(source, &found).await?;
        let mut next = Vec::new();
        for (mut p, hits) in pending.into_iter().zip(found) {
            let exhausted = hits.len() < p.fetch || p.fetch >= MAX_CANDIDATES.max(p.wanted());
            let kept: Vec<ScoredPoint> = hits
                .into_iter()
                .filter_map(|hit| {
                    let payload = payload_of(source.variant, rows.get(&hit.id));
                    if p.filter.as_ref().is_some_and(|f| !f.matches(&payload)) {
                        return None;
                    }
                    Some(ScoredPoint {
                        payload: p
                            .query
                            .with_payload
                            .iter()
                            .filter_map(|k| payload.get(k).map(|v| (k.clone(), render(v))))
                            .collect(),
                        ..hit
                    })
                })
                .collect();
            if kept.len() >= p.wanted() || exhausted {
                answers[p.index] = kept
                    .into_iter()
                    .skip(p.query.offset)
                    .take(p.query.limit)
                    .collect();
            } else {
                p.fetch = (p.fetch * WIDEN).min(MAX_CANDIDATES.max(p.wanted()));
                next.push(p);
            }
        }
        pending = next;
    }
    Ok(answers)
}

/// The aggregator rows of every hit, in one read.
async fn rows_of(
    source: PayloadSource<'_>,
    found: &[Vec<ScoredPoint>],
) -> Result<HashMap<String, AggregatorRow>, SearchError> {
    let mut ids: Vec<String> = found.iter().flatten().map(|h| h.id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let span = tracing::debug_span!("attributes_fetch", ids = ids.len());
    let rows = source
        .aggregator
        .get(source.table, &ids)
        .instrument(span)
        .await
        .map_err(SearchError::Aggregator)?;
    Ok(ids
        .into_iter()
        .zip(rows)
        .filter_map(|(id, row)| row.map(|r| (id, r)))
        .collect())
}

/// A hit's payload as ingestion would have built it from the aggregator alone.
fn payload_of(variant: &Variant, row: Option<&AggregatorRow>) -> BTreeMap<String, PayloadValue> {
    build_payload(variant, &BTreeMap::new(), row).unwrap_or_else(|e| {
        tracing::warn!(variant = %variant.name, error = %e,
            "cannot build a hit's payload; it matches no condition");
        BTreeMap::new()
    })
}

fn render(v: &PayloadValue) -> String {
    Value::from(v).render()
}
