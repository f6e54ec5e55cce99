//! A `skye standalone` child process for the benchmarks that measure a real server: its ports,
//! its log, its memory from `/proc`, a graceful stop and a restart on the same data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::http_client::HttpClient;

/// The child server; killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) admin: String,
    pub(crate) consumers: String,
    pub(crate) serving: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `skye standalone` on `<dir>/data` (log appended to `<dir>/server.log`) and waits up
/// to `wait` until admin, consumers and serving answer `/health`.
pub(crate) async fn start_server(
    dir: &Path,
    config: Option<&Path>,
    wait: Duration,
) -> anyhow::Result<Server> {
    let (admin, serving, consumers) = (free_port()?, free_port()?, free_port()?);
    let log_path = dir.join("server.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = Command::new(std::env::current_exe()?);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let child = command
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--bind", "127.0.0.1", "standalone"])
        .args(["--admin-port", &admin.to_string()])
        .args(["--serving-port", &serving.to_string()])
        .args(["--consumers-port", &consumers.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start skye standalone")?;
    let mut server = Server {
        child,
        admin: format!("http://127.0.0.1:{admin}"),
        consumers: format!("http://127.0.0.1:{consumers}"),
        serving: format!("http://127.0.0.1:{serving}"),
    };
    let http = HttpClient::new(None);
    let deadline = Instant::now() + wait;
    for base in [
        server.admin.clone(),
        server.consumers.clone(),
        server.serving.clone(),
    ] {
        while http.get(&format!("{base}/health")).await.is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "skye standalone exited ({status}); see {}",
                    log_path.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "skye standalone did not answer on {base}/health; see {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(server)
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to shut down (SIGTERM: drain, close the stores) and waits for it.
    pub(crate) fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        self.child.wait()?;
        Ok(started.elapsed())
    }
}

/// A `/proc/<pid>/status` line in MiB (`VmRSS`: resident now, `VmHWM`: peak resident).
pub(crate) fn proc_mib(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("RSS sampling needs Linux /proc")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key} line in /proc/<pid>/status"))?;
    Ok(kib / 1024.0)
}

/// Resident memory of `pid` in MiB.
pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    proc_mib(pid, "VmRSS")
}

/// A fresh directory for a benchmark run under `parent` (default: the temp directory).
pub(crate) fn run_dir(parent: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = parent.join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
