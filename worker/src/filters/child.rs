//! Image filters in a child process under limits: the worker holds the Docker socket and
//! the worker credential, so a filter — decoding an attacker's PNG — must not be able to
//! take it down. The child is this very binary started with `--filter` (see
//! [`main_if_filter`]), under `prlimit` (address space, CPU seconds, no core files, few
//! descriptors) and a wall-clock timeout; the PNG goes in on stdin and comes out on
//! stdout. A child that dies (out of memory, killed at a limit) ends the task `failed`
//! with the reason, and the worker carries on.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use codebox_core::config::{self, ConfigError};
use codebox_core::domain::Filter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::FilterError;

/// The argument that makes the worker (or embedded) binary run one filter and exit.
pub const FILTER_FLAG: &str = "--filter";
/// The child's exit code for a refusal of the input ([`FilterError`]); its one-line
/// reason is on stderr.
const REFUSED: i32 = 3;

#[derive(Debug, Clone)]
pub struct FilterLimits {
    /// The binary that understands `--filter`: the worker's own by default.
    pub program: PathBuf,
    /// Address space of the child.
    pub memory_mb: u64,
    /// Wall-clock time of the child (its CPU time is bounded by the same number).
    pub time: Duration,
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("codebox-worker")),
            // A 40-megapixel 16-bit RGBA PNG decodes to 320 MB; blurring it needs a
            // second buffer and the encoder its own.
            memory_mb: 2048,
            time: Duration::from_secs(60),
        }
    }
}

impl FilterLimits {
    /// `CODEBOX_FILTER_MEMORY_MB` (2048, 256–65536), `CODEBOX_FILTER_TIME_SECS` (60,
    /// 1–600).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            memory_mb: config::parse_in(
                "CODEBOX_FILTER_MEMORY_MB",
                d.memory_mb,
                256..=65_536,
                "MiB",
            )?,
            time: Duration::from_secs(config::parse_in(
                "CODEBOX_FILTER_TIME_SECS",
                d.time.as_secs(),
                1..=600,
                "seconds",
            )?),
            ..d
        })
    }
}

/// Why a filter run produced no image.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The input itself is refused (the user's fault).
    #[error("{0}")]
    Refused(String),
    /// The child went over a limit and was stopped.
    #[error("{0}")]
    Limit(String),
    /// The child could not be run at all (the platform's fault).
    #[error("the filter could not be run: {0}")]
    Platform(String),
}

/// Runs `filter` on `png` in a child process under `limits`.
pub async fn run(
    limits: &FilterLimits,
    png: Vec<u8>,
    filter: &Filter,
) -> Result<Vec<u8>, ChildError> {
    let spec = serde_json::to_string(filter).map_err(|e| ChildError::Platform(e.to_string()))?;
    let secs = limits.time.as_secs().max(1);
    let mut child = tokio::process::Command::new("prlimit")
        .arg(format!("--as={}", limits.memory_mb * 1024 * 1024))
        .arg(format!("--cpu={secs}"))
        .arg("--core=0")
        .arg("--nofile=64")
        .arg("--")
        .arg(&limits.program)
        .arg(FILTER_FLAG)
        .arg(spec)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ChildError::Platform(format!("prlimit: {e}")))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ChildError::Platform("the child's pipes".into()));
    };
    let io = async {
        let write = async move {
            // A child that dies early closes its stdin: its exit status tells why.
            let _ = stdin.write_all(&png).await;
            drop(stdin);
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = stdout.read_to_end(&mut out);
        // Only the first line of the child's reason is kept.
        let mut stderr = (&mut stderr).take(4096);
        let read_err = stderr.read_to_end(&mut err);
        let (_, o, e) = tokio::join!(write, read_out, read_err);
        o.and(e).map(|_| (out, err))
    };
    let outcome = tokio::time::timeout(limits.time, async {
        let (out, err) = io.await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out, err))
    })
    .await;
    let (status, out, err) = match outcome {
        Err(_) => {
            let _ = child.kill().await;
            return Err(ChildError::Limit(format!(
                "the filter took longer than {} s",
                limits.time.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(ChildError::Platform(e.to_string())),
        Ok(Ok(v)) => v,
    };
    let reason = String::from_utf8_lossy(&err)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    match status.code() {
        Some(0) => Ok(out),
        Some(REFUSED) => Err(ChildError::Refused(reason)),
        _ => {
            use std::os::unix::process::ExitStatusExt;
            let memory = reason.contains("memory allocation") || status.signal() == Some(6);
            if memory {
                Err(ChildError::Limit(format!(
                    "the image needs more than {} MiB to filter",
                    limits.memory_mb
                )))
            } else if status.signal() == Some(24) || status.signal() == Some(9) {
                Err(ChildError::Limit(format!(
                    "the filter used more than {} s of CPU",
                    limits.time.as_secs()
                )))
            } else {
                tracing::warn!(?status, %reason, "filter child failed");
                Err(ChildError::Platform(format!(
                    "the filter process ended with {status}"
                )))
            }
        }
    }
}

/// The child's side: when this process was started as `<binary> --filter <json>`, runs
/// the filter on stdin to stdout and exits; otherwise returns and the binary goes on.
/// Called first thing in `main` of every binary that runs a worker.
pub fn main_if_filter() {
    let args: Vec<String> = std::env::args().collect();
    let [_, flag, spec] = args.as_slice() else {
        return;
    };
    if flag != FILTER_FLAG {
        return;
    }
    std::process::exit(filter_main(spec));
}

fn filter_main(spec: &str) -> i32 {
    use std::io::{Read, Write};
    let filter: Filter = match serde_json::from_str(spec) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("not a filter: {e}");
            return 2;
        }
    };
    let mut png = Vec::new();
    // One byte more than the largest accepted PNG: anything longer is refused unread.
    if let Err(e) = std::io::stdin()
        .take(codebox_core::png::MAX_BYTES as u64 + 1)
        .read_to_end(&mut png)
    {
        eprintln!("reading the image: {e}");
        return 2;
    }
    match super::apply(&png, &filter) {
        Ok(out) => match std::io::stdout().write_all(&out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("writing the image: {e}");
                2
            }
        },
        Err(e) => {
            let e: FilterError = e;
            eprintln!("{e}");
            REFUSED
        }
    }
}
