//! The sandboxes: every code task in fresh, locked-down, single-use containers, each run
//! by the sandbox agent as its first process.
//!
//! A compiled language takes two steps, each in its own container with its own limits:
//! compile (the binary comes back on stdout, the compiler's messages on stderr), then run.
//! An interpreted language takes the run step only.
//!
//! - `engine/`: what starts a container — Docker, or an OCI runtime (runc, gVisor's runsc)
//!   run by the worker on a bundle — behind one `Engine` trait;
//! - `step.rs`: one step in a started container, the same on every engine;
//! - `account.rs`: the host's account of a sandbox (its cgroup read from the host);
//! - `pool.rs`: the warm containers the steps are taken from;
//! - `code.rs`: a task's steps and verdicts;
//! - `seccomp.rs`, `proc_paths.rs`, `identity.rs`: the policy every engine applies;
//! - `config.rs`: the settings.

pub mod account;
mod code;
pub mod commands;
mod config;
pub mod engine;
pub mod identity;
pub mod pool;
pub mod proc_paths;
pub mod seccomp;
mod signals;
pub mod step;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use codebox_core::Error;
use codebox_core::languages::{self, Language};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{EngineKind, SandboxConfig};
use engine::Engine;
use engine::docker::DockerEngine;
use engine::runc::{Oci, OciEngine, Runtime};
use pool::Pool;
use step::{Cap, Step, StepOutcome, StopReason};

/// Every sandbox's `oom_score_adj`: under host memory pressure the kernel kills a
/// program before the worker, the database or anything else on the host.
pub const OOM_SCORE_ADJ: i64 = 1000;

/// The worker's sandboxes: an engine, its warm pool, the worker's slots.
pub struct Sandboxes {
    /// The Docker engine: the runner image's store, and the engine of the sandboxes when
    /// no OCI runtime runs them.
    docker: Arc<DockerEngine>,
    engine: Arc<dyn Engine>,
    config: SandboxConfig,
    pool: Arc<Pool>,
    /// Disposals of containers — used ones, off the task's path, and dropped ones — which
    /// a shutdown waits for.
    disposals: TaskTracker,
    /// One permit per step under way (`SandboxConfig::slots`).
    slots: Arc<tokio::sync::Semaphore>,
}

