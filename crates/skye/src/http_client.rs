//! A small JSON-over-HTTP/1 client for the CLI commands that talk to a running Skye.

use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Time one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    token: Option<String>,
}

impl HttpClient {
    pub fn new(token: Option<String>) -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            token,
        }
    }

    /// Sends a JSON request; returns the status and the JSON body (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_as(method, url, body, "application/json").await
    }

    /// [`HttpClient::send`] of a body of `content_type`.
    async fn send_as(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", content_type);
        if let Some(t) = &self.token {
            req = req.header(skye_core::auth::TOKEN_HEADER, t);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .with_context(|| format!("bad URL {url}"))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .with_context(|| format!("{url}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| format!("cannot reach {url} (is Skye running?)"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{url}: response body"))?
            .to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// POSTs JSON and fails with the server's message on a non-2xx answer.
    pub async fn post(&self, url: &str, body: &Value) -> anyhow::Result<Value> {
        self.post_bytes(url, serde_json::to_vec(body)?).await
    }

    /// [`HttpClient::post`] of a body already encoded as JSON.
    pub async fn post_bytes(&self, url: &str, body: Vec<u8>) -> anyhow::Result<Value> {
        self.post_bytes_as(url, body, "application/json").await
    }

    /// POSTs a body of `content_type`, failing as [`HttpClient::post`] does.
    pub async fn post_bytes_as(
        &self,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.send_as(Method::POST, url, body, content_type).await?;
        ok(url, status, value)
    }

    pub async fn get(&self, url: &str) -> anyhow::Result<Value> {
        let (status, value) = self.send(Method::GET, url, Vec::new()).await?;
        ok(url, status, value)
    }
}

fn ok(url: &str, status: u16, value: Value) -> anyhow::Result<Value> {
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let message = value
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    bail!("{url}: HTTP {status}: {message}")
}
