//! The Docker sandbox: every code task in fresh, locked-down, single-use containers
//! (bollard), each run by the sandbox agent as its first process.
//!
//! A compiled language takes two steps, each in its own container with its own limits:
//! compile (the binary comes back on stdout, the compiler's messages on stderr), then run.
//! An interpreted language takes the run step only. See `step.rs` for the container and
//! `pool.rs` for the warm containers the steps are taken from.

pub mod commands;
pub mod identity;
pub mod oci;
pub mod pool;
pub mod proc_paths;
mod runc_version;
pub mod seccomp;
mod signals;
pub mod step;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use codebox_core::Error;
use codebox_core::bytes::Bytes;
use codebox_core::config::{self, ConfigError};
use codebox_core::domain::{CodeResult, TaskEvent, TestResult, Verdict};
use codebox_core::languages::{self, Language};
use codebox_core::ports::{Sandbox, SandboxJob};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use pool::Pool;
use step::{Cap, InFile, Step, StepOutcome, StopReason};

/// Every sandbox's `oom_score_adj`: under host memory pressure the kernel kills a
/// program before the worker, the database or anything else on the host.
pub const OOM_SCORE_ADJ: i64 = 1000;

/// Which engine runs the sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// runc where the worker can run it (root, runc and the seccomp profile installed, the
    /// image in Docker's overlay2 store, no other runtime asked for), else Docker.
    Auto,
    /// The Docker engine (and any runtime registered with it, e.g. gVisor's runsc).
    Docker,
    /// runc, run by the worker itself; Docker keeps the runner image.
    Runc,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub engine: EngineKind,
    /// The runc binary (runc engine).
    pub runc: String,
    /// Docker's default seccomp profile in its JSON format: the sandboxes' policy is made
    /// from it (see [`seccomp`]).
    pub seccomp_profile: String,
    /// That policy, made once at start ([`DockerSandbox::connect`]) for every engine.
    pub seccomp: Option<Arc<serde_json::Value>>,
    pub image: String,
    /// OCI runtime (e.g. `runsc` for gVisor); the engine's default when `None`.
    pub runtime: Option<String>,
    pub cpus: f64,
    pub pids: i64,
    pub tmpfs_mb: u32,
    pub file_size_mb: i64,
    pub compile_output_bytes: usize,
    pub max_binary_bytes: usize,
    /// Sandbox containers older than this are leftovers of a dead worker.
    pub reap_after: Duration,
    /// Warm containers kept per memory size; `None` = the worker's concurrency.
    pub pool: Option<usize>,
    /// Steps run at once (the worker's concurrency): a judged task runs its tests on the
    /// slots other tasks leave free.
    pub slots: usize,
    /// The uids (and gids) the sandboxes run as, one per live sandbox.
    pub identities: Arc<identity::Identities>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::Auto,
            runc: "runc".to_owned(),
            seccomp_profile: "/usr/share/containers/seccomp.json".to_owned(),
            seccomp: None,
            image: "codebox-runner:latest".to_owned(),
            runtime: None,
            cpus: 1.0,
            pids: 64,
            tmpfs_mb: 64,
            file_size_mb: 16,
            compile_output_bytes: 64 * 1024,
            max_binary_bytes: 64 * 1024 * 1024,
            reap_after: Duration::from_secs(90),
            pool: None,
            slots: 1,
            identities: identity::Identities::new(identity::DEFAULT_RANGE),
        }
    }
}

