//! The web console in a real headless browser (Debian's chromium, `SKYE_TEST_CHROMIUM`): the
//! page loads from the admin port, lists the demo catalog with its state, runs a search through
//! the serving port's REST API and renders the results. A screenshot is kept in
//! `target/console.png`.

use std::process::Command;
use std::time::Duration;

use crate::scaleout::service;
use crate::support::{Http, Skye};

fn chromium(binary: &str, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let user_dir = format!("--user-data-dir={}", profile.path().display());
    let out = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=20000",
            "--window-size=1280,1000",
            &user_dir,
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_the_catalog_and_renders_a_search() {
    let Some(browser) = service("SKYE_TEST_CHROMIUM", "console in a headless browser") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let skye = Skye::standalone_with(dir.path(), &[], &["--demo"]);
    let http = Http::new();
    // The demo loads its catalog in the background.
    let variant = skye.url("admin", "/api/v1/models/demo/products/variants/all");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = http.get(&variant).await;
        if r.status == 200 && r.body["variant_state"] == "COMPLETED" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "demo not loaded: {}",
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // The page answers from the admin port, with its script and style.
    let page = http.get(&skye.url("admin", "/console")).await;
    assert_eq!(page.status, 200);
    assert!(page.raw.contains("/console/app.js"), "{}", page.raw);

    let url = skye.url(
        "admin",
        "/console?entity=demo&model=products&variant=all&q=p40&limit=5&attributes=category,price&run=1",
    );
    let dom = tokio::task::spawn_blocking({
        let (browser, url) = (browser.clone(), url.clone());
        move || chromium(&browser, &["--dump-dom"], &url)
    })
    .await
    .unwrap();
    assert!(
        dom.contains("state-COMPLETED"),
        "no catalog state rendered:\n{dom}"
    );
    assert!(
        dom.contains(r#"data-searched="5""#),
        "the search did not render 5 results:\n{dom}"
    );
    let rows: Vec<&str> = dom.split(r#"<tr class="result">"#).skip(1).collect();
    assert_eq!(rows.len(), 5, "{dom}");
    for row in &rows {
        assert!(row.contains(r#"<td class="id">p"#), "{row}");
        assert!(
            !row.contains(r#"<td class="id">p40<"#),
            "the query item itself: {row}"
        );
        assert!(
            row.contains("category: ") && row.contains("price: "),
            "{row}"
        );
    }

    // The screenshot, for a person to look at.
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/console.png");
    let arg = format!("--screenshot={shot}");
    tokio::task::spawn_blocking(move || chromium(&browser, &[&arg], &url))
        .await
        .unwrap();
    let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot {shot}: {size} bytes");
}
