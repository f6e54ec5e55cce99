//! A plaintext HTTP/2 transport for tonic's generated clients that hands each request straight
//! to hyper's connection, in one piece.
//!
//! tonic's `Channel` passes every call through a buffer task (a hop to another task, often to
//! another thread) and streams the encoded message as its own body, which hyper sends as
//! HEADERS, DATA and an empty END_STREAM frame, flushed separately: three writes and up to
//! three wake-ups of the server per unary call. Here the message is gathered first (it is
//! already encoded in memory) and sent as one body, so the request leaves in one write, and the
//! caller's task talks to the connection task directly. A broken connection is replaced on the
//! next call (one reconnect at a time).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::BoxError;

type Sender = SendRequest<Full<Bytes>>;

/// One HTTP/2 connection to `authority`, reopened when it breaks. Clones share it.
#[derive(Clone)]
pub(crate) struct Direct {
    shared: Arc<Shared>,
}

struct Shared {
    authority: Authority,
    connect_timeout: Duration,
    current: Mutex<Option<Sender>>,
    /// Held while connecting, so concurrent calls wait for one new connection.
    connecting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("authority", &self.shared.authority)
            .finish()
    }
}

impl Direct {
    /// Connects to `authority` (`host:port`) now, so a wrong address fails at once.
    pub(crate) async fn connect(
        authority: Authority,
        connect_timeout: Duration,
    ) -> Result<Self, BoxError> {
        let direct = Direct {
            shared: Arc::new(Shared {
                authority,
                connect_timeout,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        };
        direct.sender().await?;
        Ok(direct)
    }

    /// The open connection, or a new one when there is none or it broke.
    async fn sender(&self) -> Result<Sender, BoxError> {
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let _one_at_a_time = self.shared.connecting.lock().await;
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let fresh = handshake(self.shared.authority.as_str(), self.shared.connect_timeout).await?;
        *self.current() = Some(fresh.clone());
        Ok(fresh)
    }

    fn open(&self) -> Option<Sender> {
        self.current().as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// The connection slot; held only to clone or replace a sender, so a poisoned lock still
    /// holds a usable value.
    fn current(&self) -> MutexGuard<'_, Option<Sender>> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn handshake(authority: &str, timeout: Duration) -> Result<Sender, BoxError> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| format!("connecting to {authority} took over {timeout:?}"))??;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        // Ends when the server closes or the last sender is dropped; the next call reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Direct {
    type Response = http::Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HTTP/2 multiplexes: a call waits only for a connection, which `call` finds.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let direct = self.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // tonic leaves the scheme and authority to the transport.
            let path = parts.uri.path_and_query().cloned();
            let mut uri = http::Uri::builder()
                .scheme("http")
                .authority(direct.shared.authority.clone());
            if let Some(path) = path {
                uri = uri.path_and_query(path);
            }
            parts.uri = uri.build()?;
            let message = body.collect().await?.to_bytes();
            // Both failures are the connection's: UNAVAILABLE, which the SDK retries (its
            // calls are reads) on the connection the next attempt opens.
            let unavailable = |e: BoxError| -> BoxError {
                let authority = &direct.shared.authority;
                Box::new(tonic::Status::unavailable(format!("{authority}: {e}")))
            };
            let mut sender = direct.sender().await.map_err(unavailable)?;
            let response = sender
                .send_request(http::Request::from_parts(parts, Full::new(message)))
                .await
                .map_err(|e| unavailable(e.into()))?;
            Ok(response.map(tonic::body::Body::new))
        })
    }
}
