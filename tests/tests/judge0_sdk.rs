//! The official `judge0` Python SDK (PyPI, pinned in scripts/ensure-tools.sh), unchanged,
//! against the embedded stack's `/judge0` API: `tests/judge0/sdk_check.py` runs python and
//! C with and without test cases, `async_run` + `wait`, a batch, and each failure status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_tests::{Client, start_embedded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_judge0_sdk_works_unchanged() {
    let running = start_embedded().await;
    let c = Client::new_user(running.addr).await.unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("judge0/sdk_check.py");
    let url = format!("http://{}/judge0", running.addr);
    let token = c.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .env("JUDGE0_URL", url)
            .env("JUDGE0_TOKEN", token)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("every check passed"), "{stdout}");
    running.stop().await;
}
