//! The reaper removes what a dead worker left: a sandbox container created and never
//! started once it is a few seconds old, a running one only when it is older than any
//! live step can be. Its own test binary: it makes sandbox-labelled containers by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use codebox_worker::sandbox::engine::runc::Runtime;
use codebox_worker::sandbox::{SandboxConfig, Sandboxes};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_removes_a_dead_workers_leftovers_and_nothing_alive() {
    let config = SandboxConfig::default();
    let image = config.image.clone();
    let sandbox = Sandboxes::connect(config).await.unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    // A worker that died between create and start leaves this.
    let never_started = docker(&[
        "create",
        "--label",
        "codebox.role=sandbox",
        "--name",
        &format!("codebox-reaper-created-{suffix}"),
        &image,
    ]);
    // A step under way looks like this (its worker alive).
    let running = docker(&[
        "run",
        "-d",
        "--label",
        "codebox.role=sandbox",
        "--name",
        &format!("codebox-reaper-running-{suffix}"),
        "--entrypoint",
        "sleep",
        &image,
        "120",
    ]);

    // Young: both kept.
    sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(exists(&never_started) && exists(&running));

    // Past the never-started bound: that one goes, the running one stays (it is far
    // younger than the 5 minutes a running sandbox may live).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let removed = sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(removed >= 1, "{removed}");
    assert!(
        !exists(&never_started),
        "the never-started container is still there"
    );
    assert!(exists(&running), "a running sandbox was reaped");

    docker(&["rm", "-f", &running]);
}

/// The engine's own auto-removal can fail (Docker 20.10 under load: "unable to remove
/// filesystem … directory not empty"): the container is then dead, listed as "Removal In
/// Progress", and only a direct removal clears it. The reaper does, once that removal has
/// ended. Made here by pinning an immutable file in the container's directory, so the
/// engine's removal fails as it does under load; unpinned before the reaper looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_removes_a_container_whose_removal_the_engine_failed() {
    let config = SandboxConfig::default();
    let image = config.image.clone();
    let sandbox = Sandboxes::connect(config).await.unwrap();
    let root = docker(&["info", "--format", "{{.DockerRootDir}}"]);
    let id = docker(&[
        "create",
        "--rm",
        "--network",
        "none",
        "--label",
        "codebox.role=sandbox",
        "--name",
        &format!("codebox-reaper-dead-{}", uuid::Uuid::new_v4().simple()),
        &image,
    ]);
    let pin = format!("{root}/containers/{id}/pin");
    std::fs::write(&pin, b"").unwrap();
    let chattr = |flag: &str| {
        let ok = Command::new("chattr")
            .args([flag, &pin])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chattr {flag} {pin} (root and e2fsprogs needed)");
    };
    chattr("+i");
    // The agent finds no job on its stdin and exits; the engine's removal then fails.
    docker(&["start", &id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = docker(&[
            "inspect",
            "--format",
            "{{.State.Dead}} {{.State.Error}}",
            &id,
        ]);
        if state.starts_with("true") && state.contains("unable to remove") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    chattr("-i");
    // Older than a removal in progress can be (the reaper leaves those to the engine).
    // The other test of this binary may run its reaper meanwhile: either removes it, and
    // without the reaper's handling of failed removals neither would.
    tokio::time::sleep(Duration::from_secs(11)).await;
    sandbox.reap_stale(Duration::from_secs(90)).await.unwrap();
    assert!(!exists(&id), "the reaper left the dead container {id}");
}

/// On the runc engine, a container outlives its worker only when its `runc run` was killed
/// too (runc deletes a container whose first process ended): it is left stopped, with its
/// bundle. The reaper deletes both once they are 10 s old, and nothing running or young.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_a_runc_sandbox_whose_runc_was_killed() {
    a_sandbox_whose_runtime_was_killed_is_reaped(Runtime::Runc, Some("runc")).await;
}

/// The same on gVisor, runsc run by the worker on the sandbox's bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_a_runsc_sandbox_whose_runsc_was_killed() {
    a_sandbox_whose_runtime_was_killed_is_reaped(Runtime::Runsc, Some("runsc")).await;
}

/// The same on crun, run by the worker as runc is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_a_crun_sandbox_whose_crun_was_killed() {
    a_sandbox_whose_runtime_was_killed_is_reaped(Runtime::Crun, Some("crun")).await;
}

