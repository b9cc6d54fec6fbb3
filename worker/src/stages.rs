//! Where a task's time goes on the worker, stage by stage, as one histogram
//! (`codebox_stage_seconds{stage}`): what an operator reads to see which part of a task
//! grew, and what `make bench` splits a python hello's time into.
//!
//! A task: `lease` (the start the API records), `slot` (waiting for a free sandbox slot),
//! `take` (a warm sandbox from the pool, or one started on the spot), `agent` (the job
//! written to the agent until it has started the program: its files placed, limits set),
//! `program` (the program's run as the worker sees it, to the agent's report), `commit`
//! (the outcome stored). A sandbox's start, off the task's path when the pool is warm:
//! `bundle` (its spec and directory written), `create` (the OCI runtime's namespaces,
//! cgroup and mounts, to the agent's process started), `dispose` (its end and removal).

use std::time::{Duration, Instant};

/// The histogram's name.
pub const METRIC: &str = "codebox_stage_seconds";

/// Records `elapsed` for `stage`.
pub fn record(stage: &'static str, elapsed: Duration) {
    metrics::histogram!(METRIC, "stage" => stage).record(elapsed.as_secs_f64());
}

/// Times a stage from now: `.done()` records it.
#[must_use = "a stage is recorded by `done`"]
pub struct Timer {
    stage: &'static str,
    started: Instant,
}

impl Timer {
    pub fn start(stage: &'static str) -> Self {
        Self {
            stage,
            started: Instant::now(),
        }
    }

    pub fn done(self) {
        record(self.stage, self.started.elapsed());
    }
}
