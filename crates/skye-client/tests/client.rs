//! The SDK against a scripted server: metadata, retries on transient codes only, deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use skye_client::{ClientConfig, SkyeClient};
use skye_proto::skye_similar_candidate_service_server::{
    SkyeSimilarCandidateService, SkyeSimilarCandidateServiceServer,
};
use skye_proto::{Candidate, CandidateResponse, Meta, SkyeRequest, SkyeResponse};
use tonic::{Code, Request, Response, Status};

/// Behaves by `entity`: "flaky" fails twice with UNAVAILABLE, "slow" sleeps 300 ms, "bad" is a
/// client mistake; otherwise echoes the caller id and token it received.
#[derive(Default)]
struct Scripted {
    calls: Arc<AtomicU32>,
}

#[tonic::async_trait]
impl SkyeSimilarCandidateService for Scripted {
    async fn get_similar_candidates(
        &self,
        req: Request<SkyeRequest>,
    ) -> Result<Response<SkyeResponse>, Status> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let header = |k: &str| {
            req.metadata()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (caller, token) = (header("skye-caller-id"), header("skye-auth-token"));
        let timeout = header("grpc-timeout");
        match req.get_ref().entity.as_str() {
            "flaky" if n < 2 => return Err(Status::unavailable("warming up")),
            "slow" => tokio::time::sleep(Duration::from_millis(300)).await,
            "bad" => return Err(Status::invalid_argument("limit is required")),
            _ => {}
        }
        let meta = Meta {
            score: 1.0,
            attributes_map: [
                ("token".to_string(), token),
                ("timeout".to_string(), timeout),
            ]
            .into(),
        };
        Ok(Response::new(SkyeResponse {
            responses: vec![CandidateResponse {
                candidates: vec![Candidate {
                    id: caller,
                    meta: Some(meta),
                }],
            }],
        }))
    }
}

async fn start() -> (String, Arc<AtomicU32>) {
    let scripted = Scripted::default();
    let calls = scripted.calls.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SkyeSimilarCandidateServiceServer::new(scripted))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), calls)
}

fn req(entity: &str) -> SkyeRequest {
    SkyeRequest {
        entity: entity.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn sends_metadata_and_a_deadline() {
    let (url, _) = start().await;
    let client = SkyeClient::connect(ClientConfig::new(url, "svc-a").auth_token("tok"))
        .await
        .unwrap();
    let resp = client.similar_candidates(req("ok")).await.unwrap();
    let c = &resp.responses[0].candidates[0];
    assert_eq!(c.id, "svc-a");
    let attrs = &c.meta.as_ref().unwrap().attributes_map;
    assert_eq!(attrs["token"], "tok");
    assert!(
        !attrs["timeout"].is_empty(),
        "the per-attempt deadline reaches the server as grpc-timeout"
    );
}

#[tokio::test]
async fn retries_transient_failures_but_not_client_mistakes() {
    let (url, calls) = start().await;
    let config = ClientConfig::new(url, "svc").retries(2, Duration::from_millis(1));
    let client = SkyeClient::connect(config).await.unwrap();
    client.similar_candidates(req("flaky")).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two UNAVAILABLE answers, then success"
    );
    let err = client.similar_candidates(req("bad")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::InvalidArgument));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "a client mistake is not retried"
    );
}

#[tokio::test]
async fn gives_up_after_the_deadline_and_the_retries() {
    let (url, calls) = start().await;
    let config = ClientConfig::new(url, "svc")
        .timeout(Duration::from_millis(50))
        .retries(1, Duration::from_millis(1));
    let client = SkyeClient::connect(config).await.unwrap();
    let err = client.similar_candidates(req("slow")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::DeadlineExceeded), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let unreachable = SkyeClient::connect(ClientConfig::new("http://127.0.0.1:1", "svc")).await;
    assert!(matches!(
        unreachable,
        Err(skye_client::ClientError::Connect { .. })
    ));
}

/// A server on `addr` until `stop` fires (its connections closed then).
fn serve_until(listener: tokio::net::TcpListener, stop: tokio::sync::oneshot::Receiver<()>) {
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SkyeSimilarCandidateServiceServer::new(Scripted::default()))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stop.await;
                },
            ),
    );
}

#[tokio::test]
async fn a_broken_connection_is_reopened_and_a_dead_server_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    serve_until(listener, stopped);
    let config =
        ClientConfig::new(format!("http://{addr}"), "svc").retries(0, Duration::from_millis(1));
    let client = SkyeClient::connect(config).await.unwrap();
    client.similar_candidates(req("ok")).await.unwrap();

    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = client.similar_candidates(req("ok")).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::Unavailable), "{err}");

    // The same address again: the next call connects anew.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let (_keep, running) = tokio::sync::oneshot::channel();
    serve_until(listener, running);
    let resp = client.similar_candidates(req("ok")).await.unwrap();
    assert_eq!(resp.responses[0].candidates[0].id, "svc");
}

#[tokio::test]
async fn tonic_channel_transport_sends_the_same_calls() {
    let (url, calls) = start().await;
    let config = ClientConfig::new(url, "svc-b")
        .auth_token("tok")
        .tonic_channel(true)
        .retries(2, Duration::from_millis(1));
    let client = SkyeClient::connect(config).await.unwrap();
    let resp = client.similar_candidates(req("ok")).await.unwrap();
    assert_eq!(resp.responses[0].candidates[0].id, "svc-b");
    client.similar_candidates(req("flaky")).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "one call, then one UNAVAILABLE answer retried"
    );
}

#[tokio::test]
async fn a_wrong_address_fails_at_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = SkyeClient::connect(ClientConfig::new(format!("http://{addr}"), "svc"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, skye_client::ClientError::Connect { .. }),
        "{err}"
    );
}
