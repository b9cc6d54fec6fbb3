//! One sandbox step: a fresh container whose first process is the sandbox agent
//! (crate `agent`), which takes the step as one job on its stdin and reports output and
//! exact facts as frames on its stdout. The container is removed whatever happens and
//! never runs a second job.
//!
//! A container is prepared (created, attached, started: the agent waits for its job) either
//! ahead of need by the pool (`pool.rs`) or on the spot. Host code never opens, writes or
//! follows a path inside the sandbox: files go in inside the job, output comes back in
//! frames, and the program's own bytes can never pass for a frame.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use codebox_agent::{AGENT_PATH, Decoder, FileSpec, Frame, Job, Report, Stop, encode_job, key_hex};
use codebox_core::Error;
use codebox_core::bytes::Bytes;
use codebox_core::domain::{TaskEvent, TaskId};
use codebox_core::ports::Progress;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SandboxConfig;
use super::commands::BOX_DIR;
use super::oci::{self, Oci};

pub use codebox_agent::Cap;

/// Label on every sandbox container, for finding leftovers.
pub const ROLE_LABEL: &str = "codebox.role";
/// Label with the memory limit a container was made with (its pool class).
pub const MEMORY_LABEL: &str = "codebox.memory_mb";
/// A container running a task's step is renamed `codebox-<task id>-<n>`.
pub const NAME_PREFIX: &str = "codebox-";

/// Time the agent gets to take its job and start the program (a 64 MiB binary included).
const START_GRACE: Duration = Duration::from_secs(30);
/// Time past the wall limit before the worker stops waiting for the agent's report.
const REPORT_GRACE: Duration = Duration::from_secs(3);
/// Bytes of the agent's own stderr kept for the log when it fails.
const AGENT_STDERR: usize = 4096;

/// A file to place in `/tmp/box` before the command runs.
#[derive(Clone)]
pub struct InFile {
    pub name: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

pub struct Step {
    pub task_id: TaskId,
    /// The program and its arguments, run in `BOX_DIR`.
    pub argv: Vec<String>,
    pub files: Vec<InFile>,
    pub stdin: Vec<u8>,
    pub wall: Duration,
    /// CPU time of all the step's processes together; only `wall` applies when `None`.
    pub cpu: Option<Duration>,
    pub memory_mb: u32,
    /// The program's stack limit (`RLIMIT_STACK`); the container's default when `None`.
    pub stack_mb: Option<u32>,
    pub stdout: Cap,
    pub stderr: Cap,
    /// Where the output goes as it is made (live events), besides the outcome.
    pub progress: Option<Progress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The command ended by itself (with any exit code or signal).
    Exited,
    /// The wall-clock limit.
    TimeLimit,
    /// A stream went over its cap.
    OutputLimit,
    Cancelled,
    /// Bytes that are not the agent's arrived on its channel: the program reached the
    /// agent's stdout (possible on gVisor) and its run is void.
    Interfered,
    /// The agent ended without a report after the program had started, and the engine
    /// can tell no memory limit killed it (runc): the run's own doing as far as anyone
    /// can tell, so its verdict, not a platform failure to retry.
    AgentLost,
}

#[derive(Debug)]
pub struct StepOutcome {
    pub reason: StopReason,
    /// The program's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended the program, when one did.
    pub signal: Option<i32>,
    pub oom_killed: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
    /// From the program's start to its end.
    pub wall: Duration,
    /// User + system time of all the program's processes.
    pub cpu: Option<Duration>,
    /// Peak resident memory of the largest of them.
    pub memory_kb: Option<u64>,
}

impl StepOutcome {
    /// Cancelled before the program started.
    pub fn cancelled() -> Self {
        Self {
            reason: StopReason::Cancelled,
            exit_code: None,
            signal: None,
            oom_killed: false,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
            wall: Duration::ZERO,
            cpu: None,
            memory_kb: None,
        }
    }
}

/// Ends the container when dropped, unless `dispose` ran: no path leaves one behind, not
/// even a cancelled future.
struct Guard {
    docker: Docker,
    id: Option<String>,
    started: bool,
    /// The container's uid, given back once it is gone.
    identity: Option<super::identity::Identity>,
}

impl Guard {
    async fn dispose(mut self) {
        let gone = match self.id.take() {
            Some(id) => dispose(&self.docker, &id, self.started).await,
            None => true,
        };
        keep_unless_gone(self.identity.take(), gone);
    }
}

/// Disposals begun by a drop (a step or a preparation cut short, e.g. by a cancel): a
/// worker's shutdown waits for these too ([`settle_dropped`]), so none is lost when the
/// process ends right after.
pub(crate) static DROPPED: std::sync::LazyLock<TaskTracker> =
    std::sync::LazyLock::new(TaskTracker::new);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let (docker, started) = (self.docker.clone(), self.started);
            let identity = self.identity.take();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(DROPPED.track_future(async move {
                    let gone = dispose(&docker, &id, started).await;
                    keep_unless_gone(identity, gone);
                }));
            }
        }
    }
}

