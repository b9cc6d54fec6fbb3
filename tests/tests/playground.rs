//! The web playground in a real browser: `tests/playground/check.py` drives Debian's
//! chromium with Playwright (both installed by scripts/ensure-tools.sh) against the
//! embedded stack: register and log in, python hello, a C program judged 2/3, a compile
//! error, a 400, a cancel, a blur, history paging, a shared link, phone width, log out,
//! and a 429 from a second stack whose login allows two calls a minute. Screenshots of
//! each state land in `target/playground/`; the page's CSP header is checked and no
//! console error or CSP violation may occur.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use codebox_tests::start_embedded;

/// The whole browser run is bounded: it takes well under a minute here.
const WITHIN: Duration = Duration::from_secs(300);

/// A stack whose `/register` and `/login` allow two calls a minute per address, so a
/// second login is refused with 429.
async fn start_rate_limited() -> codebox_embedded::Running {
    let mut config = codebox_embedded::EmbeddedConfig::from_env().expect("embedded config");
    config.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.api.bcrypt_cost = 4;
    config.api.limits = codebox_core::limits::LimitsConfig {
        auth_per_minute: 2,
        submit_per_minute: 1_000_000,
        max_active_tasks: 1_000_000,
        ..codebox_core::limits::LimitsConfig::default()
    };
    // It runs no task: one slot, no warm containers.
    config.worker.concurrency = 1;
    config.sandbox.pool = Some(0);
    codebox_embedded::start(config)
        .await
        .expect("the embedded stack must start: Docker and the runner image are required")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_playground_works_in_a_browser() {
    let running = start_embedded().await;
    let limited = start_rate_limited().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = root.parent().expect("the workspace");
    let shots = workspace.join("target/playground");
    std::fs::create_dir_all(&shots).unwrap();
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(root.join("playground/check.py"))
        .env("PLAYGROUND_URL", format!("http://{}", running.addr))
        .env("PLAYGROUND_LIMITED_URL", format!("http://{}", limited.addr))
        .env("PLAYGROUND_SHOTS", &shots)
        .kill_on_drop(true);
    // `PLAYGROUND_DOC_SHOT=docs/playground.png` refreshes the README's picture.
    if let Ok(doc) = std::env::var("PLAYGROUND_DOC_SHOT") {
        cmd.env("PLAYGROUND_DOC_SHOT", workspace.join(doc));
    }
    let out = tokio::time::timeout(WITHIN, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the browser checks took over {WITHIN:?}"))
        .expect("python3 with playwright (scripts/ensure-tools.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What each step saw, under `--nocapture`.
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("every check passed"), "{stdout}{stderr}");
    for shot in ["02-python-hello", "03-c-tests", "06-image-blur", "08-phone"] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
    limited.stop().await;
    running.stop().await;
}