impl Sandboxes {
    /// Connects to the local Docker engine and opens the engine the configuration asks
    /// for.
    pub async fn connect(mut config: SandboxConfig) -> anyhow::Result<Self> {
        // One policy for every engine; a worker without it runs no sandbox.
        config.seccomp = Some(Arc::new(seccomp::load(&config.seccomp_profile).await?));
        // A block of the uid range no other worker on this host holds.
        config.identities = match config.identities.claim(Path::new(identity::LOCK_DIR)) {
            Ok(claimed) => claimed,
            // Where `/run` cannot be used (not root), the host's temporary directory.
            Err(identity::ClaimError::Io(e)) => {
                tracing::info!(reason = %e, "claiming sandbox uids in the temporary directory");
                config
                    .identities
                    .claim(&std::env::temp_dir().join("codebox-uids"))
                    .map_err(|e| anyhow::anyhow!("{e}"))?
            }
            Err(e) => anyhow::bail!("{e}"),
        };
        tracing::info!(uids = ?config.identities.blocks(), "sandbox identities");
        let disposals = TaskTracker::new();
        let docker = Arc::new(DockerEngine::connect(&config, disposals.clone()).await?);
        // Kept warm from the start: the default run limit and the compile limit.
        let pinned = [
            codebox_core::domain::Limits::DEFAULT.memory_mb,
            languages::CompileLimits::STANDARD.memory_mb,
        ];
        let engine: Arc<dyn Engine> = match (config.engine, oci_runtimes(config.runtime.as_deref()))
        {
            (EngineKind::Docker, _) | (EngineKind::Auto, None) => {
                docker.runs(config.runtime.as_deref()).await?;
                docker.clone()
            }
            (EngineKind::Runc, None) => anyhow::bail!(
                "the runc engine runs runc, runsc or crun itself; for the runtime {} use CODEBOX_SANDBOX_ENGINE=docker",
                config.runtime.as_deref().unwrap_or_default()
            ),
            (kind, Some(runtimes)) => {
                match open_first(&docker, &config, &runtimes, &disposals).await {
                    Ok(oci) => Arc::new(Oci(Arc::new(oci))),
                    Err(e) if kind == EngineKind::Auto => {
                        tracing::info!(reason = %format!("{e:#}"), "sandboxes run through Docker: the worker cannot run an OCI runtime itself here");
                        docker.runs(config.runtime.as_deref()).await?;
                        docker.clone()
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        tracing::info!(engine = engine.name(), "sandbox engine");
        // Which engine a worker chose, for its operator (and the bench's report).
        metrics::gauge!("codebox_sandbox_engine_info", "engine" => engine.name()).set(1.0);
        let pool = Arc::new(Pool::new(engine.clone(), config.pool.unwrap_or(0), &pinned));
        Ok(Self {
            docker,
            engine,
            slots: Arc::new(tokio::sync::Semaphore::new(config.slots.max(1))),
            config,
            pool,
            disposals,
        })
    }

    /// The engine the sandboxes run on: `docker`, `runc`, `crun` or `runsc`.
    pub fn engine(&self) -> &'static str {
        self.engine.name()
    }

    /// Waits until every container is gone (after the worker has stopped), at most a
    /// minute.
    pub async fn settle(&self) {
        self.disposals.close();
        let _ = tokio::time::timeout(Duration::from_secs(60), self.disposals.wait()).await;
    }

    /// Keeps the warm pool filled until `shutdown`, then empties it; await the handle
    /// before the process ends so no container is left behind.
    pub fn start_pool(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.pool.clone().refill_forever(shutdown))
    }

    /// Runs one step in a warm container (or one prepared on the spot), on one of the
    /// worker's slots. `kind` (`compile`, `run`) names it in the metrics.
    async fn step(
        &self,
        kind: &'static str,
        step: Step,
        cancel: &CancellationToken,
    ) -> Result<StepOutcome, Error> {
        let timer = crate::stages::Timer::start("slot");
        let _slot = tokio::select! {
            s = self.slots.acquire() => s.map_err(|_| Error::Unavailable("the sandbox is shutting down".into()))?,
            _ = cancel.cancelled() => return Ok(StepOutcome::cancelled()),
        };
        timer.done();
        let timer = crate::stages::Timer::start("take");
        let prepared = tokio::select! {
            p = self.pool.take(step.memory_mb) => p?,
            _ = cancel.cancelled() => return Ok(StepOutcome::cancelled()),
        };
        timer.done();
        metrics::counter!("codebox_sandbox_steps_total", "step" => kind).increment(1);
        prepared.run(step, cancel, &self.disposals).await
    }

    /// Readiness: the Docker engine answers and the runner image is there, with an agent
    /// that speaks this worker's protocol; the engine of the sandboxes can start one.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.docker.ping().await?;
        if self.engine.name() != self.docker.name() {
            self.engine.ping().await?;
        }
        Ok(())
    }

    /// Removes the sandboxes a dead worker left on this host: the engine's, and Docker's
    /// (a worker of either engine may have died here). Returns how many it removed.
    pub async fn reap_stale(&self, age: Duration) -> anyhow::Result<usize> {
        let mut removed = 0;
        if self.engine.name() != self.docker.name() {
            removed += self.engine.reap(age).await?;
        }
        Ok(removed + self.docker.reap(age).await?)
    }

    /// Runs `reap_stale` for the configured age (`CODEBOX_SANDBOX_REAP_AFTER_SECS`) now
    /// and every quarter of it until `shutdown`.
    pub async fn reap_forever(&self, shutdown: CancellationToken) {
        let age = self.config.reap_after;
        let every = (age / 4).max(Duration::from_secs(1));
        use codebox_core::shutdown::{First, every as periodic};
        periodic(every, First::Now, shutdown, || async {
            if let Err(e) = self.reap_stale(age).await {
                tracing::warn!(error = %e, "looking for stale sandbox containers failed");
            }
        })
        .await;
    }

    /// The language listing with the versions found in the runner image.
    pub async fn probe_versions(&self) -> anyhow::Result<Vec<Language>> {
        let step = Step {
            task_id: uuid::Uuid::nil(),
            argv: vec!["sh".into(), "-c".into(), languages::version_probe()],
            files: vec![],
            stdin: vec![],
            wall: Duration::from_secs(30),
            cpu: None,
            memory_mb: 256,
            stack_mb: None,
            stdout: Cap {
                bytes: 4096,
                kill: false,
            },
            stderr: Cap {
                bytes: 4096,
                kill: false,
            },
            progress: None,
        };
        let out = step::run(self.engine.as_ref(), step, &CancellationToken::new()).await?;
        if out.reason != StopReason::Exited || out.exit_code != Some(0) {
            anyhow::bail!(
                "the version probe failed ({:?}, exit {:?}): {}",
                out.reason,
                out.exit_code,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let listing = languages::read_versions(&String::from_utf8_lossy(&out.stdout));
        Ok(listing)
    }
}

/// The OCI runtimes the worker tries, in turn, for the runtime asked for: crun, then runc,
/// when none is named (the same boundary and spec; crun starts a sandbox in about half
/// runc's time); `None` for a runtime that is Docker's to run.
fn oci_runtimes(asked: Option<&str>) -> Option<Vec<Runtime>> {
    match asked {
        None => Some(vec![Runtime::Crun, Runtime::Runc]),
        Some("runc") => Some(vec![Runtime::Runc]),
        Some("runsc") => Some(vec![Runtime::Runsc]),
        Some("crun") => Some(vec![Runtime::Crun]),
        Some(_) => None,
    }
}

/// The OCI engine of the first of `runtimes` that runs here; each that does not is
/// named with its reason in the error.
async fn open_first(
    docker: &DockerEngine,
    config: &SandboxConfig,
    runtimes: &[Runtime],
    disposals: &TaskTracker,
) -> anyhow::Result<OciEngine> {
    // The daemon and the image's place are read once for every runtime tried.
    let daemon = docker.daemon().await?;
    let image = docker.stored_image(&config.image).await?;
    let mut reasons = Vec::new();
    for &runtime in runtimes {
        match OciEngine::open(&daemon, image.clone(), config, runtime, disposals.clone()).await {
            Ok(oci) => return Ok(oci),
            Err(e) => {
                if runtimes.len() > 1 {
                    tracing::info!(reason = %format!("{e:#}"), runtime = runtime.name(), "this runtime does not run here");
                }
                reasons.push(format!("{}: {e:#}", runtime.name()));
            }
        }
    }
    anyhow::bail!("{}", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_is_tried_before_runc_unless_a_runtime_is_named() {
        assert_eq!(oci_runtimes(None), Some(vec![Runtime::Crun, Runtime::Runc]));
        assert_eq!(oci_runtimes(Some("runc")), Some(vec![Runtime::Runc]));
        assert_eq!(oci_runtimes(Some("crun")), Some(vec![Runtime::Crun]));
        assert_eq!(oci_runtimes(Some("runsc")), Some(vec![Runtime::Runsc]));
        assert_eq!(oci_runtimes(Some("kata")), None);
    }
}