/// Waits (at most a minute) until every disposal begun by a drop has ended.
pub(crate) async fn settle_dropped() {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !DROPPED.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A container's uid goes back once the container is gone; one the engine did not
/// confirm gone may still run as it, so it keeps the uid for good.
fn keep_unless_gone(identity: Option<super::identity::Identity>, gone: bool) {
    if let Some(identity) = identity
        && !gone
    {
        std::mem::forget(identity);
    }
}

/// How long the engine gets to remove a killed container before the worker removes it.
const REMOVAL_WAIT: Duration = Duration::from_secs(10);

/// Ends a sandbox container and waits until it is gone (bounded). A started one is killed
/// and the engine removes it: it was created with auto-remove, and removing it as well
/// races the engine's own removal, which Docker 20.10 can leave as a phantom "Removal In
/// Progress". One never started is removed directly.
/// Whether the container is known to be gone (or dead, its removal left to the engine).
pub(crate) async fn dispose(docker: &Docker, id: &str, started: bool) -> bool {
    // A start cut short (the worker stopping mid-call) may have started it all the same:
    // ask the engine rather than trust the flag before removing it directly.
    let started = started
        || docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.status)
            .is_some_and(|s| s != bollard::models::ContainerStateStatusEnum::CREATED);
    if started {
        let kill = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        // Already exited (its agent saw stdin end) or gone: nothing to kill.
        let _ = docker.kill_container(id, Some(kill)).await;
        let wait = WaitContainerOptionsBuilder::default()
            .condition("removed")
            .build();
        let mut waiting = docker.wait_container(id, Some(wait));
        match tokio::time::timeout(REMOVAL_WAIT, waiting.next()).await {
            // Removed (with any exit status), or already gone.
            Ok(Some(Ok(_)))
            | Ok(None)
            | Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })))
            | Ok(Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            }))) => return true,
            // The engine is removing it, or will: removing it as well is the race above.
            Ok(Some(Err(e))) => {
                tracing::debug!(container = id, error = %e, "waiting for a sandbox's removal");
                return false;
            }
            // Left to the engine, which removes it once it can: removing it here as well
            // is the race that leaves a phantom. The reaper looks again after 5 minutes.
            Err(_) => {
                tracing::warn!(
                    container = id,
                    "the engine did not remove a killed sandbox within 10 s; leaving it to the engine"
                );
                return false;
            }
        }
    }
    remove(docker, id).await
}

/// Whether it is gone: removed now, or already (auto-remove).
pub(crate) async fn remove(docker: &Docker, id: &str) -> bool {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => true,
        // Being removed by the engine.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => false,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "removing a sandbox container failed");
            false
        }
    }
}

fn engine(e: bollard::errors::Error) -> Error {
    Error::Unavailable(format!("container engine: {e}"))
}

/// Tasks the agent itself may use (its main thread, two readers, the reaper).
const AGENT_TASKS: i64 = 4;
/// The container's pids limit on gVisor: there it bounds the Sentry's host threads (a
/// compile needs more than 80), and the program's processes are bounded by
/// `RLIMIT_NPROC` inside the sandbox instead, which gVisor enforces per sandbox.
const GVISOR_HOST_PIDS: i64 = 1024;

