//! Conformance suites: one per backend trait, run against every implementation available.
//!
//! The embedded implementations always run. Scale-out implementations run when their service is
//! reachable (`.ci/run` starts them) and print `SKIPPED` loudly otherwise.

mod cache;
mod config_store;
mod embedded_upkeep;
mod event_log;
mod on_disk;
mod remote_grpc;
mod storage;
mod vector_store;

/// The address of a live service for a scale-out suite, from `var`. When it is not set the suite
/// is skipped — said on stderr past the test harness's capture, so it is never silent — unless
/// `SKYE_REQUIRE_SERVICES` is set (as `.ci/run` does), which makes a missing service a failure.
#[allow(dead_code)]
/// The live Qdrant's gRPC URL: required under `SKYE_REQUIRE_SERVICES` unless
/// `scripts/services.sh` found no Qdrant binary to start (`SKYE_TEST_NO_QDRANT`).
pub fn qdrant(suite: &str) -> Option<String> {
    if std::env::var_os("SKYE_TEST_NO_QDRANT").is_some() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {suite}: no Qdrant server here (../shared/qdrant/qdrant not found)"
        );
        return None;
    }
    service("SKYE_TEST_QDRANT_URL", suite)
}

pub fn service(var: &str, suite: &str) -> Option<String> {
    use std::io::Write;
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("SKYE_REQUIRE_SERVICES").is_some() => {
            panic!("{suite}: {var} is not set but SKYE_REQUIRE_SERVICES is")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {suite}: {var} is not set (.ci/run starts the service and sets it)"
            );
            None
        }
    }
}
