//! `GET /task/{id}/events`: a task's live events as Server-Sent Events — its status on
//! each change, its output while it runs, each test as it ends, and `done` with the
//! `GET /task/{id}` body, after which the stream closes.
//!
//! Output and tests come from the event bus (workers' progress, through the API process
//! that received it: in-process on the embedded profile, Redis pub/sub between compose
//! gateways). Status changes come from the bus too, and from reading the task's summary
//! every [`POLL`], so a profile whose bus carries nothing (AWS) still sends status, every
//! test (from the result) and `done`. A stream lasts at most the configured time
//! (`EVENTS_MAX_SECS`) and then ends without `done`: a client reconnects or reads the task.
//! A client that goes away ends its stream's work at once.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use base64::Engine;
use codebox_api::events::{OutputChunk, StatusEvent, TaskEventName};
use codebox_core::domain::{TaskEvent, TaskId, TaskStatus, UserId};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::dto::{OutputEncoding, ResultParams, TaskView};
use crate::extract::{AuthUser, Path, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// How often a followed task's summary is read for a status change the bus did not carry.
const POLL: Duration = Duration::from_secs(1);
/// Comment lines that keep an idle stream open through proxies.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event as it is sent: the name and its JSON data.
type Outgoing = (TaskEventName, serde_json::Value);

/// One event of the stream as Server-Sent Events carry it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TaskEventFrame {
    /// The event's number in this stream, from 0.
    pub id: String,
    pub event: TaskEventName,
    /// One JSON document: `{"status"}`, `{"data"[, "encoding"]}`, a test, the task, or a
    /// problem.
    pub data: String,
}