impl SandboxConfig {
    fn gvisor(&self) -> bool {
        self.runtime.as_deref() == Some("runsc")
    }
}

/// No new privileges, and the sandboxes' seccomp policy (the runc engine's too) as the
/// container's profile.
fn security_options(config: &SandboxConfig) -> Vec<String> {
    let mut options = vec!["no-new-privileges".to_owned()];
    if let Some(policy) = &config.seccomp {
        options.push(format!("seccomp={policy}"));
    }
    options
}

fn container_config(config: &SandboxConfig, memory_mb: u32, uid: u32) -> ContainerCreateBody {
    let memory = i64::from(memory_mb) * 1024 * 1024;
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(value),
        hard: Some(value),
    };
    ContainerCreateBody {
        image: Some(config.image.clone()),
        // The agent is the container's first process: no shell, no init of Docker's.
        entrypoint: Some(vec![AGENT_PATH.to_owned()]),
        cmd: Some(vec![]),
        // An explicit, minimal environment: nothing of the worker's reaches the sandbox.
        env: Some(vec![
            "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            "HOME=/tmp".to_owned(),
            "TMPDIR=/tmp".to_owned(),
            "LANG=C.UTF-8".to_owned(),
            "PYTHONUNBUFFERED=1".to_owned(),
        ]),
        user: Some(format!("{uid}:{uid}")),
        working_dir: Some("/tmp".to_owned()),
        labels: Some(HashMap::from([
            (ROLE_LABEL.to_owned(), "sandbox".to_owned()),
            (MEMORY_LABEL.to_owned(), memory_mb.to_string()),
        ])),
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,exec,nosuid,nodev,size={}m,mode=1777", config.tmpfs_mb),
            )])),
            cap_drop: Some(vec!["ALL".to_owned()]),
            security_opt: Some(security_options(config)),
            privileged: Some(false),
            oom_score_adj: Some(super::OOM_SCORE_ADJ),
            masked_paths: Some(super::proc_paths::masked()),
            readonly_paths: Some(super::proc_paths::readonly()),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some((config.cpus * 1e9) as i64),
            pids_limit: Some(if config.gvisor() {
                GVISOR_HOST_PIDS.max(config.pids)
            } else {
                config.pids
            }),
            ulimits: Some(vec![
                ulimit("fsize", config.file_size_mb * 1024 * 1024),
                ulimit("nofile", 256),
                ulimit("core", 0),
            ]),
            // Output is read from the attached streams; nothing goes to disk logs.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_owned()),
                config: None,
            }),
            runtime: config.runtime.clone(),
            init: Some(false),
            // The agent exits when its worker's connection closes (stdin ends), and the
            // engine then removes the container: none outlives a worker, even one killed.
            auto_remove: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// What runs the sandboxes: the Docker engine, or runc driven by the worker itself.
#[derive(Clone)]
pub enum Engine {
    Docker(Docker),
    Runc(Arc<Oci>),
}

/// A sandbox of either engine, ended when dropped (see `Guard`).
enum Handle {
    Docker {
        docker: Docker,
        guard: Guard,
        id: String,
    },
    /// Ended when dropped too (its own `Drop`).
    Runc(oci::Container),
}

impl Handle {
    async fn dispose(self) {
        match self {
            Handle::Docker { guard, .. } => guard.dispose().await,
            Handle::Runc(mut container) => container.dispose().await,
        }
    }

    /// Whether the memory limit killed in the sandbox, asked of its engine.
    /// Whether [`Self::saw_oom`]'s `false` is certain. runc sees how the agent ended (a
    /// SIGKILL only the memory limit can send); Docker's auto-removed container can be
    /// gone before its OOM flag is read (seen on gVisor), so there an agent gone without a
    /// report stays a platform failure, retried, rather than a verdict that may be wrong.
    fn tells_oom_apart(&self) -> bool {
        matches!(self, Handle::Runc(_))
    }

