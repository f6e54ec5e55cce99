//! `SkyeSimilarCandidateService.getSimilarCandidates`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skye_core::error::{ErrorCode, HasErrorCode};
use skye_engine::search::similar::{SearchError, SimilarService};
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateService;
use skye_proto::{SkyeRequest, SkyeResponse};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use skye_engine::search::original_cache::to_response as candidates;

use crate::conversions::similar_request;
use crate::metrics::{Metrics, RequestLabels, VariantLabels};
use crate::status;

/// The tonic service.
#[derive(Debug, Clone)]
pub struct SimilarCandidates {
    engine: SimilarService,
    metrics: Arc<Metrics>,
    default_deadline: Duration,
}

impl SimilarCandidates {
    pub fn new(engine: SimilarService, metrics: Arc<Metrics>) -> Self {
        SimilarCandidates {
            engine,
            metrics,
            default_deadline: DEFAULT_DEADLINE,
        }
    }

    /// The deadline of requests that carry no `grpc-timeout`.
    pub fn with_default_deadline(mut self, d: Duration) -> Self {
        self.default_deadline = d;
        self
    }
}

/// Deadline used when neither the client nor the configuration gives one.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// Codes that can only arise after the model and variant were resolved, so their names are
/// registered ones and safe as metric labels.
fn resolved(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ResourceExhausted
            | ErrorCode::FailedPrecondition
            | ErrorCode::Unavailable
            | ErrorCode::Internal
    )
}

#[tonic::async_trait]
impl SkyeSimilarCandidateService for SimilarCandidates {
    async fn get_similar_candidates(
        &self,
        request: Request<SkyeRequest>,
    ) -> Result<Response<SkyeResponse>, Status> {
        let started = Instant::now();
        let deadline = crate::deadline(request.metadata(), self.default_deadline);
        let req = similar_request(request.into_inner())?;
        let labels = VariantLabels {
            model: req.model.clone(),
            variant: req.variant.clone(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Past the deadline the search is abandoned (its future dropped) and the caller told so.
        let span = tracing::info_span!(
            "rpc",
            rpc = "getSimilarCandidates",
            model = %labels.model,
            variant = %labels.variant,
            queries = req.embeddings.len().max(req.candidate_ids.len())
        );
        let outcome =
            tokio::time::timeout(deadline, self.engine.similar(req, now).instrument(span))
                .await
                .unwrap_or(Err(SearchError::DeadlineExceeded(deadline)));
        let (code, known) = match &outcome {
            Ok(_) => ("ok", true),
            Err(e) => (e.code().as_str(), resolved(e.code())),
        };
        let (model, variant) = if known {
            (labels.model.clone(), labels.variant.clone())
        } else {
            ("unknown".to_string(), "unknown".to_string())
        };
        self.metrics
            .latency
            .get_or_create(&RequestLabels {
                rpc: "getSimilarCandidates",
                model,
                variant,
                code,
            })
            .observe(started.elapsed().as_secs_f64());
        let answer = outcome.map_err(status)?;
        let returned: usize = answer.answers.iter().map(Vec::len).sum();
        self.metrics
            .results
            .get_or_create(&labels)
            .inc_by(returned as u64);
        self.metrics
            .cache_hits
            .get_or_create(&labels)
            .inc_by(answer.cache_hits as u64);
        self.metrics
            .cache_misses
            .get_or_create(&labels)
            .inc_by(answer.cache_misses as u64);
        Ok(Response::new(SkyeResponse {
            responses: answer.answers.into_iter().map(candidates).collect(),
        }))
    }
}
