//! Restart drills against the real services: each drill runs its own etcd, Kafka-protocol broker
//! or Redis (the binaries `.ci/run` installs), takes it away while Skye runs, brings it back, and
//! checks that watches, consumers and caches reconnect and nothing acknowledged is lost.

#![cfg(any(feature = "etcd", feature = "kafka", feature = "redis"))]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::{Http, Skye};

/// A service process of a drill; killed when dropped.
struct Service {
    child: Child,
}

impl Service {
    fn start(bin: &str, args: &[String]) -> Service {
        let child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Service { child }
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} failed");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// etcd killed (SIGKILL) and restarted on its data directory while two admins watch it: writes
/// during the outage fail fast with 503, the watches come back by themselves, every write
/// acknowledged before and after is there, and the second admin sees the new writes.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_watches_reconnect_and_nothing_is_lost() {
    let Some(etcd) = crate::scaleout::service("SKYE_TEST_ETCD_BIN", "etcd restart drill") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (client, peer) = (free_port(), free_port());
    let args: Vec<String> = [
        "--name".to_string(),
        "drill".into(),
        "--data-dir".into(),
        data.path().join("etcd").display().to_string(),
        "--listen-client-urls".into(),
        format!("http://127.0.0.1:{client}"),
        "--advertise-client-urls".into(),
        format!("http://127.0.0.1:{client}"),
        "--listen-peer-urls".into(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-advertise-peer-urls".into(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-cluster".into(),
        format!("drill=http://127.0.0.1:{peer}"),
    ]
    .into();
    let server = Service::start(&etcd, &args);
    wait_port(client).await;
    let endpoint = format!("127.0.0.1:{client}");
    let env = [("ETCD_SERVER", endpoint.as_str()), ("APP_NAME", "drill")];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Skye::start(dir_a.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let b = Skye::start(dir_b.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let http = Http::new();
    let register = |skye: &Skye, path: &str, body: serde_json::Value| {
        let url = skye.url("admin", &format!("/api/v1/model/{path}"));
        let http = http.clone();
        async move {
            http.try_send(hyper::Method::POST, &url, &body.to_string())
                .await
        }
    };
    for (path, body) in [
        (
            "register-store",
            json!({"conf_id": 1, "embeddings_table": "catalog_embeddings", "aggregator_table": "catalog_aggregator"}),
        ),
        (
            "register-entity",
            json!({"entity": "catalog", "store_id": "1"}),
        ),
        (
            "register-model",
            json!({"entity": "catalog", "model": "intent",
                "model_config": {"distance_function": "COSINE", "vector_dimension": 4}}),
        ),
    ] {
        let r = register(&a, path, body).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
    }

    // Outage: a write is refused quickly and clearly, not hung.
    drop(server);
    let started = std::time::Instant::now();
    let r = register(
        &a,
        "register-variant",
        json!({"entity": "catalog", "model": "intent", "variant": "during"}),
    )
    .await
    .unwrap();
    eprintln!(
        "etcd drill: write during the outage: {} {} after {:?}",
        r.status,
        r.raw,
        started.elapsed()
    );
    assert_eq!(r.status, 503, "{}", r.raw);
    assert!(r.body["error"].is_string(), "{}", r.raw);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the refused write took {:?}",
        started.elapsed()
    );
    // Reads are served from the last snapshot meanwhile.
    let r = http
        .get(&b.url("admin", "/api/v1/models/catalog/intent"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);

    // Back on the same data: a write through A reaches B through its re-established watch.
    let _server = Service::start(&etcd, &args);
    wait_port(client).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = register(
            &a,
            "register-variant",
            json!({"entity": "catalog", "model": "intent", "variant": "after"}),
        )
        .await
        .unwrap();
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never wrote again: {}",
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(&b.url("admin", "/api/v1/models/catalog/intent/variants/after"))
            .await;
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B's watch never came back: {}",
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .get(&b.url("admin", "/api/v1/models/catalog/intent"))
        .await;
    assert_eq!(
        r.status, 200,
        "the model written before the outage: {}",
        r.raw
    );
}

/// The Kafka-protocol broker frozen (SIGSTOP, as in a network partition or a stalled broker)
/// for longer than the consumer session timeout, in the middle of a RESET job, then resumed:
/// ingest requests made during the freeze complete or fail cleanly, the consumer group
/// re-forms, and the job completes with every id exactly once.
///
/// A restart of the broker process is not drilled: the only Kafka-protocol broker installable
/// here (Tansu, INFRA.md §3) keeps its log in memory, so a restart loses the topics themselves.
#[cfg(feature = "kafka")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_freeze_consumers_resume_without_loss() {
    use crate::lifecycle::{job_events, register, wait_completed};
    use serde_json::Value;
    use skye_client::{ClientConfig, SkyeClient};
    use skye_proto::{Embedding, SkyeRequest};

    let Some(tansu) = crate::scaleout::service("SKYE_TEST_TANSU_BIN", "Kafka freeze drill") else {
        return;
    };
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let broker = Service::start(
        &tansu,
        &[
            "broker".to_string(),
            "--listener-url".into(),
            url.clone(),
            "--advertised-listener-url".into(),
            url,
            "--storage-engine".into(),
            "memory://tansu/".into(),
        ],
    );
    wait_port(port).await;
    let brokers = format!("127.0.0.1:{port}");
    let env = [
        ("KAFKA_BROKER", brokers.as_str()),
        ("KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("KAFKA_MAX_POLL_INTERVAL_MS", "10000"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &env);
    let http = Http::new();
    register(&skye, &http).await;
    let ticket = http
        .post(
            &skye.url("admin", "/api/v1/qdrant/process-multi-variant"),
            &json!({"entity": "catalog", "model": "intent", "variants": ["all"]}),
        )
        .await;
    assert_eq!(ticket.status, 200, "{}", ticket.raw);
    let ids: Vec<usize> = (0..60).collect();
    let mut events = job_events(&ticket.body, &ids, 0, &[]);
    let eofs = events.split_off(ids.len());
    let ingest = skye.url("consumers", "/api/v1/ingest/skye.embedding");
    let post = |batch: Vec<Value>| {
        let (http, ingest) = (http.clone(), ingest.clone());
        async move {
            http.try_send(
                hyper::Method::POST,
                &ingest,
                &Value::Array(batch).to_string(),
            )
            .await
        }
    };
    let r = post(events[..20].to_vec()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);

    broker.signal("-STOP");
    // Requests during the freeze: acknowledged once the broker is back, or refused (5xx) or
    // timed out by the client; either way they are re-sent below (ingestion is idempotent).
    let during = tokio::spawn(post(events[20..40].to_vec()));
    tokio::time::sleep(Duration::from_secs(8)).await;
    broker.signal("-CONT");
    let during = during.await.unwrap();
    eprintln!(
        "kafka drill: the request made during the freeze: {:?}",
        during.as_ref().map(|r| (r.status, r.raw.clone()))
    );
    if let Ok(r) = &during {
        assert!(r.status == 200 || r.status >= 500, "{} {}", r.status, r.raw);
    }
    for range in [20..40, 40..60] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match post(events[range.clone()].to_vec()).await {
                Ok(r) if r.status == 200 => break,
                other => assert!(
                    tokio::time::Instant::now() < deadline,
                    "ingest never recovered: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let r = post(eofs).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.raw);
    wait_completed(&skye, &http, "all").await;

    let client = SkyeClient::connect(
        ClientConfig::new(skye.url("serving", ""), "e2e").timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let answer = client
        .similar_candidates(SkyeRequest {
            entity: "catalog".into(),
            model_name: "intent".into(),
            variant: "all".into(),
            limit: 1000,
            embeddings: vec![Embedding {
                embedding: vec![0.5, -0.25, 1.0, 0.1],
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut served: Vec<String> = answer.responses[0]
        .candidates
        .iter()
        .map(|c| c.id.clone())
        .collect();
    served.sort();
    let mut want: Vec<String> = ids.iter().map(|i| format!("c{i}")).collect();
    want.sort();
    assert_eq!(served, want, "every id exactly once");
}

/// The Redis cache frozen (SIGSTOP: connections accepted, nothing answered), then killed and
/// restarted empty on its port, under a closed loop of searches: no search fails, none waits
/// much longer than the cache's own timeouts, and once Redis is back the results are cached in
/// it again without a restart of Skye.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_then_restarted_searches_never_fail_and_caching_resumes() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let Some(redis) = crate::scaleout::service("SKYE_TEST_REDIS_BIN", "Redis restart drill") else {
        return;
    };
    let port = free_port();
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let server = Service::start(&redis, &args);
    wait_port(port).await;
    let dbsize = || {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "dbsize"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let skye = Skye::standalone(dir.path(), &[("REDIS_ADDR", addr.as_str())]);
    let client = Arc::new(crate::scaleout::serve_cached_variant(&skye, &[1, 2, 3, 4, 5]).await);

    // Two clients cycling through 50 distinct queries: hits once cached, misses otherwise.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|w| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut failures, mut slowest, mut done) = (Vec::new(), Duration::ZERO, 0u32);
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let x = (i % 50) as f64 / 50.0;
                    i += 2;
                    let started = std::time::Instant::now();
                    let r = client
                        .similar_candidates(skye_proto::SkyeRequest {
                            entity: "catalog".into(),
                            model_name: "intent".into(),
                            variant: "cached".into(),
                            limit: 10,
                            embeddings: vec![skye_proto::Embedding {
                                embedding: vec![1.0, x, 0.5, 0.0],
                            }],
                            ..Default::default()
                        })
                        .await;
                    slowest = slowest.max(started.elapsed());
                    match r {
                        Ok(r) if r.responses[0].candidates.len() == 5 => done += 1,
                        Ok(r) => {
                            failures.push(format!("{} candidates", r.responses[0].candidates.len()))
                        }
                        Err(e) => failures.push(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (failures, slowest, done)
            })
        })
        .collect();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dbsize() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was ever cached in Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.signal("-STOP");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Killed while frozen, back empty on the same port.
    drop(server);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _server = Service::start(&redis, &args);
    wait_port(port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dbsize() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "results were not cached in the restarted Redis within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in load {
        let (failures, slowest, done) = w.await.unwrap();
        eprintln!(
            "redis drill: a client answered {done} searches, slowest {slowest:?}, {} failed",
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "searches failed while Redis was away: {failures:?}"
        );
        assert!(done > 50, "only {done} searches answered");
        assert!(
            slowest < Duration::from_millis(1500),
            "a search waited {slowest:?} on the frozen cache"
        );
    }
}