    async fn saw_oom(&self) -> Result<bool, Error> {
        match self {
            Handle::Docker { docker, id, .. } => engine_saw_oom(docker, id).await,
            Handle::Runc(c) => Ok(c.saw_oom().await),
        }
    }
}

/// A started sandbox whose agent waits for its one job.
pub struct Prepared {
    handle: Handle,
    output: Output,
    input: Input,
    pub born: Instant,
    /// `RLIMIT_NPROC` the agent sets (gVisor).
    nproc: Option<u64>,
}

/// Starts a sandbox with `memory_mb` of memory on `engine`.
pub async fn prepare(
    engine: &Engine,
    config: &SandboxConfig,
    memory_mb: u32,
) -> Result<Prepared, Error> {
    match engine {
        Engine::Docker(docker) => prepare_container(docker, config, memory_mb).await,
        Engine::Runc(oci) => {
            let started = oci.prepare(config, memory_mb).await?;
            let output = futures::stream::select(
                chunks(started.stdout, |message| LogOutput::StdOut {
                    message: message.into(),
                }),
                chunks(started.stderr, |message| LogOutput::StdErr {
                    message: message.into(),
                }),
            );
            Ok(Prepared {
                handle: Handle::Runc(started.container),
                output: Box::pin(output),
                input: Box::pin(started.stdin),
                born: Instant::now(),
                nproc: None,
            })
        }
    }
}

/// A pipe's bytes as they come, until it closes.
fn chunks<R>(
    reader: R,
    wrap: fn(Vec<u8>) -> LogOutput,
) -> impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send + 'static
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    futures::stream::unfold(reader, move |mut reader| async move {
        let mut buf = vec![0u8; 32 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(wrap(buf)), reader))
            }
        }
    })
}

/// Creates, attaches and starts a sandbox container with `memory_mb` of memory.
async fn prepare_container(
    docker: &Docker,
    config: &SandboxConfig,
    memory_mb: u32,
) -> Result<Prepared, Error> {
    let identity = config.identities.take()?;
    let created = docker
        .create_container(None, container_config(config, memory_mb, identity.uid()))
        .await
        .map_err(engine)?;
    let mut guard = Guard {
        docker: docker.clone(),
        id: Some(created.id.clone()),
        started: false,
        identity: Some(identity),
    };
    let attach = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let attached = docker
        .attach_container(&created.id, Some(attach))
        .await
        .map_err(engine)?;
    // From here on the engine may be running it: it is killed, never removed under the
    // engine's own auto-remove.
    guard.started = true;
    docker
        .start_container(&created.id, None)
        .await
        .map_err(engine)?;
    Ok(Prepared {
        handle: Handle::Docker {
            docker: docker.clone(),
            guard,
            id: created.id,
        },
        output: attached.output,
        input: attached.input,
        born: Instant::now(),
        nproc: config
            .gvisor()
            .then(|| (config.pids + AGENT_TASKS).max(0) as u64),
    })
}

impl Prepared {
    /// Ends the sandbox unused.
    pub async fn discard(self) {
        self.handle.dispose().await;
    }

    /// Runs the step to its end, a limit, or a cancel. Every process of the program is
    /// dead when this returns; the sandbox's removal is under way on `removals` (off
    /// the task's path; a shutdown waits for it).
    pub async fn run(
        self,
        step: Step,
        cancel: &CancellationToken,
        removals: &TaskTracker,
    ) -> Result<StepOutcome, Error> {
        let Prepared {
            handle,
            output,
            input,
            nproc,
            ..
        } = self;
        // The name tells which task a sandbox serves (docker ps, runc's bundle, the
        // tests); a rename that fails costs nothing but that.
        let named = match &handle {
            Handle::Docker { docker, id, .. } => {
                let (docker, id) = (docker.clone(), id.clone());
                let name = format!("{NAME_PREFIX}{}-{}", step.task_id, &id[..12.min(id.len())]);
                tokio::spawn(async move {
                    let options = RenameContainerOptionsBuilder::default().name(&name).build();
                    let _ = docker.rename_container(&id, options).await;
                })
            }
            Handle::Runc(c) => c.serves(step.task_id),
        };
        let outcome = drive(&handle, output, input, step, nproc, cancel).await;
        removals.spawn(async move {
            let _ = named.await;
            handle.dispose().await;
        });
        outcome
    }
}

