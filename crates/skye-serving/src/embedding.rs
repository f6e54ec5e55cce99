//! `SkyeEmbeddingService`: `getEmbeddingsForCandidates` and `getCandidateEmbeddingScores`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use skye_core::error::{ErrorCode, HasErrorCode};
use skye_engine::search::embeddings::{EmbeddingError, EmbeddingService};
use skye_proto::skye_embedding_service_server::SkyeEmbeddingService;
use skye_proto::{
    CandidateEmbedding, CandidateEmbeddingScore, EmbeddingDotProductRequest,
    EmbeddingDotProductResponse, SkyeBulkEmbeddingRequest, SkyeBulkEmbeddingResponse,
};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::metrics::{Metrics, RequestLabels};
use crate::status;

/// The tonic service.
#[derive(Debug, Clone)]
pub struct Embeddings {
    engine: EmbeddingService,
    metrics: Arc<Metrics>,
    default_deadline: Duration,
}

impl Embeddings {
    pub fn new(engine: EmbeddingService, metrics: Arc<Metrics>) -> Self {
        Embeddings {
            engine,
            metrics,
            default_deadline: crate::similar::DEFAULT_DEADLINE,
        }
    }

    /// The deadline of requests that carry no `grpc-timeout`.
    pub fn with_default_deadline(mut self, d: Duration) -> Self {
        self.default_deadline = d;
        self
    }

    /// Runs one RPC's engine call under its deadline and span, and records its latency.
    async fn run<T>(
        &self,
        rpc: &'static str,
        model: &str,
        variant: &str,
        deadline: Duration,
        call: impl std::future::Future<Output = Result<T, EmbeddingError>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let span = tracing::info_span!("rpc", rpc, model, variant);
        let outcome = tokio::time::timeout(deadline, call.instrument(span))
            .await
            .unwrap_or(Err(EmbeddingError::DeadlineExceeded(deadline)));
        let code = outcome.as_ref().map(|_| ()).map_err(|e| e.code());
        self.observe(rpc, model, variant, code, started);
        outcome.map_err(status)
    }

    /// Records the latency; names become labels only once they resolved (unknown names would
    /// grow the series without bound).
    fn observe(
        &self,
        rpc: &'static str,
        model: &str,
        variant: &str,
        outcome: Result<(), ErrorCode>,
        started: Instant,
    ) {
        let (code, known) = match outcome {
            Ok(()) => ("ok", true),
            Err(c) => (
                c.as_str(),
                !matches!(c, ErrorCode::InvalidArgument | ErrorCode::NotFound),
            ),
        };
        let (model, variant) = if known {
            (model.to_string(), variant.to_string())
        } else {
            ("unknown".to_string(), "unknown".to_string())
        };
        self.metrics
            .latency
            .get_or_create(&RequestLabels {
                rpc,
                model,
                variant,
                code,
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

fn widen(v: Vec<f32>) -> Vec<f64> {
    v.into_iter().map(f64::from).collect()
}

#[tonic::async_trait]
impl SkyeEmbeddingService for Embeddings {
    async fn get_embeddings_for_candidates(
        &self,
        request: Request<SkyeBulkEmbeddingRequest>,
    ) -> Result<Response<SkyeBulkEmbeddingResponse>, Status> {
        let deadline = crate::deadline(request.metadata(), self.default_deadline);
        let r = request.into_inner();
        let rows = self
            .run(
                "getEmbeddingsForCandidates",
                &r.model_name,
                &r.variant,
                deadline,
                self.engine
                    .embeddings(&r.entity, &r.model_name, &r.variant, &r.candidate_ids),
            )
            .await?;
        Ok(Response::new(SkyeBulkEmbeddingResponse {
            candidates_embedding: rows
                .into_iter()
                .map(|c| CandidateEmbedding {
                    id: c.id,
                    embedding: widen(c.embedding),
                    search_embedding: widen(c.search_embedding),
                })
                .collect(),
        }))
    }

    async fn get_candidate_embedding_scores(
        &self,
        request: Request<EmbeddingDotProductRequest>,
    ) -> Result<Response<EmbeddingDotProductResponse>, Status> {
        let deadline = crate::deadline(request.metadata(), self.default_deadline);
        let r = request.into_inner();
        let scores = self
            .run(
                "getCandidateEmbeddingScores",
                &r.model_name,
                &r.variant,
                deadline,
                self.engine.dot_products(
                    &r.entity,
                    &r.model_name,
                    &r.variant,
                    &r.candidate_ids,
                    &r.embedding,
                ),
            )
            .await?;
        Ok(Response::new(EmbeddingDotProductResponse {
            candidate_embedding_scores: scores
                .into_iter()
                .map(|(id, score)| CandidateEmbeddingScore {
                    candidate_id: id,
                    score: f64::from(score),
                })
                .collect(),
        }))
    }
}