#[utoipa::path(get, path = "/task/{id}/events", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), ResultParams),
    responses(
        (status = 200, description = "`text/event-stream`. Each event has an `id` (its number in this stream) \
and one JSON `data` line. `status`: `{\"status\"}` now and on each change. `stdout` / `stderr`: \
`{\"data\"}`, output as the program writes it (`{\"data\", \"encoding\": \"base64\"}` for bytes that \
are not UTF-8), within the task's output limits; not on AWS, whose functions share no channel, \
nor for judged tasks, whose output is in their tests. `test`: one element of the result's `tests` \
as that test ends. `done`: the `GET /task/{id}` body; then the stream closes. `error`: a problem \
object when the task can no longer be read; then the stream closes. A stream that reaches its \
longest time (`EVENTS_MAX_SECS`) closes without `done`.", content_type = "text/event-stream", body = TaskEventFrame),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The task is past its retention", body = Problem, content_type = "application/problem+json")))]
pub async fn task_events(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
    Query(params): Query<ResultParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Listening starts before the first read: nothing that happens after it is missed.
    let live = state.tasks.events().subscribe(id).await?;
    let summary = state.tasks.summary(me.user_id, id).await?;
    let (tx, rx) = mpsc::channel::<Outgoing>(64);
    let follow = Follow {
        state,
        owner: me.user_id,
        id,
        encoding: params.encoding.unwrap_or_default(),
        tx,
    };
    tokio::spawn(follow.run(summary.status, live));
    let events = futures::stream::unfold((rx, 0u64), |(mut rx, n)| async move {
        let (name, data) = rx.recv().await?;
        let event = Event::default()
            .id(n.to_string())
            .event(name.as_str())
            .data(data.to_string());
        Some((Ok(event), (rx, n + 1)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

struct Follow {
    state: AppState,
    owner: UserId,
    id: TaskId,
    encoding: OutputEncoding,
    tx: mpsc::Sender<Outgoing>,
}

/// Open streams, for the metric: one per stream while it follows its task.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!("codebox_event_streams").increment(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("codebox_event_streams").decrement(1.0);
    }
}

impl Follow {
    /// Follows the task until it ends (then `done`), the stream's time is up, or the
    /// client is gone — whichever comes first.
    async fn run(self, mut status: TaskStatus, mut live: BoxStream<'static, TaskEvent>) {
        let _open = Open::new();
        let deadline = tokio::time::sleep(self.state.events_max);
        tokio::pin!(deadline);
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut shown = HashSet::new();
        let mut text = [Utf8Chunks::default(), Utf8Chunks::default()];
        if !self
            .send(TaskEventName::Status, json(&StatusEvent { status }))
            .await
        {
            return;
        }
        while !status.is_finished() {
            let changed = tokio::select! {
                _ = self.tx.closed() => return,
                _ = &mut deadline => return,
                event = live.next() => match event {
                    Some(TaskEvent::Status { status: s }) => Some(s),
                    Some(TaskEvent::Stdout { data }) => {
                        for data in text[0].push(data.as_bytes()) {
                            if !self.send(TaskEventName::Stdout, data).await { return; }
                        }
                        None
                    }
                    Some(TaskEvent::Stderr { data }) => {
                        for data in text[1].push(data.as_bytes()) {
                            if !self.send(TaskEventName::Stderr, data).await { return; }
                        }
                        None
                    }
                    Some(TaskEvent::Test { test }) => {
                        if shown.insert(test.index) {
                            let view = crate::dto::test_view(&test, self.encoding);
                            if !self.send(TaskEventName::Test, json(&view)).await { return; }
                        }
                        None
                    }
                    None => {
                        // The bus let go of this listener: the summary alone tells the end.
                        live = Box::pin(futures::stream::pending());
                        None
                    }
                },
                _ = poll.tick() => match self.state.tasks.summary(self.owner, self.id).await {
                    Ok(summary) => Some(summary.status),
                    Err(e) => {
                        self.fail(e).await;
                        return;
                    }
                },
            };
            if let Some(s) = changed
                && s != status
            {
                status = s;
                if !self
                    .send(TaskEventName::Status, json(&StatusEvent { status }))
                    .await
                {
                    return;
                }
            }
        }
        for (name, chunks) in [TaskEventName::Stdout, TaskEventName::Stderr]
            .into_iter()
            .zip(text.iter_mut())
        {
            if let Some(data) = chunks.finish()
                && !self.send(name, data).await
            {
                return;
            }
        }
        self.finish(&shown).await;
    }

    /// The tests the bus did not carry, then `done` with the task as `GET /task/{id}`
    /// shows it.
    async fn finish(&self, shown: &HashSet<u32>) {
        let task = match self.state.tasks.get(self.owner, self.id).await {
            Ok(task) => task,
            Err(e) => return self.fail(e).await,
        };
        let view: TaskView = match super::get_task::view(&self.state, &task, self.encoding).await {
            Ok(view) => view,
            Err(e) => return self.fail_api(e).await,
        };
        if let Some(crate::dto::ResultView::Code(code)) = &view.result {
            for test in code.tests.iter().flatten() {
                if !shown.contains(&test.index) && !self.send(TaskEventName::Test, json(test)).await
                {
                    return;
                }
            }
        }
        self.send(TaskEventName::Done, json(&view)).await;
    }

    async fn fail(&self, e: codebox_core::Error) {
        self.fail_api(crate::problem::ApiError::from(e)).await;
    }

    async fn fail_api(&self, e: crate::problem::ApiError) {
        self.send(TaskEventName::Error, json(&e.problem())).await;
    }

    /// False when the client is gone.
    async fn send(&self, name: TaskEventName, data: serde_json::Value) -> bool {
        self.tx.send((name, data)).await.is_ok()
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Output chunks as event data: UTF-8 text as it is (a character split between two
/// chunks waits for its end), other bytes in base64.
#[derive(Default)]
struct Utf8Chunks {
    /// The start of a character whose end has not come yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8Chunks {
    fn push(&mut self, bytes: &[u8]) -> Vec<serde_json::Value> {
        let mut all = std::mem::take(&mut self.pending);
        all.extend_from_slice(bytes);
        match std::str::from_utf8(&all) {
            Ok("") => vec![],
            Ok(text) => vec![json(&OutputChunk::text(text))],
            Err(e) if e.error_len().is_none() => {
                let (text, rest) = all.split_at(e.valid_up_to());
                self.pending = rest.to_vec();
                match std::str::from_utf8(text) {
                    Ok("") | Err(_) => vec![],
                    Ok(text) => vec![json(&OutputChunk::text(text))],
                }
            }
            Err(_) => vec![base64_data(&all)],
        }
    }

    /// What is left when the output has ended.
    fn finish(&mut self) -> Option<serde_json::Value> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then(|| base64_data(&rest))
    }
}

fn base64_data(bytes: &[u8]) -> serde_json::Value {
    json(&OutputChunk::base64(
        base64::engine::general_purpose::STANDARD.encode(bytes),
    ))
}

/// The events route; the function that serves `GET /task/{id}` serves it too.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/task/{id}/events", get(task_events))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_character_split_between_chunks_arrives_whole() {
        let mut chunks = Utf8Chunks::default();
        let bytes = "h€llo".as_bytes();
        assert_eq!(
            chunks.push(&bytes[..2]),
            vec![serde_json::json!({"data": "h"})]
        );
        assert_eq!(chunks.push(&bytes[2..3]), Vec::<serde_json::Value>::new());
        assert_eq!(
            chunks.push(&bytes[3..]),
            vec![serde_json::json!({"data": "€llo"})]
        );
        assert_eq!(chunks.finish(), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_come_in_base64() {
        let mut chunks = Utf8Chunks::default();
        assert_eq!(
            chunks.push(&[0xff, b'a']),
            vec![serde_json::json!({"data": "/2E=", "encoding": "base64"})]
        );
        // A character cut short by the end of the output.
        assert_eq!(
            chunks.push(&[b'a', 0xe2, 0x82]),
            vec![serde_json::json!({"data": "a"})]
        );
        assert_eq!(
            chunks.finish(),
            Some(serde_json::json!({"data": "4oI=", "encoding": "base64"}))
        );
    }
}