impl SandboxConfig {
    /// `CODEBOX_RUNNER_IMAGE`, `CODEBOX_SANDBOX_RUNTIME`, `CODEBOX_SANDBOX_CPUS` (1),
    /// `CODEBOX_SANDBOX_PIDS` (64), `CODEBOX_SANDBOX_TMPFS_MB` (64),
    /// `CODEBOX_SANDBOX_POOL` (warm containers per memory size; the concurrency),
    /// `CODEBOX_SANDBOX_ENGINE` (`docker`, `runc`), `CODEBOX_RUNC`, `CODEBOX_SECCOMP_PROFILE`,
    /// `CODEBOX_SANDBOX_UIDS` (see [`identity`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let engine = match config::choice(
            "CODEBOX_SANDBOX_ENGINE",
            "auto",
            &["auto", "docker", "runc"],
        )?
        .as_str()
        {
            "runc" => EngineKind::Runc,
            "docker" => EngineKind::Docker,
            _ => EngineKind::Auto,
        };
        // Every setting has a range: 0 means "unlimited" to the engine for several of
        // them, which a typo must not reach.
        Ok(Self {
            engine,
            runc: config::var("CODEBOX_RUNC").unwrap_or(d.runc),
            seccomp_profile: config::var("CODEBOX_SECCOMP_PROFILE").unwrap_or(d.seccomp_profile),
            seccomp: None,
            image: config::var("CODEBOX_RUNNER_IMAGE").unwrap_or(d.image),
            runtime: config::var("CODEBOX_SANDBOX_RUNTIME"),
            cpus: config::parse_in("CODEBOX_SANDBOX_CPUS", d.cpus, 0.01..=64.0, "CPUs")?,
            pids: config::parse_in("CODEBOX_SANDBOX_PIDS", d.pids, 8..=4096, "processes")?,
            tmpfs_mb: config::parse_in("CODEBOX_SANDBOX_TMPFS_MB", d.tmpfs_mb, 1..=4096, "MiB")?,
            reap_after: Duration::from_secs(config::parse_in(
                "CODEBOX_SANDBOX_REAP_AFTER_SECS",
                d.reap_after.as_secs(),
                5..=86_400,
                "seconds",
            )?),
            pool: match config::var("CODEBOX_SANDBOX_POOL") {
                Some(_) => Some(config::parse_in(
                    "CODEBOX_SANDBOX_POOL",
                    0usize,
                    0..=64,
                    "containers",
                )?),
                None => None,
            },
            identities: identity::Identities::from_env()?,
            ..d
        })
    }
}

/// A container not running (never started, or exited) older than this is a leftover.
const NEVER_STARTED_LEFTOVER: Duration = Duration::from_secs(10);
/// A running sandbox container older than this (and the reaper's age) is stuck.
const RUNNING_LEFTOVER: Duration = Duration::from_secs(300);

pub struct DockerSandbox {
    docker: Docker,
    engine: step::Engine,
    config: SandboxConfig,
    pool: Arc<Pool>,
    /// Removals of used containers, done off the task's path.
    removals: TaskTracker,
    /// One permit per step under way (`SandboxConfig::slots`).
    slots: Arc<tokio::sync::Semaphore>,
}

