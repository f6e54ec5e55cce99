//! `SkyeSimilarCandidateService.getSimilarCandidates`.

use std::time::{SystemTime, UNIX_EPOCH};

use skye_engine::search::similar::SimilarService;
use skye_proto::skye_similar_candidate_service_server::SkyeSimilarCandidateService;
use skye_proto::{SkyeRequest, SkyeResponse};
use tonic::{Request, Response, Status};

use crate::conversions::{candidates, similar_request};
use crate::status;

/// The tonic service.
#[derive(Debug, Clone)]
pub struct SimilarCandidates {
    engine: SimilarService,
}

impl SimilarCandidates {
    pub fn new(engine: SimilarService) -> Self {
        SimilarCandidates { engine }
    }
}

#[tonic::async_trait]
impl SkyeSimilarCandidateService for SimilarCandidates {
    async fn get_similar_candidates(
        &self,
        request: Request<SkyeRequest>,
    ) -> Result<Response<SkyeResponse>, Status> {
        let req = similar_request(request.into_inner())?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let answers = self.engine.similar(req, now).await.map_err(status)?;
        Ok(Response::new(SkyeResponse {
            responses: answers.into_iter().map(candidates).collect(),
        }))
    }
}