/// Runs the step in a sandbox prepared on the spot; the sandbox is gone when this
/// returns.
pub async fn run(
    engine: &Engine,
    config: &SandboxConfig,
    step: Step,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    let removals = TaskTracker::new();
    let outcome = prepare(engine, config, step.memory_mb)
        .await?
        .run(step, cancel, &removals)
        .await;
    removals.close();
    removals.wait().await;
    outcome
}

/// A fresh key for one job's report.
fn new_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

fn job_of(step: &Step, key: &[u8; 32], nproc: Option<u64>) -> Result<Vec<u8>, Error> {
    let job = Job {
        key: key_hex(key),
        dir: BOX_DIR.to_owned(),
        files: step
            .files
            .iter()
            .map(|f| FileSpec {
                name: f.name.clone(),
                mode: f.mode,
                size: 0,
            })
            .collect(),
        stdin_size: 0,
        argv: step.argv.clone(),
        wall_ms: step.wall.as_millis() as u64,
        stdout: step.stdout,
        stderr: step.stderr,
        nproc,
        stack_bytes: step.stack_mb.map(|mb| u64::from(mb) * 1024 * 1024),
        cpu_ms: step.cpu.map(|d| d.as_millis() as u64),
    };
    let files: Vec<&[u8]> = step.files.iter().map(|f| f.bytes.as_slice()).collect();
    encode_job(&job, &files, &step.stdin)
        .map_err(|e| Error::Backend(anyhow::anyhow!("encoding the sandbox job: {e}")))
}

fn agent_failed(what: String) -> Error {
    Error::Backend(anyhow::anyhow!("the sandbox agent {what}"))
}

