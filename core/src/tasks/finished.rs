//! Finished tasks' summaries, kept by the API process that read them: a finished task
//! never changes again, so a client polling its status after the end — or many clients
//! reading one task — is answered without the store. Only finished summaries are kept
//! (a queued or running task is always read), at most [`MOST`] of them, each for
//! [`KEPT`]: a task removed past its retention is answered for no longer than that.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::domain::{TaskId, TaskSummary};

/// How long a finished summary is answered from memory.
pub const KEPT: Duration = Duration::from_secs(60);
/// Finished summaries one process keeps at most.
pub const MOST: usize = 10_000;

#[derive(Default)]
pub(super) struct FinishedSummaries(Mutex<HashMap<TaskId, (Instant, TaskSummary)>>);

impl FinishedSummaries {
    pub(super) fn get(&self, id: TaskId) -> Option<TaskSummary> {
        let kept = self.0.lock();
        let (at, summary) = kept.get(&id)?;
        (at.elapsed() < KEPT).then(|| summary.clone())
    }

    /// Keeps `summary` if its task has finished.
    pub(super) fn keep(&self, summary: &TaskSummary) {
        if !summary.status.is_finished() {
            return;
        }
        let mut kept = self.0.lock();
        if kept.len() >= MOST {
            kept.retain(|_, (at, _)| at.elapsed() < KEPT);
            if kept.len() >= MOST {
                kept.clear();
            }
        }
        kept.insert(summary.id, (Instant::now(), summary.clone()));
    }
}
