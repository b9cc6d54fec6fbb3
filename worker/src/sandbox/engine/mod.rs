//! The engine seam: what runs a sandbox. An engine starts a locked-down, single-use
//! container whose first process is the sandbox agent waiting for its job, and hands back
//! an engine-neutral [`Prepared`]: the agent's pipes and the [`Container`] behind them.
//! Everything past that point — the job, the frames, the verdict — is the same on every
//! engine (`step.rs`).
//!
//! - `docker.rs`: the Docker engine (and any runtime registered with it, e.g. gVisor);
//! - `runc/`: runc or gVisor's runsc run by the worker itself on an OCI bundle.

pub mod docker;
pub mod runc;

use std::pin::Pin;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::TaskId;
use futures::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// A container not running (never started, or exited) older than this is a leftover.
pub(crate) const NEVER_STARTED_LEFTOVER: Duration = Duration::from_secs(10);
/// A running sandbox container older than this (and the reaper's age) is stuck.
pub(crate) const RUNNING_LEFTOVER: Duration = Duration::from_secs(300);

/// What runs the sandboxes.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Its name in logs and metrics: `docker`, `runc`, `runsc`.
    fn name(&self) -> &'static str;

    /// Starts a sandbox with `memory_mb` of memory; its agent waits for its job.
    async fn prepare(&self, memory_mb: u32) -> Result<Prepared, Error>;

    /// Readiness: the engine can start a sandbox now.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Removes sandboxes a dead worker left on this host: never started or ended ones
    /// older than `age` or 10 s, running ones older than `age` and 5 minutes. No live step
    /// or warm sandbox is ever that old. Returns how many it removed.
    async fn reap(&self, age: Duration) -> anyhow::Result<usize>;
}

/// One sandbox as its engine knows it: ended when disposed of, and in the background
/// when dropped without that (no path leaves one behind, not even a cancelled future).
#[async_trait]
pub trait Container: Send + Sync {
    /// The engine's id of it.
    fn id(&self) -> &str;

    /// Records the task it serves where an operator (and the tests) can see it, off the
    /// step's path.
    fn serves(&self, task: TaskId) -> tokio::task::JoinHandle<()>;

    /// Whether the memory limit killed in the sandbox, asked of the engine, which gets
    /// `within` to tell: `None` when it cannot (an agent gone without a report then stays
    /// a platform failure, retried, rather than a verdict that may be wrong).
    async fn saw_oom(&self, within: Duration) -> Result<Option<bool>, Error>;

    /// Opens the host's account of the sandbox (its cgroup read from the host) at a step's
    /// start: what its facts are checked against at the end. `None` where the engine
    /// keeps none.
    fn account(&self) -> Option<crate::sandbox::account::Account> {
        None
    }

    /// Ends it (killing what still runs) and waits until it is gone, bounded. Its uid goes
    /// back to the pool only once the engine confirms it gone.
    async fn dispose(self: Box<Self>);
}

/// Bytes from the sandbox agent: its channel (stdout, the frames) or its own messages.
pub enum FromAgent {
    Channel(Vec<u8>),
    Stderr(Vec<u8>),
}

pub type AgentOutput = Pin<Box<dyn Stream<Item = Result<FromAgent, Error>> + Send>>;
pub type AgentInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A started sandbox whose agent waits for its one job.
pub struct Prepared {
    pub(crate) container: Box<dyn Container>,
    pub(crate) output: AgentOutput,
    pub(crate) input: AgentInput,
    pub born: Instant,
    /// `RLIMIT_NPROC` the agent sets (gVisor, where the cgroup's pids limit bounds the
    /// Sentry's threads rather than the program's processes).
    pub(crate) nproc: Option<u64>,
}

impl Prepared {
    pub fn new(
        container: Box<dyn Container>,
        output: AgentOutput,
        input: AgentInput,
        nproc: Option<u64>,
    ) -> Self {
        Self {
            container,
            output,
            input,
            born: Instant::now(),
            nproc,
        }
    }

    /// The engine's id of its container.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// Ends the sandbox unused.
    pub async fn discard(self) {
        self.container.dispose().await;
    }

    /// Leaves the sandbox as a worker killed at this moment would: the agent's channel
    /// closes, and nothing of the worker disposes of the container (the reaper's case).
    pub fn abandon(self) {
        let Prepared {
            container,
            output,
            input,
            ..
        } = self;
        drop((output, input));
        std::mem::forget(container);
    }
}

/// An agent's stdout and stderr pipes (the OCI engines') as one [`AgentOutput`]; it ends
/// when both have closed.
pub(crate) fn pipes<O, E>(stdout: O, stderr: E) -> AgentOutput
where
    O: AsyncRead + Unpin + Send + 'static,
    E: AsyncRead + Unpin + Send + 'static,
{
    Box::pin(futures::stream::select(
        chunks(stdout, FromAgent::Channel),
        chunks(stderr, FromAgent::Stderr),
    ))
}

/// A pipe's bytes as they come, until it closes.
fn chunks<R>(
    reader: R,
    wrap: fn(Vec<u8>) -> FromAgent,
) -> impl Stream<Item = Result<FromAgent, Error>> + Send + 'static
where
    R: AsyncRead + Unpin + Send + 'static,
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