async fn drive(
    handle: &Handle,
    mut output: Output,
    mut input: Input,
    step: Step,
    nproc: Option<u64>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    let key = new_key();
    let job = job_of(&step, &key, nproc)?;
    let writer = tokio::spawn(async move {
        // The agent reads the whole job before it starts the program; keep stdin open
        // afterwards (closing it tells the agent the worker is gone).
        let _ = input.write_all(&job).await;
        let _ = input.flush().await;
        input
    });
    let mut decoder = Decoder::new(key);
    let (mut stdout_bytes, mut stderr_bytes) = (0u64, 0u64);
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut agent_stderr = Vec::new();
    let mut truncated = false;
    let mut started: Option<Instant> = None;
    let deadline = tokio::time::sleep(START_GRACE);
    tokio::pin!(deadline);
    let ended = loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Err(StopReason::Cancelled),
            _ = &mut deadline => break Err(StopReason::TimeLimit),
            item = output.next() => match item {
                None => break Ok(None),
                Some(Err(e)) => {
                    writer.abort();
                    return Err(engine(e));
                }
                Some(Ok(LogOutput::StdOut { message })) => {
                    decoder.push(&message);
                    let mut report = None;
                    loop {
                        let frame = match decoder.next_frame() {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "foreign bytes on a sandbox agent's channel");
                                report = Some(Err(StopReason::Interfered));
                                break;
                            }
                        };
                        match frame {
                            Frame::Started => {
                                let now = Instant::now();
                                started = Some(now);
                                deadline.as_mut().reset((now + step.wall + REPORT_GRACE).into());
                            }
                            Frame::Stdout(b) => {
                                stdout_bytes += b.len() as u64;
                                let kept = stdout.len();
                                truncated |= keep(&mut stdout, &b, step.stdout);
                                show(&step.progress, &stdout[kept..], |data| TaskEvent::Stdout { data });
                            }
                            Frame::Stderr(b) => {
                                stderr_bytes += b.len() as u64;
                                let kept = stderr.len();
                                truncated |= keep(&mut stderr, &b, step.stderr);
                                show(&step.progress, &stderr[kept..], |data| TaskEvent::Stderr { data });
                            }
                            Frame::Exit(r) => {
                                // Output slipped in besides the agent's shows as a count
                                // that does not match the authenticated report.
                                report = Some(if (r.stdout_bytes, r.stderr_bytes) == (stdout_bytes, stderr_bytes) {
                                    Ok(r)
                                } else {
                                    Err(StopReason::Interfered)
                                });
                                break;
                            }
                            Frame::Failed(m) => {
                                writer.abort();
                                return Err(agent_failed(format!("refused the job: {m}")));
                            }
                        }
                    }
                    match report {
                        Some(Ok(r)) => break Ok(Some(r)),
                        Some(Err(reason)) => break Err(reason),
                        None => {}
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    let room = AGENT_STDERR.saturating_sub(agent_stderr.len());
                    agent_stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
                Some(Ok(_)) => {}
            },
        }
    };
    writer.abort();
    let wall = started.map(|s| s.elapsed()).unwrap_or_default();
    let stopped = |reason| StepOutcome {
        reason,
        truncated,
        wall,
        ..StepOutcome::cancelled()
    };
    match ended {
        Ok(Some(report)) => {
            let oom_killed = match report.oom_killed {
                Some(oom) => oom,
                // Where the agent cannot read the cgroup (gVisor), ask the engine about a
                // SIGKILL the agent did not send.
                None if report.signal == Some(9) && report.stop == Stop::Exited => {
                    handle.saw_oom().await?
                }
                None => false,
            };
            Ok(StepOutcome {
                stdout,
                stderr,
                truncated: truncated || report.truncated,
                oom_killed,
                ..outcome_of(&report, stopped(StopReason::Exited))
            })
        }
        // Our own backstop or a cancel: the program's output so far is kept.
        Err(reason) => Ok(StepOutcome {
            stdout,
            stderr,
            ..stopped(reason)
        }),
        Ok(None) => {
            // The agent is gone without a report: killed with the container's memory (it
            // is one of its processes), or broken.
            if handle.saw_oom().await? {
                return Ok(StepOutcome {
                    oom_killed: true,
                    signal: Some(9),
                    stdout,
                    stderr,
                    ..stopped(StopReason::Exited)
                });
            }
            let why = String::from_utf8_lossy(&agent_stderr).trim().to_owned();
            if started.is_some() && handle.tells_oom_apart() {
                tracing::warn!(agent = %why, "a sandbox agent stopped during the run without a report");
                return Ok(StepOutcome {
                    stdout,
                    stderr,
                    ..stopped(StopReason::AgentLost)
                });
            }
            Err(agent_failed(format!("stopped without a report: {why}")))
        }
    }
}

fn outcome_of(report: &Report, base: StepOutcome) -> StepOutcome {
    StepOutcome {
        reason: match report.stop {
            Stop::Exited => StopReason::Exited,
            Stop::TimeLimit => StopReason::TimeLimit,
            Stop::OutputLimit => StopReason::OutputLimit,
        },
        exit_code: report.exit_code,
        signal: report.signal,
        wall: Duration::from_micros(report.wall_us),
        cpu: Some(Duration::from_micros(report.cpu_us)),
        memory_kb: Some(report.memory_kb),
        ..base
    }
}

/// Sends output just kept (never more than the outcome holds) as a live event.
fn show(progress: &Option<Progress>, kept: &[u8], event: fn(Bytes) -> TaskEvent) {
    if let (Some(progress), false) = (progress, kept.is_empty()) {
        progress.send(event(Bytes::new(kept.to_vec())));
    }
}