impl DockerSandbox {
    /// Connects to the local engine (`DOCKER_HOST` or /var/run/docker.sock) and agrees on
    /// an API version.
    pub async fn connect(mut config: SandboxConfig) -> anyhow::Result<Self> {
        // One policy for every engine; a worker without it runs no sandbox.
        config.seccomp = Some(Arc::new(seccomp::load(&config.seccomp_profile).await?));
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| {
                anyhow::anyhow!(
                    "the Docker engine is not reachable ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
                )
            })?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            anyhow::anyhow!(
                "the Docker engine is not reachable at /var/run/docker.sock ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
            )
        })?;
        // Kept warm from the start: the default run limit and the compile limit.
        let pinned = [
            codebox_core::domain::Limits::DEFAULT.memory_mb,
            languages::CompileLimits::STANDARD.memory_mb,
        ];
        let engine = match config.engine {
            EngineKind::Docker => step::Engine::Docker(docker.clone()),
            EngineKind::Runc => {
                step::Engine::Runc(Arc::new(oci::Oci::open(&docker, &config).await?))
            }
            // Another runtime (gVisor) is Docker's to run.
            EngineKind::Auto if config.runtime.is_some() => step::Engine::Docker(docker.clone()),
            EngineKind::Auto => match oci::Oci::open(&docker, &config).await {
                Ok(oci) => step::Engine::Runc(Arc::new(oci)),
                Err(e) => {
                    tracing::info!(reason = %format!("{e:#}"), "sandboxes run through Docker: the runc engine is not available here");
                    step::Engine::Docker(docker.clone())
                }
            },
        };
        tracing::info!(
            engine = match engine {
                step::Engine::Docker(_) => "docker",
                step::Engine::Runc(_) => "runc",
            },
            "sandbox engine"
        );
        let pool = Arc::new(Pool::new(
            engine.clone(),
            config.clone(),
            config.pool.unwrap_or(0),
            &pinned,
        ));
        Ok(Self {
            docker,
            engine,
            slots: Arc::new(tokio::sync::Semaphore::new(config.slots.max(1))),
            config,
            pool,
            removals: TaskTracker::new(),
        })
    }

    /// Waits until every used container is removed (after the worker has stopped).
    pub async fn settle(&self) {
        self.removals.close();
        self.removals.wait().await;
        step::settle_dropped().await;
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
        let _slot = tokio::select! {
            s = self.slots.acquire() => s.map_err(|_| Error::Unavailable("the sandbox is shutting down".into()))?,
            _ = cancel.cancelled() => return Ok(StepOutcome::cancelled()),
        };
        let prepared = tokio::select! {
            p = self.pool.take(step.memory_mb) => p?,
            _ = cancel.cancelled() => return Ok(StepOutcome::cancelled()),
        };
        metrics::counter!("codebox_sandbox_steps_total", "step" => kind).increment(1);
        prepared.run(step, cancel, &self.removals).await
    }

    /// Readiness: the engine answers and the runner image is there, with an agent that
    /// speaks this worker's protocol.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.docker.ping().await.map_err(|e| {
            anyhow::anyhow!(
                "the Docker engine does not answer ({e}); start it, e.g. with `make docker` or `sudo dockerd &`"
            )
        })?;
        let image = self
            .docker
            .inspect_image(&self.config.image)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the runner image {} is missing; build it with `make runner-image`",
                    self.config.image
                )
            })?;
        let protocol = image
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(codebox_agent::PROTOCOL_LABEL).cloned());
        if protocol.as_deref() != Some(codebox_agent::PROTOCOL) {
            anyhow::bail!(
                "the runner image {} has no sandbox agent of protocol {} (it has {}); rebuild it with `make runner-image`",
                self.config.image,
                codebox_agent::PROTOCOL,
                protocol.as_deref().unwrap_or("none")
            );
        }
        if let step::Engine::Runc(oci) = &self.engine {
            oci.ping().await?;
        }
        Ok(())
    }

    /// Removes sandbox containers a dead worker left: never started or exited ones older
    /// than `age` or 10 s, running ones older than `age` and 5 minutes. A worker's containers end by
    /// themselves when it dies (their agent sees its connection close, the engine removes
    /// them), except one created but not yet started at that moment; a running one that
    /// old is stuck. No live step or warm container is ever that old. Returns how many it
    /// removed.
    pub async fn reap_stale(&self, age: Duration) -> anyhow::Result<usize> {
        use bollard::query_parameters::ListContainersOptionsBuilder;
        // The runc engine's leftovers, and below Docker's (a worker of either engine may
        // have died on this host).
        let mut runc_removed = 0;
        if let step::Engine::Runc(oci) = &self.engine {
            runc_removed = oci
                .reap(age.min(NEVER_STARTED_LEFTOVER), age.max(RUNNING_LEFTOVER))
                .await?;
            if runc_removed > 0 {
                tracing::warn!(
                    removed = runc_removed,
                    "removed stale runc sandboxes of a worker that died"
                );
            }
        }
        let filters = std::collections::HashMap::from([(
            "label",
            vec![format!("{}=sandbox", step::ROLE_LABEL)],
        )]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        let now = chrono::Utc::now().timestamp();
        // Created and never started: its worker died between the two calls, which take
        // milliseconds; no need to wait the full age.
        let idle_cutoff = now - age.min(NEVER_STARTED_LEFTOVER).as_secs() as i64;
        let running_cutoff = now - age.max(RUNNING_LEFTOVER).as_secs() as i64;
        let mut removed = 0;
        for c in list {
            let (Some(id), Some(created)) = (c.id, c.created) else {
                continue;
            };
            use bollard::models::ContainerSummaryStateEnum as State;
            // The engine's own removal failed (Docker 20.10 under load: "unable to
            // remove filesystem … directory not empty"): the container is dead, no process
            // left, and nothing removes it but a direct removal, which is safe now that
            // the engine's has ended.
            if matches!(c.state, Some(State::DEAD | State::REMOVING))
                && created < idle_cutoff
                && self.removal_failed(&id).await
            {
                step::remove(&self.docker, &id).await;
                removed += 1;
                continue;
            }
            let stale = match c.state {
                // Being removed by the engine (auto-remove after its run, perhaps another
                // worker's on the same engine): touching it races that removal, which can
                // leave a phantom "Removal In Progress" behind.
                Some(State::REMOVING) => false,
                Some(State::RUNNING | State::PAUSED | State::RESTARTING) => {
                    created < running_cutoff
                }
                // Never started: its worker died between create and start.
                Some(State::CREATED) => created < idle_cutoff,
                // Exited but not removed: auto-remove follows an exit at once, so only one
                // left that long is stuck (a warm container may be a minute old when it
                // serves its step and exits).
                _ => created < running_cutoff,
            };
            if stale {
                // Only a never-started one is removed directly; the engine removes the rest
                // itself once they have run (auto-remove), and must not be raced.
                let started = !matches!(
                    c.state,
                    Some(bollard::models::ContainerSummaryStateEnum::CREATED)
                );
                step::dispose(&self.docker, &id, started).await;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed stale sandbox containers of a worker that died"
            );
        }
        Ok(removed + runc_removed)
    }

    /// Whether the engine tried to remove this container and gave up: it is dead with the
    /// removal's error recorded, and no removal is under way any more.
    async fn removal_failed(&self, id: &str) -> bool {
        let Ok(c) = self
            .docker
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        else {
            return false;
        };
        c.state.is_some_and(|s| {
            s.dead == Some(true)
                && s.running != Some(true)
                && s.error
                    .as_deref()
                    .is_some_and(|e| e.contains("unable to remove"))
        })
    }

    /// Runs `reap_stale` every `every` until `shutdown`.
    pub async fn reap_forever(&self, age: Duration, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.reap_stale(age).await {
                tracing::warn!(error = %e, "looking for stale sandbox containers failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
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
        let out = step::run(&self.engine, &self.config, step, &CancellationToken::new()).await?;
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

    async fn compile(
        &self,
        job: &SandboxJob,
        source: InFile,
        plan: &commands::Plan,
        argv: Vec<String>,
        cancel: &CancellationToken,
    ) -> Result<Result<(Vec<u8>, Vec<u8>), CodeResult>, Error> {
        let c = &self.config;
        let limits = plan.compile_limits;
        let artifact_cap = artifact_cap(c, job.spec.limits.memory_mb);
        // The compiler's messages go to stderr; on success what it built (the artifact)
        // comes back on stdout.
        let mut shell = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("\"$@\" 1>&2 || exit $?; exec cat {}", plan.artifact),
            "sh".to_owned(),
        ];
        shell.extend(argv);
        let step = Step {
            task_id: job.task_id,
            argv: shell,
            files: vec![source],
            stdin: vec![],
            wall: Duration::from_secs(limits.time_s),
            cpu: None,
            memory_mb: limits.memory_mb,
            stack_mb: None,
            stdout: Cap {
                bytes: artifact_cap,
                kill: true,
            },
            stderr: Cap {
                bytes: c.compile_output_bytes as u64,
                kill: false,
            },
            progress: None,
        };
        let out = self.step("compile", step, cancel).await?;
        let mut messages = out.stderr;
        let failure = match (out.reason, out.exit_code) {
            // A compile that succeeded keeps what the compiler said (its warnings).
            (StopReason::Exited, Some(0)) => return Ok(Ok((out.stdout, messages))),
            (StopReason::Cancelled, _) => return Ok(Err(CodeResult::empty(Verdict::Cancelled))),
            (StopReason::Exited, _) if out.oom_killed => format!(
                "compilation ran out of memory (limit {} MiB)",
                limits.memory_mb
            ),
            (StopReason::Exited, _) => String::new(),
            (StopReason::TimeLimit, _) => {
                format!("compilation exceeded its time limit of {} s", limits.time_s)
            }
            (StopReason::Interfered, _) => {
                "the compile step's sandbox channel was written to from inside".to_owned()
            }
            (StopReason::AgentLost, _) => {
                "the compile step's sandbox agent stopped without a report".to_owned()
            }
            (StopReason::OutputLimit, _) => format!(
                "the compiled program is larger than {} KiB, what its run can take (the run's memory limit of {} MiB less 4 MiB for the sandbox, at most {} MiB)",
                artifact_cap / 1024,
                job.spec.limits.memory_mb,
                c.tmpfs_bytes_for_artifact() / (1024 * 1024),
            ),
        };
        if !failure.is_empty() {
            if !messages.is_empty() && !messages.ends_with(b"\n") {
                messages.push(b'\n');
            }
            messages.extend_from_slice(failure.as_bytes());
        }
        Ok(Err(CodeResult {
            compile_output: Some(messages.into()),
            ..CodeResult::empty(Verdict::CompileError)
        }))
    }
}

/// Memory of a run the agent may need besides the program's file in `/tmp`.
const AGENT_ROOM: u64 = 4 * 1024 * 1024;

/// The largest compiled program the run step takes: the agent writes it to the run's
/// `/tmp`, a tmpfs whose pages count against the run's memory, so at most the run's
/// memory limit less the agent's room (a program that then has too little left ends with
/// its own `memory_limit`), within what the tmpfs and the file size limit hold. A larger
/// one is the task's compile error, not a sandbox killed while it is being filled (a
/// platform failure, retried into `failed`).
fn artifact_cap(config: &SandboxConfig, run_memory_mb: u32) -> u64 {
    let memory = (u64::from(run_memory_mb) * 1024 * 1024).saturating_sub(AGENT_ROOM);
    memory.min(config.tmpfs_bytes_for_artifact() as u64)
}

impl SandboxConfig {
    /// `/tmp`'s size less 1 MiB of room, the file size limit (the compiler writes the
    /// program, the agent writes it again in the run) and the worker's bound.
    fn tmpfs_bytes_for_artifact(&self) -> usize {
        let tmpfs = (self.tmpfs_mb as usize).saturating_sub(1) * 1024 * 1024;
        let file = usize::try_from(self.file_size_mb).unwrap_or(0) * 1024 * 1024;
        tmpfs.min(file).min(self.max_binary_bytes)
    }
}

fn verdict_of(out: &StepOutcome) -> (Verdict, Option<i32>, Option<String>) {
    let signal = out.signal.map(|n| {
        signals::name(i64::from(n))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("SIG{n}"))
    });
    match out.reason {
        StopReason::Cancelled => (Verdict::Cancelled, None, None),
        StopReason::Interfered | StopReason::AgentLost => (Verdict::RuntimeError, None, None),
        StopReason::TimeLimit => (Verdict::TimeLimit, None, signal),
        StopReason::OutputLimit => (Verdict::OutputLimit, None, signal),
        // Facts from the agent: an exit code is an exit code (137 included), a signal is
        // a signal, and a SIGKILL is a memory limit only when the cgroup killed.
        StopReason::Exited if out.oom_killed => {
            (Verdict::MemoryLimit, None, Some("SIGKILL".to_owned()))
        }
        StopReason::Exited => match (out.exit_code, signal) {
            (Some(0), _) => (Verdict::Ok, Some(0), None),
            (Some(code), _) => (Verdict::RuntimeError, Some(code), None),
            (None, Some(signal)) => (Verdict::RuntimeError, None, Some(signal)),
            (None, None) => (Verdict::InternalError, None, None),
        },
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    async fn ping(&self) -> Result<(), Error> {
        DockerSandbox::ping(self)
            .await
            .map_err(|e| Error::Unavailable(format!("{e:#}")))
    }

    #[tracing::instrument(skip_all, fields(task_id = %job.task_id, language = %job.spec.language))]
    async fn run(&self, job: &SandboxJob, cancel: CancellationToken) -> Result<CodeResult, Error> {
        let spec = &job.spec;
        let plan = commands::plan(spec)
            .ok_or_else(|| Error::Invalid(format!("this worker cannot run {}", spec.language)))?;
        let source = InFile {
            name: plan.source.to_owned(),
            bytes: spec.code.as_bytes().to_vec(),
            mode: 0o644,
        };
        let (program, compile_output) = match plan.compile.clone() {
            Some(argv) => match self.compile(job, source, &plan, argv, &cancel).await? {
                Ok((binary, warnings)) => (
                    InFile {
                        name: plan.artifact.to_owned(),
                        bytes: binary,
                        mode: 0o755,
                    },
                    Some(Bytes::from(warnings)),
                ),
                Err(result) if spec.is_judged() && result.verdict == Verdict::CompileError => {
                    return Ok(judged_result(
                        Vec::new(),
                        spec.tests.len(),
                        result.compile_output,
                    ));
                }
                Err(result) => return Ok(result),
            },
            None => (source, None),
        };
        if spec.is_judged() {
            return Ok(match self.judge(job, &plan.run, program, &cancel).await? {
                Some(tests) => judged_result(tests, spec.tests.len(), compile_output),
                None => CodeResult::empty(Verdict::Cancelled),
            });
        }
        let step = run_step(job, &plan.run, program, &spec.stdin, &spec.args);
        let out = self.step("run", step, &cancel).await?;
        let run = RunOutcome::of(out);
        Ok(CodeResult {
            verdict: run.verdict,
            exit_code: run.exit_code,
            signal: run.signal,
            stdout: run.stdout.into(),
            stderr: run.stderr.into(),
            compile_output,
            time_ms: run.time_ms,
            cpu_time_ms: run.cpu_time_ms,
            memory_kb: run.memory_kb,
            truncated: run.truncated,
            passed: None,
            total: None,
            tests: None,
        })
    }
}

/// The run step of `job`'s program: the command `run`, then these arguments and stdin.
fn run_step(
    job: &SandboxJob,
    run: &[String],
    program: InFile,
    stdin: &Bytes,
    args: &[String],
) -> Step {
    let spec = &job.spec;
    let output_cap = u64::from(spec.limits.output_kb) * 1024;
    let mut argv = if spec.merge_stderr {
        // One pipe for both streams, so their bytes stay in the order written; the shell
        // replaces itself with the program.
        ["sh", "-c", "exec \"$@\" 2>&1", "sh"]
            .iter()
            .map(|w| (*w).to_owned())
            .chain(run.iter().cloned())
            .collect()
    } else {
        run.to_vec()
    };
    argv.extend(args.iter().cloned());
    Step {
        task_id: job.task_id,
        argv,
        cpu: spec
            .limits
            .cpu_ms
            .map(|ms| Duration::from_millis(u64::from(ms))),
        files: vec![program],
        stdin: stdin.as_bytes().to_vec(),
        wall: Duration::from_millis(u64::from(spec.limits.time_ms)),
        memory_mb: spec.limits.memory_mb,
        stack_mb: Some(spec.limits.stack_mb),
        stdout: Cap {
            bytes: output_cap,
            kill: true,
        },
        stderr: Cap {
            bytes: output_cap,
            kill: true,
        },
        // A judged task's tests run side by side: their output is in their results, and
        // their live events are the tests themselves.
        progress: if spec.is_judged() {
            None
        } else {
            job.progress.clone()
        },
    }
}

/// A run step's outcome as a result reports it.
struct RunOutcome {
    verdict: Verdict,
    exit_code: Option<i32>,
    signal: Option<String>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    time_ms: Option<u64>,
    cpu_time_ms: Option<u64>,
    memory_kb: Option<u64>,
    truncated: bool,
}

impl RunOutcome {
    fn of(out: StepOutcome) -> Self {
        let (verdict, exit_code, signal) = verdict_of(&out);
        let mut stderr = out.stderr;
        let note: &[u8] = match out.reason {
            StopReason::Interfered => {
                b"codebox: the program wrote into the sandbox agent's channel; its run is void\n"
            }
            StopReason::AgentLost => {
                b"codebox: the sandbox's agent stopped during the run, with no report of it\n"
            }
            _ => b"",
        };
        if !note.is_empty() {
            if !stderr.is_empty() && !stderr.ends_with(b"\n") {
                stderr.push(b'\n');
            }
            stderr.extend_from_slice(note);
        }
        Self {
            verdict,
            exit_code,
            signal,
            stdout: out.stdout,
            stderr,
            time_ms: Some(out.wall.as_millis() as u64),
            cpu_time_ms: out.cpu.map(|c| c.as_millis() as u64),
            memory_kb: out.memory_kb,
            truncated: out.truncated,
        }
    }
}

impl DockerSandbox {
    /// Runs every test of a judged task with the program compiled once: each in a fresh
    /// sandbox with the task's limits, several at once on free slots — one after another
    /// with `stop_on_failure`, so that nothing runs after a failure. The output is judged
    /// here, on what the sandbox captured. `None` when the task was cancelled meanwhile.
    async fn judge(
        &self,
        job: &SandboxJob,
        run: &[String],
        program: InFile,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<TestResult>>, Error> {
        use futures::StreamExt;
        let spec = &job.spec;
        let judge = |index: usize, out: StepOutcome| {
            if out.reason == StopReason::Cancelled {
                return None;
            }
            let run = RunOutcome::of(out);
            let expected = spec.tests[index].expected_stdout.as_bytes();
            let verdict = codebox_core::judge::test_verdict(run.verdict, || {
                codebox_core::judge::output_matches(&run.stdout, expected, &spec.compare)
            });
            Some(TestResult {
                index: index as u32,
                verdict,
                exit_code: run.exit_code,
                signal: run.signal,
                stdout: run.stdout.into(),
                stderr: run.stderr.into(),
                time_ms: run.time_ms,
                cpu_time_ms: run.cpu_time_ms,
                memory_kb: run.memory_kb,
                truncated: run.truncated,
            })
        };
        // Each test is judged as it ends, and shown live; `None` when it was cancelled.
        let run_test = |index: usize| {
            let test = &spec.tests[index];
            let step = run_step(job, run, program.clone(), &test.stdin, &test.args);
            async move {
                let judged = self.step("run", step, cancel).await.map(|out| {
                    let test = judge(index, out);
                    if let (Some(test), Some(progress)) = (&test, &job.progress) {
                        progress.send(TaskEvent::Test { test: test.clone() });
                    }
                    test
                });
                (index, judged)
            }
        };
        let mut tests = Vec::with_capacity(spec.tests.len());
        if spec.stop_on_failure {
            for index in 0..spec.tests.len() {
                let (_, judged) = run_test(index).await;
                let Some(test) = judged? else {
                    return Ok(None);
                };
                let passed = test.verdict == Verdict::Accepted;
                tests.push(test);
                if !passed {
                    break;
                }
            }
            for index in tests.len()..spec.tests.len() {
                tests.push(TestResult::skipped(index as u32));
            }
        } else {
            let outcomes: Vec<_> = futures::stream::iter(0..spec.tests.len())
                .map(run_test)
                .buffered(self.config.slots.max(1))
                .collect()
                .await;
            // Every step has ended before anything is returned: none is dropped mid-run.
            for (_, judged) in outcomes {
                let Some(test) = judged? else {
                    return Ok(None);
                };
                tests.push(test);
            }
        }
        Ok(Some(tests))
    }
}

/// A judged task's result from its tests': the verdict of the first that failed (or
/// `accepted`), its exit code and signal, and the largest figures of any test. Output
/// stays with each test.
fn judged_result(
    tests: Vec<TestResult>,
    total: usize,
    compile_output: Option<Bytes>,
) -> CodeResult {
    // No test results: the program did not compile.
    let verdict = if tests.is_empty() {
        Verdict::CompileError
    } else {
        codebox_core::judge::overall(&tests)
    };
    let first_failed = tests
        .iter()
        .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped));
    let (exit_code, signal) = match first_failed {
        Some(t) => (t.exit_code, t.signal.clone()),
        None if tests.is_empty() => (None, None),
        None => (Some(0), None),
    };
    let max = |f: fn(&TestResult) -> Option<u64>| tests.iter().filter_map(f).max();
    CodeResult {
        verdict,
        exit_code,
        signal,
        stdout: Bytes::default(),
        stderr: Bytes::default(),
        compile_output,
        time_ms: max(|t| t.time_ms),
        cpu_time_ms: max(|t| t.cpu_time_ms),
        memory_kb: max(|t| t.memory_kb),
        truncated: tests.iter().any(|t| t.truncated),
        passed: Some(
            tests
                .iter()
                .filter(|t| t.verdict == Verdict::Accepted)
                .count() as u32,
        ),
        total: Some(total as u32),
        tests: Some(tests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent gone without a report after the program started is the run's verdict
    /// (with a line saying so), not a platform failure that would be retried and end
    /// `failed`; a run void for writing into the agent's channel likewise.
    #[test]
    fn a_run_whose_agent_stopped_is_a_runtime_error_with_a_note() {
        for (reason, note) in [
            (StopReason::AgentLost, "agent stopped during the run"),
            (StopReason::Interfered, "its run is void"),
        ] {
            let out = RunOutcome::of(StepOutcome {
                reason,
                stderr: b"partial".to_vec(),
                ..StepOutcome::cancelled()
            });
            assert_eq!(out.verdict, Verdict::RuntimeError);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                stderr.starts_with("partial\ncodebox: ") && stderr.contains(note),
                "{stderr}"
            );
        }
    }
}
