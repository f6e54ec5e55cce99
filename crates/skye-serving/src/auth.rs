//! `skye-caller-id` + `skye-auth-token` metadata, as the original (spec serving §1.2), with its
//! crash on an empty token list fixed: no tokens = authentication off (logged at start).

use std::sync::Arc;

use skye_core::auth::AuthTokens;
pub use skye_core::auth::{CALLER_ID_HEADER, TOKEN_HEADER};
use tonic::{Request, Status};

/// Checks every request's metadata against the shared [`AuthTokens`].
#[derive(Debug, Clone)]
pub struct AuthInterceptor {
    tokens: Arc<AuthTokens>,
}

impl AuthInterceptor {
    pub fn new(tokens: Arc<AuthTokens>) -> Self {
        AuthInterceptor { tokens }
    }

    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        if !self.tokens.enabled() {
            return Ok(req);
        }
        let md = req.metadata();
        if md.get(CALLER_ID_HEADER).is_none() {
            return Err(Status::invalid_argument(format!(
                "{CALLER_ID_HEADER} header is missing"
            )));
        }
        let Some(token) = md.get(TOKEN_HEADER) else {
            return Err(Status::invalid_argument(format!(
                "{TOKEN_HEADER} header is missing"
            )));
        };
        if self.tokens.accepts(token.as_bytes()) {
            Ok(req)
        } else {
            Err(Status::unauthenticated("Invalid auth token"))
        }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.check(req)
    }
}
