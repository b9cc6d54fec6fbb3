//! Writing to the terminal: the program's bytes, our lines on stderr, figures, and the
//! spinner shown while a task waits in the queue.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::fail::{Fail, Result};

/// Bytes for stdout, flushed at once (the output is live).
pub fn stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Fail::stdout(&e))
}

/// Bytes for stderr; a failure to write there cannot be told to anyone.
pub fn stderr(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

/// One line of ours on stderr.
pub fn say(line: impl std::fmt::Display) {
    stderr(format!("{line}\n").as_bytes());
}

/// A JSON value on stdout, pretty-printed.
pub fn json(value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    stdout(format!("{text}\n").as_bytes())
}

pub fn ms(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

pub fn kib(kb: u64) -> String {
    if kb >= 1024 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{kb} KiB")
    }
}

/// A spinner on stderr while a task is queued, only when stderr is a terminal. It runs
/// on the client's one thread, so stopping it cannot race with its drawing.
pub struct Spinner {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    pub fn off() -> Self {
        Self { task: None }
    }

    pub fn start(label: &'static str, enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Self::off();
        }
        let since = Instant::now();
        let task = tokio::spawn(async move {
            const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for frame in FRAMES.iter().cycle() {
                tick.tick().await;
                let secs = since.elapsed().as_secs_f64();
                stderr(format!("\r{frame} {label} {secs:.1} s").as_bytes());
            }
        });
        Self { task: Some(task) }
    }

    /// Stops it and clears its line.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            stderr(b"\r\x1b[2K");
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(ms(41), "41 ms");
        assert_eq!(ms(12_345), "12.3 s");
        assert_eq!(kib(900), "900 KiB");
        assert_eq!(kib(9830), "9.6 MiB");
    }
}
