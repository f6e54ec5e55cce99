//! `skye-caller-id` + `skye-auth-token` metadata, as the original (spec serving §1.2), with its
//! crash on an empty token list fixed: no tokens = authentication off (logged at start).

use std::sync::Arc;

use tonic::{Request, Status};

pub const CALLER_ID_HEADER: &str = "skye-caller-id";
pub const TOKEN_HEADER: &str = "skye-auth-token";

/// Checks every request's metadata. Tokens are compared in constant time and never logged.
#[derive(Clone)]
pub struct AuthInterceptor {
    tokens: Arc<Vec<String>>,
}

impl std::fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthInterceptor({} tokens)", self.tokens.len())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthInterceptor {
    pub fn new(tokens: Vec<String>) -> Self {
        AuthInterceptor {
            tokens: Arc::new(tokens),
        }
    }

    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
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
        let presented = token.as_bytes();
        let ok = self.tokens.iter().fold(false, |ok, t| {
            ok | constant_time_eq(t.as_bytes(), presented)
        });
        if ok {
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
