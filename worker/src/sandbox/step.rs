//! One sandbox step: a prepared sandbox (see `engine/`) whose first process is the
//! sandbox agent, which takes the step as one job on its stdin and reports output and
//! exact facts as frames on its stdout. The sandbox is ended whatever happens and never
//! runs a second job. This part is the same on every engine.
//!
//! Host code never opens, writes or follows a path inside the sandbox: files go in inside
//! the job, output comes back in frames, and the program's own bytes can never pass for a
//! frame.

use std::time::{Duration, Instant};

use codebox_agent::{Decoder, FileSpec, Frame, Job, Report, Stop, encode_job, key_hex};
use codebox_core::Error;
use codebox_core::bytes::Bytes;
use codebox_core::domain::{TaskEvent, TaskId};
use codebox_core::ports::Progress;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::account::{Account, Usage};
use super::commands::BOX_DIR;
use super::engine::{AgentInput, AgentOutput, Container, Engine, FromAgent, Prepared};

pub use codebox_agent::Cap;

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

impl Prepared {
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
            container,
            output,
            input,
            nproc,
            ..
        } = self;
        let named = container.serves(step.task_id);
        let outcome = drive(container.as_ref(), output, input, step, nproc, cancel).await;
        removals.spawn(async move {
            let _ = named.await;
            let timer = crate::stages::Timer::start("dispose");
            container.dispose().await;
            timer.done();
        });
        outcome
    }
}

/// Runs the step in a sandbox prepared on the spot; the sandbox is gone when this
/// returns.
pub async fn run(
    engine: &dyn Engine,
    step: Step,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    let removals = TaskTracker::new();
    let outcome = engine
        .prepare(step.memory_mb)
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
    container: &dyn Container,
    output: AgentOutput,
    input: AgentInput,
    step: Step,
    nproc: Option<u64>,
    cancel: &CancellationToken,
) -> Result<StepOutcome, Error> {
    // Opened before the agent has its job, so the whole step is in it.
    let account = container.account();
    let outcome = exchange(container, output, input, step, nproc, cancel).await?;
    Ok(match account.as_ref().and_then(Account::usage) {
        Some(host) if outcome.reason != StopReason::Cancelled => counted(outcome, host),
        _ => outcome,
    })
}

/// The facts no program can shrink: the larger of the agent's and the host's account of
/// the sandbox (on gVisor the agent's misses a child nobody waited for; where the agent
/// was lost, the host's is all there is).
fn counted(outcome: StepOutcome, host: Usage) -> StepOutcome {
    StepOutcome {
        cpu: Some(outcome.cpu.map_or(host.cpu, |cpu| cpu.max(host.cpu))),
        memory_kb: Some(
            outcome
                .memory_kb
                .map_or(host.memory_kb, |kb| kb.max(host.memory_kb)),
        ),
        ..outcome
    }
}

/// The job to the agent, its frames back, until its report (or a limit, a cancel, its
/// loss).
async fn exchange(
    container: &dyn Container,
    mut output: AgentOutput,
    mut input: AgentInput,
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
    let sent = Instant::now();
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
                    return Err(e);
                }
                Some(Ok(FromAgent::Channel(message))) => {
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
                                crate::stages::record("agent", now - sent);
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
                                if let Some(started) = started {
                                    crate::stages::record("program", started.elapsed());
                                }
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
                Some(Ok(FromAgent::Stderr(message))) => {
                    let room = AGENT_STDERR.saturating_sub(agent_stderr.len());
                    agent_stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
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
                // The container still runs (its agent reported): a short look, and a
                // failed one costs the run nothing.
                None if report.signal == Some(9) && report.stop == Stop::Exited => container
                    .saw_oom(Duration::from_millis(350))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "the engine did not say whether a run was out of memory");
                        None
                    })
                    .unwrap_or(false),
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
            let oom = container.saw_oom(Duration::from_secs(2)).await?;
            if oom == Some(true) {
                return Ok(StepOutcome {
                    oom_killed: true,
                    signal: Some(9),
                    stdout,
                    stderr,
                    ..stopped(StopReason::Exited)
                });
            }
            let why = String::from_utf8_lossy(&agent_stderr).trim().to_owned();
            // Certainly not the memory limit, and the program had started: the run's own
            // verdict. Before the start (or when the engine cannot tell) it is the
            // platform's failure, retried.
            if started.is_some() && oom == Some(false) {
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
