//! The accepted `skye-auth-token` values, shared by the admin (HTTP) and serving (gRPC) checks.

/// Header carrying the token on both APIs.
pub const TOKEN_HEADER: &str = "skye-auth-token";
/// Header naming the caller on the gRPC API.
pub const CALLER_ID_HEADER: &str = "skye-caller-id";

/// The accepted tokens. Its `Debug` never shows them.
pub struct AuthTokens(Vec<String>);

impl std::fmt::Debug for AuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthTokens({} configured)", self.0.len())
    }
}

impl AuthTokens {
    pub fn new(tokens: Vec<String>) -> Self {
        AuthTokens(tokens)
    }

    /// Whether authentication is on (no tokens = off).
    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// Constant-time check against every configured token.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.0.iter().fold(false, |ok, t| {
            ok | constant_time_eq(t.as_bytes(), presented)
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly_and_never_print() {
        let t = AuthTokens::new(vec!["alpha".into(), "beta".into()]);
        assert!(t.accepts(b"beta"));
        assert!(!t.accepts(b"bet"));
        assert!(!t.accepts(b"beta "));
        assert!(!format!("{t:?}").contains("alpha"));
        assert!(!AuthTokens::new(vec![]).enabled());
    }
}