async fn a_sandbox_whose_runtime_was_killed_is_reaped(runtime: Runtime, asked: Option<&str>) {
    use codebox_worker::sandbox::EngineKind;
    use codebox_worker::sandbox::engine::Engine;
    use codebox_worker::sandbox::engine::runc::{Oci, OciEngine, state_root};
    let config = SandboxConfig {
        engine: EngineKind::Runc,
        runtime: asked.map(str::to_owned),
        ..SandboxConfig::default()
    };
    let sandbox = Sandboxes::connect(config.clone()).await.unwrap();
    assert_eq!(sandbox.engine(), runtime.name());
    let docker = codebox_worker::sandbox::engine::docker::DockerEngine::connect(
        &config,
        tokio_util::task::TaskTracker::new(),
    )
    .await
    .unwrap();
    // Its own sandboxes take uids of a block of their own, as a worker's would.
    let claimed = SandboxConfig {
        identities: config
            .identities
            .claim(std::path::Path::new(
                codebox_worker::sandbox::identity::LOCK_DIR,
            ))
            .unwrap(),
        ..config.clone()
    };
    let engine = Oci(std::sync::Arc::new(
        OciEngine::beside(
            &docker,
            &claimed,
            runtime,
            tokio_util::task::TaskTracker::new(),
        )
        .await
        .unwrap(),
    ));
    let state = |id: &str| {
        let out = Command::new(runtime.name())
            .arg("--root")
            .arg(state_root(runtime))
            .args(["state", id])
            .output()
            .unwrap();
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        state["status"].as_str().unwrap_or("gone").to_owned()
    };
    let left = engine.prepare(128).await.unwrap();
    let alive = engine.prepare(128).await.unwrap();
    let id = left.id().to_owned();
    let bundle = codebox_worker::sandbox::engine::runc::bundles(runtime).join(&id);
    // The worker and its runtime die: the agent sees its stdin close and ends, and nobody
    // deletes the container.
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!(" run --bundle .*{id}")])
        .status()
        .unwrap();
    assert!(killed.success(), "{} run of {id} not found", runtime.name());
    // Its worker is gone: nothing of it disposes of the sandbox, and the agent's stdin
    // closes.
    left.abandon();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while state(&id) != "stopped" {
        assert!(std::time::Instant::now() < deadline, "{}", state(&id));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Young: kept.
    sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert_eq!(state(&id), "stopped");
    tokio::time::sleep(Duration::from_secs(11)).await;
    let removed = sandbox.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(removed >= 1, "{removed}");
    assert_eq!(state(&id), "gone", "the stopped sandbox is deleted");
    assert!(!bundle.exists(), "and its bundle");
    let alive_id = alive.id().to_owned();
    assert_eq!(state(&alive_id), "running", "a live one is left alone");
    alive.discard().await;
    assert_eq!(state(&alive_id), "gone");
}

/// Workers of two runtimes on one host (a crun worker beside a runc one, or beside a
/// gVisor one) each reap their own: a runc worker's reaper leaves a live crun sandbox's
/// bundle alone however old it is (a warm sandbox may wait minutes for its job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaper_leaves_another_runtimes_sandboxes_alone() {
    use codebox_worker::sandbox::EngineKind;
    use codebox_worker::sandbox::engine::Engine;
    use codebox_worker::sandbox::engine::runc::{OciEngine, bundles, state_root};
    let config = |runtime: &str| SandboxConfig {
        engine: EngineKind::Runc,
        runtime: Some(runtime.to_owned()),
        ..SandboxConfig::default()
    };
    let runc = Sandboxes::connect(config("runc")).await.unwrap();
    let docker = codebox_worker::sandbox::engine::docker::DockerEngine::connect(
        &config("crun"),
        tokio_util::task::TaskTracker::new(),
    )
    .await
    .unwrap();
    let claimed = SandboxConfig {
        identities: config("crun")
            .identities
            .claim(std::path::Path::new(
                codebox_worker::sandbox::identity::LOCK_DIR,
            ))
            .unwrap(),
        ..config("crun")
    };
    let crun = codebox_worker::sandbox::engine::runc::Oci(std::sync::Arc::new(
        OciEngine::beside(
            &docker,
            &claimed,
            Runtime::Crun,
            tokio_util::task::TaskTracker::new(),
        )
        .await
        .unwrap(),
    ));
    let alive = crun.prepare(128).await.unwrap();
    let id = alive.id().to_owned();
    let bundle = bundles(Runtime::Crun).join(&id);
    assert!(bundle.exists(), "{}", bundle.display());
    // As old as a warm sandbox that waited two minutes.
    let aged = Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(aged.success());
    runc.reap_stale(Duration::from_secs(5)).await.unwrap();
    assert!(
        bundle.exists(),
        "the runc reaper removed crun's live bundle"
    );
    let out = Command::new("crun")
        .arg("--root")
        .arg(state_root(Runtime::Crun))
        .args(["state", &id])
        .output()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        state["status"], "running",
        "the crun sandbox is left running"
    );
    alive.discard().await;
    assert!(!bundle.exists(), "its own disposal removes its bundle");
}