/// Appends what fits under the cap; true when something did not fit.
fn keep(buf: &mut Vec<u8>, chunk: &[u8], cap: Cap) -> bool {
    let room = (cap.bytes as usize).saturating_sub(buf.len());
    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

/// Whether the engine recorded an OOM kill in the container. It may record the cgroup's
/// event a moment after the kill (seen on cgroup v1), so it looks again for a moment.
async fn engine_saw_oom(docker: &Docker, id: &str) -> Result<bool, Error> {
    for attempt in 0..7 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let state = match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c.state,
            // Gone (auto-removed after its agent ended): nothing more to learn.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(false),
            Err(e) => return Err(engine(e)),
        };
        if state.and_then(|s| s.oom_killed).unwrap_or(false) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Every protection of the sandbox container, pinned: removing any one of them from
    /// `container_config` turns this red (the end-to-end probes in `tests/` check that the
    /// engine really applies them).
    #[test]
    fn the_container_is_locked_down() {
        let config = SandboxConfig {
            runtime: Some("runsc".into()),
            ..SandboxConfig::default()
        };
        let c = container_config(&config, 128, 2_000_123);
        assert_eq!(
            c.entrypoint,
            Some(vec![AGENT_PATH.to_owned()]),
            "the agent is PID 1"
        );
        assert_eq!(
            c.user.as_deref(),
            Some("2000123:2000123"),
            "its own identity, not root"
        );
        assert_eq!(c.network_disabled, Some(true));
        let env = c.env.unwrap();
        assert!(env.iter().all(|e| {
            ["PATH=", "HOME=", "TMPDIR=", "LANG=", "PYTHONUNBUFFERED="]
                .iter()
                .any(|p| e.starts_with(p))
        }));
        let h = c.host_config.unwrap();
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.oom_score_adj, Some(1000));
        assert_eq!(h.masked_paths, Some(super::super::proc_paths::masked()));
        assert_eq!(h.readonly_paths, Some(super::super::proc_paths::readonly()));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_owned()]));
        assert!(h.cap_add.is_none());
        assert_eq!(h.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        let policy = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []});
        let with_policy = SandboxConfig {
            seccomp: Some(std::sync::Arc::new(policy.clone())),
            ..SandboxConfig::default()
        };
        let opts = container_config(&with_policy, 128, 2_000_123)
            .host_config
            .unwrap()
            .security_opt
            .unwrap();
        assert_eq!(opts[0], "no-new-privileges");
        let profile = opts[1].strip_prefix("seccomp=").expect("a seccomp profile");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(profile).unwrap(),
            policy,
            "the same policy as the runc engine's"
        );
        assert_eq!(h.memory, Some(128 * 1024 * 1024));
        assert_eq!(h.memory_swap, h.memory, "no swap beyond the memory limit");
        assert_eq!(h.nano_cpus, Some(1_000_000_000));
        assert_eq!(
            h.pids_limit,
            Some(GVISOR_HOST_PIDS),
            "on gVisor the Sentry's threads; the program gets RLIMIT_NPROC"
        );
        let runc = container_config(&SandboxConfig::default(), 128, 2_000_123);
        assert_eq!(runc.host_config.unwrap().pids_limit, Some(64));
        let tmpfs = h.tmpfs.unwrap();
        assert_eq!(tmpfs.len(), 1);
        let tmp = &tmpfs["/tmp"];
        assert!(tmp.contains("nosuid") && tmp.contains("nodev") && tmp.contains("size=64m"));
        let limits: HashMap<String, i64> = h
            .ulimits
            .unwrap()
            .into_iter()
            .map(|u| {
                assert_eq!(u.soft, u.hard);
                (u.name.unwrap(), u.hard.unwrap())
            })
            .collect();
        assert_eq!(limits["fsize"], 16 * 1024 * 1024);
        assert_eq!(limits["nofile"], 256);
        assert_eq!(limits["core"], 0);
        assert!(
            h.binds.is_none() && h.mounts.is_none(),
            "no host path inside"
        );
        assert!(h.devices.is_none() && h.device_requests.is_none());
        assert_eq!(h.log_config.unwrap().typ.as_deref(), Some("none"));
        assert_eq!(h.runtime.as_deref(), Some("runsc"));
        assert_eq!(h.auto_remove, Some(true), "gone with its worker");
        assert!(h.pid_mode.is_none() && h.ipc_mode.is_none() && h.userns_mode.is_none());
    }
}
