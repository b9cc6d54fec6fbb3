//! A running task's live events on their way to the API: gathered for a moment, adjacent
//! output of one stream joined, so a chatty program costs few calls.

use super::*;

/// Live events a task's sandbox may be ahead of the API by before some are dropped.
pub(super) const PROGRESS_BACKLOG: usize = 256;
/// Events gathered into one call to the API: for this long after the first of them...
pub(super) const PROGRESS_WINDOW: Duration = Duration::from_millis(50);
/// ...or up to this many bytes of output.
pub(super) const PROGRESS_BYTES: usize = 256 * 1024;
/// How long the end of a run waits for its last events to reach the API.
pub(super) const PROGRESS_FLUSH: Duration = Duration::from_secs(2);

/// Sends a running task's live events (of its run `attempt`) to the API, gathered for
/// [`PROGRESS_WINDOW`] with adjacent output of one stream merged, until the sandbox drops
/// its sender.
pub(super) async fn forward_progress(
    control: Arc<dyn TaskControl>,
    id: TaskId,
    attempt: u32,
    mut events: tokio::sync::mpsc::Receiver<TaskEvent>,
) {
    while let Some(first) = events.recv().await {
        let mut batch = Batch::default();
        batch.push(first);
        let window = tokio::time::sleep(PROGRESS_WINDOW);
        tokio::pin!(window);
        while batch.bytes < PROGRESS_BYTES {
            tokio::select! {
                next = events.recv() => match next {
                    Some(event) => batch.push(event),
                    None => break,
                },
                _ = &mut window => break,
            }
        }
        if let Err(e) = control.progress(id, attempt, batch.events).await {
            metrics::counter!("codebox_events_dropped_total").increment(1);
            tracing::debug!(task_id = %id, error = %e, "live events did not reach the API");
        }
    }
}

/// Events for one call, with consecutive chunks of one stream joined.
#[derive(Default)]
struct Batch {
    events: Vec<TaskEvent>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, event: TaskEvent) {
        use codebox_core::bytes::Bytes;
        match (self.events.last_mut(), event) {
            (Some(TaskEvent::Stdout { data: a }), TaskEvent::Stdout { data: b })
            | (Some(TaskEvent::Stderr { data: a }), TaskEvent::Stderr { data: b }) => {
                self.bytes += b.len();
                let mut joined = std::mem::take(a).into_vec();
                joined.extend_from_slice(b.as_bytes());
                *a = Bytes::new(joined);
            }
            (_, event) => {
                if let TaskEvent::Stdout { data } | TaskEvent::Stderr { data } = &event {
                    self.bytes += data.len();
                }
                self.events.push(event);
            }
        }
    }
}
