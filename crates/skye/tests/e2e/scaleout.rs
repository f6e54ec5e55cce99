//! Scale-out mode against real services (started by `.ci/run`; SKIPPED loudly otherwise).

#[cfg(feature = "etcd")]
use std::time::Duration;

#[cfg(feature = "etcd")]
use serde_json::json;

#[cfg(feature = "etcd")]
use crate::support::{Http, Skye};

/// The value of `var`, or a loud SKIPPED (a failure under `SKYE_REQUIRE_SERVICES`).
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
fn service(var: &str, test: &str) -> Option<String> {
    use std::io::Write;
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("SKYE_REQUIRE_SERVICES").is_some() => {
            panic!("{test}: {var} is not set but SKYE_REQUIRE_SERVICES is")
        }
        _ => {
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {var} is not set");
            None
        }
    }
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_share_one_etcd_tree_and_see_each_others_changes() {
    let Some(endpoints) = service("SKYE_TEST_ETCD_ENDPOINTS", "etcd e2e") else {
        return;
    };
    let app = format!(
        "e2e{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let env = [
        ("ETCD_SERVER", endpoints.as_str()),
        ("APP_NAME", app.as_str()),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Skye::start(dir_a.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let b = Skye::start(dir_b.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let http = Http::new();
    for (path, body) in [
        ("register-store", json!({"conf_id": 1})),
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
        let r = http
            .post(&a.url("admin", &format!("/api/v1/model/{path}")), &body)
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.raw);
    }
    // B learns of A's writes through its etcd watch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = http
            .get(&b.url("admin", "/api/v1/models/catalog/intent"))
            .await;
        if r.status == 200 {
            assert_eq!(r.body["model_config"]["vector_dimension"], 4, "{}", r.raw);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never saw the model: {}",
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both race for one name: exactly one wins (etcd transactions, not check-then-put).
    let body = json!({"entity": "catalog", "model": "intent", "variant": "v"});
    let (url_a, url_b) = (
        a.url("admin", "/api/v1/model/register-variant"),
        b.url("admin", "/api/v1/model/register-variant"),
    );
    let (ra, rb) = tokio::join!(http.post(&url_a, &body), http.post(&url_b, &body));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} / {}", ra.raw, rb.raw);
    // The tree survives the processes: a fresh admin reads it back.
    a.kill();
    b.kill();
    let dir_c = tempfile::tempdir().unwrap();
    let c = Skye::start(dir_c.path(), &["admin", "--port", "0"], &env, &["admin"]);
    let r = http
        .get(&c.url("admin", "/api/v1/models/catalog/intent/variants/v"))
        .await;
    assert_eq!(r.status, 200, "{}", r.raw);
}

#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_e2e_needs_the_etcd_feature() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED etcd e2e: built without --features etcd (the README test command enables it)"
    );
}
