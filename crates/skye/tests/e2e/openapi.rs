//! `docs/openapi.yaml` against the running binary: every documented operation is routed on the
//! port it names (or on one of the three), and every route in the source is documented.

use serde_json::Value;

use crate::support::{Http, Skye};

const SOURCES: [&str; 4] = [
    "crates/skye-admin/src/lib.rs",
    "crates/skye/src/components.rs",
    "crates/skye/src/console.rs",
    "crates/skye-serving/src/rest.rs",
];

fn repo(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(method, path)` of every operation in the document, with the port names it is served on.
fn documented() -> Vec<(String, String, Vec<&'static str>)> {
    let doc: Value = serde_yaml_ng::from_str(&repo("docs/openapi.yaml")).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let component = |url: &str| match url.rsplit(':').next() {
        Some("8080") => "admin",
        Some("9090") => "serving",
        Some("8081") => "consumers",
        other => panic!("unknown server {other:?}"),
    };
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let ports: Vec<&str> = match op["servers"].as_array() {
                Some(servers) => servers
                    .iter()
                    .map(|s| component(s["url"].as_str().unwrap()))
                    .collect(),
                None => vec!["admin", "serving", "consumers"],
            };
            assert!(op["responses"].is_object(), "{method} {path}: no responses");
            out.push((method.to_uppercase(), path.clone(), ports));
        }
    }
    out
}

/// `(method, path)` of every `.route("…", get|post(…))` in the routers' source.
fn routed() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in SOURCES {
        let text = repo(file);
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let open = rest.find('"').unwrap();
            let close = open + 1 + rest[open + 1..].find('"').unwrap();
            let path = &rest[open + 1..close];
            let after = rest[close + 1..].trim_start_matches([',', ' ', '\n']);
            let method = after.split('(').next().unwrap().trim();
            out.push((method.to_uppercase(), path.to_string()));
        }
    }
    assert!(out.len() >= 30, "{out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_file_and_the_routers_agree() {
    let documented = documented();
    for (method, path) in routed() {
        assert!(
            documented
                .iter()
                .any(|(m, p, _)| *m == method && *p == path),
            "{method} {path} is routed but not in docs/openapi.yaml"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone(dir.path(), &[]);
    let http = Http::new();
    for (method, path, ports) in &documented {
        let concrete = path
            .replace("{entity}", "catalog")
            .replace("{model}", "intent")
            .replace("{variant}", "all")
            .replace("{topic}", "skye.embedding-failure");
        let mut found = Vec::new();
        for component in ports {
            let url = skye.url(component, &concrete);
            let m = method.parse::<hyper::Method>().unwrap();
            let r = http.send(m, &url, "{}").await;
            // An unrouted path answers 405, or 404 with no JSON error (or the admin fallback's).
            let unrouted = r.status == 405
                || (r.status == 404 && (r.body.is_null() || r.raw.contains("no route for")));
            if !unrouted {
                found.push(*component);
            }
        }
        assert!(
            !found.is_empty(),
            "{method} {path} is documented but not routed on {ports:?}"
        );
    }
}
