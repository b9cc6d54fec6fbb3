//! Finished tasks' summaries, kept by the API process that read them: a finished task
//! never changes again, so a client polling its status after the end — or many clients
//! reading one task — is answered without the store. Only finished summaries are kept
//! (a queued or running task is always read), at most [`MOST`] of them, each for
//! [`KEPT`]: a task removed past its retention is answered for no longer than that.

use std::time::Duration;

use crate::domain::{TaskId, TaskSummary};
use crate::kept::Kept;

/// How long a finished summary is answered from memory.
pub const KEPT: Duration = Duration::from_secs(60);
/// Finished summaries one process keeps at most.
pub const MOST: usize = 10_000;

pub(super) struct FinishedSummaries(Kept<TaskId, TaskSummary>);

impl Default for FinishedSummaries {
    fn default() -> Self {
        Self(Kept::new(KEPT, MOST))
    }
}

impl FinishedSummaries {
    pub(super) fn get(&self, id: TaskId) -> Option<TaskSummary> {
        self.0.get(&id)
    }

    /// Keeps `summary` if its task has finished.
    pub(super) fn keep(&self, summary: &TaskSummary) {
        if summary.status.is_finished() {
            self.0.put(summary.id, summary.clone());
        }
    }
}
