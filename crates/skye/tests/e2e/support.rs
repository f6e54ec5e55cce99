//! A `skye` child process and a small HTTP client for the tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `skye` process. Killed (SIGKILL) on drop.
pub struct Skye {
    child: Child,
    pub addrs: HashMap<String, SocketAddr>,
    /// Stdout lines that are not JSON log records (what a user reads, e.g. the demo).
    pub output: Arc<Mutex<Vec<String>>>,
}

impl Skye {
    /// Starts `skye <args>` on `data_dir` with every port 0 and waits until each component in
    /// `components` logged its address.
    pub fn start(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        components: &[&str],
    ) -> Skye {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skye"));
        cmd.args(["--log-format", "json", "--bind", "127.0.0.1", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn skye");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        let text = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    text.lock().unwrap().push(line);
                    continue;
                };
                if v["fields"]["message"] == "listening" {
                    let component = v["fields"]["component"].as_str().unwrap_or("").to_string();
                    let addr = v["fields"]["addr"]
                        .as_str()
                        .unwrap_or("")
                        .parse::<SocketAddr>();
                    if let Ok(addr) = addr {
                        let _ = tx.send((component, addr));
                    }
                }
            }
        });
        let mut addrs = HashMap::new();
        while addrs.len() < components.len() {
            match rx.recv_timeout(START_TIMEOUT) {
                Ok((c, a)) => {
                    addrs.insert(c, a);
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "skye {args:?} did not start (exit status {status:?}); its stderr is above"
                    );
                }
            }
        }
        Skye {
            child,
            addrs,
            output,
        }
    }

    /// `skye standalone` with every component on a free port.
    pub fn standalone(data_dir: &Path, env: &[(&str, &str)]) -> Skye {
        Skye::standalone_with(data_dir, env, &[])
    }

    /// [`Skye::standalone`] with more arguments (e.g. `--demo`).
    pub fn standalone_with(data_dir: &Path, env: &[(&str, &str)], more: &[&str]) -> Skye {
        let mut args = vec![
            "standalone",
            "--admin-port",
            "0",
            "--serving-port",
            "0",
            "--consumers-port",
            "0",
        ];
        args.extend_from_slice(more);
        Skye::start(data_dir, &args, env, &["admin", "serving", "consumers"])
    }

    pub fn url(&self, component: &str, path: &str) -> String {
        format!("http://{}{path}", self.addrs[component])
    }

    /// SIGKILL, as `kill -9`.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("skye did not stop within 5 s of SIGTERM");
    }
}

impl Drop for Skye {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub raw: String,
}

/// Minimal JSON-over-HTTP client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub headers: Vec<(String, String)>,
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub async fn send(&self, method: Method, url: &str, body: &str) -> Reply {
        self.try_send(method, url, body)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// Like [`Http::send`], but a transport failure (e.g. the server was killed) is an `Err`.
    pub async fn try_send(&self, method: Method, url: &str, body: &str) -> Result<Reply, String> {
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .map_err(|_| "request timed out".to_string())?
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let raw = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Ok(Reply { status, body, raw })
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, "").await
    }

    pub async fn post(&self, url: &str, body: &Value) -> Reply {
        self.send(Method::POST, url, &body.to_string()).await
    }
}
