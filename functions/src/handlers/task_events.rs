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
//!
//! The bus keeps a running task's log: a client who comes late hears the output and tests
//! so far first, and one who comes back with `Last-Event-ID` (each event from the log
//! carries its number as its id) hears only what followed. Output and tests carry the run
//! they come from (`attempt`): a run the platform retried starts its output again.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use base64::Engine;
use codebox_api::events::{OutputChunk, StatusEvent, TaskEventName};
use codebox_core::domain::{TaskEvent, TaskId, TaskStatus, UserId};
use codebox_core::ports::{Logged, Subscription};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::dto::{OutputEncoding, ResultParams, TaskView};
use crate::extract::{AuthUser, Path, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// How often a followed task's summary is read for a status change the bus did not carry.
const POLL: Duration = Duration::from_secs(1);
/// How long the end read from the store waits for the bus's last output.
const DRAIN: Duration = Duration::from_secs(1);
/// Comment lines that keep an idle stream open through proxies.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event as it is sent: the name, its JSON data, and its number in the task's log
/// (events not from the log — a status read, the tests and `done` at the end — have none).
type Outgoing = (TaskEventName, serde_json::Value, Option<u64>);

/// One event of the stream as Server-Sent Events carry it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TaskEventFrame {
    /// The event's number in the task's log (output, tests and status changes as they
    /// happened), for `Last-Event-ID`; absent on events not from the log.
    pub id: Option<String>,
    pub event: TaskEventName,
    /// One JSON document: `{"status"}`, `{"data"[, "encoding"]}`, a test, the task, or a
    /// problem.
    pub data: String,
}

#[utoipa::path(get, path = "/task/{id}/events", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), ResultParams,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{0,19}$", description = "The `id` of the last event a broken stream delivered: the new stream skips the output and tests up to it")),
    responses(
        (status = 200, description = "`text/event-stream`. Each event has one JSON `data` line, and \
those from the task's log an `id` (their number in it). `status`: `{\"status\"}` now and on each change. \
`stdout` / `stderr`: `{\"data\", \"attempt\"}`, output as the program writes it (`\"encoding\": \"base64\"` \
for bytes that are not UTF-8), within the task's output limits; from the task's start for a client \
who comes while it runs (after `Last-Event-ID` when sent); `attempt` is the run it comes from, from 1 \
(a run the platform retried starts its output again); not on AWS, whose functions share no channel, \
nor for judged tasks, whose output is in their tests. `test`: one element of the result's `tests` \
as that test ends, with its run's `attempt`. `done`: the `GET /task/{id}` body; then the stream closes. `error`: a problem \
object when the task can no longer be read; then the stream closes. A stream that reaches its \
longest time (`EVENTS_MAX_SECS`) closes without `done`.", content_type = "text/event-stream", body = TaskEventFrame),
        (status = 400, description = "`Last-Event-ID` is not an event id of this stream (a number)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The task is past its retention", body = Problem, content_type = "application/problem+json")))]
pub async fn task_events(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
    Query(params): Query<ResultParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = last_event_id(&headers)?;
    // The caller's task first (its log is read for its owner alone); what happens before
    // the subscription is in the task's log, what happens after it is heard live.
    let summary = state.tasks.summary(me.user_id, id).await?;
    let subscription = state.tasks.events().subscribe(id).await?;
    let (tx, rx) = mpsc::channel::<Outgoing>(64);
    let follow = Follow {
        state,
        owner: me.user_id,
        id,
        encoding: params.encoding.unwrap_or_default(),
        tx,
    };
    tokio::spawn(follow.run(summary.status, subscription, resume));
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let (name, data, seq) = rx.recv().await?;
        let mut event = Event::default().event(name.as_str()).data(data.to_string());
        if let Some(seq) = seq {
            event = event.id(seq.to_string());
        }
        Some((Ok(event), rx))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The number of the last event a client had, from `Last-Event-ID` (0: none).
fn last_event_id(headers: &HeaderMap) -> Result<u64, crate::problem::ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    if text.is_empty() {
        return Ok(0);
    }
    let digits = text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten().ok_or_else(|| {
        crate::problem::ApiError::bad_request(format!(
            "Last-Event-ID {text:?} is not an event id of this stream (up to 19 digits)"
        ))
    })
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
    /// client is gone — whichever comes first. The log comes first (the client's part of
    /// it, up to `resume`, only counted), then live events.
    async fn run(self, mut status: TaskStatus, subscription: Subscription, resume: u64) {
        let _open = Open::new();
        let deadline = tokio::time::sleep(self.state.events_max);
        tokio::pin!(deadline);
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut seen = Seen::default();
        if !self
            .send(TaskEventName::Status, json(&StatusEvent { status }), None)
            .await
        {
            return;
        }
        let Subscription { past, mut live } = subscription;
        // Whether the bus has told this stream of the task's end, and has told it anything.
        let mut end_heard = false;
        let mut heard = !past.is_empty() || !status.is_finished();
        for logged in past {
            // The log's statuses are older than the one just read.
            if let TaskEvent::Status { status: s } = logged.event {
                end_heard |= s.is_finished();
            } else if !self.relay(&mut seen, logged, resume).await {
                return;
            }
        }
        if end_heard && !status.is_finished() {
            // It ended between the read and the subscription: read it again now.
            poll.reset_immediately();
        }
        while !status.is_finished() {
            // Live events first: output already here is relayed before a poll can end it.
            let changed = tokio::select! {
                biased;
                _ = self.tx.closed() => return,
                _ = &mut deadline => return,
                event = live.next() => match event {
                    Some(Logged { event: TaskEvent::Status { status: s }, seq }) => {
                        end_heard |= s.is_finished();
                        Some((s, seq))
                    }
                    Some(logged) => {
                        heard = true;
                        if !self.relay(&mut seen, logged, resume).await {
                            return;
                        }
                        None
                    }
                    // The bus let go of this listener (it fell behind, or lost its
                    // connection): the stream ends, and the client asks again after its
                    // last event, from the log.
                    None => return,
                },
                _ = poll.tick() => match self.state.tasks.summary(self.owner, self.id).await {
                    Ok(summary) => Some((summary.status, None)),
                    Err(e) => {
                        self.fail(e).await;
                        return;
                    }
                },
            };
            if let Some((s, seq)) = changed
                && s != status
            {
                status = s;
                if !self
                    .send(TaskEventName::Status, json(&StatusEvent { status }), seq)
                    .await
                {
                    return;
                }
            }
        }
        // The store can tell the end before the bus has carried the last output (they are
        // two paths): the bus is heard up to its own word of the end, for a moment.
        if heard && !end_heard && self.state.tasks.events().carries() {
            let drain = tokio::time::sleep(DRAIN);
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    biased;
                    event = live.next() => match event {
                        Some(Logged { event: TaskEvent::Status { status: s }, .. }) => {
                            if s.is_finished() {
                                break;
                            }
                        }
                        Some(logged) => {
                            if !self.relay(&mut seen, logged, resume).await {
                                return;
                            }
                        }
                        None => break,
                    },
                    _ = &mut drain => break,
                }
            }
        }
        let attempt = seen.attempt;
        for (name, chunks) in [TaskEventName::Stdout, TaskEventName::Stderr]
            .into_iter()
            .zip(seen.text.iter_mut())
        {
            if let Some(data) = chunks.finish()
                && !self.send(name, json(&data.of_attempt(attempt)), None).await
            {
                return;
            }
        }
        self.finish(&seen).await;
    }

    /// Output, a test or the start of a run, from the log: sent unless the client had it
    /// (numbered up to `resume`), and counted either way. False when the client is gone.
    async fn relay(&self, seen: &mut Seen, logged: Logged, resume: u64) -> bool {
        let had = logged.seq.is_some_and(|seq| seq <= resume);
        let (name, index) = match logged.event {
            TaskEvent::Attempt { attempt } => {
                if attempt > seen.attempt {
                    // A run the platform retried: its output starts again.
                    *seen = Seen {
                        attempt,
                        ..Seen::default()
                    };
                }
                // A run given up on that still reports (its lease lapsed) is not shown.
                seen.stale = attempt < seen.attempt;
                return true;
            }
            TaskEvent::Status { .. } => return true,
            _ if seen.stale => return true,
            TaskEvent::Stdout { data } => (TaskEventName::Stdout, data),
            TaskEvent::Stderr { data } => (TaskEventName::Stderr, data),
            TaskEvent::Test { test } => {
                if seen.tests.insert(test.index) && !had {
                    let view = crate::dto::test_view(&test, self.encoding);
                    return self
                        .send(
                            TaskEventName::Test,
                            with_attempt(json(&view), seen.attempt),
                            logged.seq,
                        )
                        .await;
                }
                return true;
            }
        };
        let stream = usize::from(name == TaskEventName::Stderr);
        for chunk in seen.text[stream].push(index.as_bytes()) {
            if !had
                && !self
                    .send(name, json(&chunk.of_attempt(seen.attempt)), logged.seq)
                    .await
            {
                return false;
            }
        }
        true
    }

    /// The tests the bus did not carry, then `done` with the task as `GET /task/{id}`
    /// shows it.
    async fn finish(&self, seen: &Seen) {
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
                if !seen.tests.contains(&test.index)
                    && !self
                        .send(
                            TaskEventName::Test,
                            with_attempt(json(test), seen.attempt),
                            None,
                        )
                        .await
                {
                    return;
                }
            }
        }
        self.send(TaskEventName::Done, json(&view), None).await;
    }

    async fn fail(&self, e: codebox_core::Error) {
        self.fail_api(crate::problem::ApiError::from(e)).await;
    }

    async fn fail_api(&self, e: crate::problem::ApiError) {
        self.send(TaskEventName::Error, json(&e.problem()), None)
            .await;
    }

    /// False when the client is gone.
    async fn send(&self, name: TaskEventName, data: serde_json::Value, seq: Option<u64>) -> bool {
        self.tx.send((name, data, seq)).await.is_ok()
    }
}

/// What the stream has told of the current run (the client's part of the log counted).
struct Seen {
    attempt: u32,
    /// The events now relayed come from an earlier run than `attempt`.
    stale: bool,
    /// Stdout and stderr.
    text: [Utf8Chunks; 2],
    tests: HashSet<u32>,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            attempt: 1,
            stale: false,
            text: Default::default(),
            tests: HashSet::new(),
        }
    }
}

/// A test's view with the run it comes from.
fn with_attempt(mut view: serde_json::Value, attempt: u32) -> serde_json::Value {
    if let serde_json::Value::Object(fields) = &mut view {
        fields.insert("attempt".into(), attempt.into());
    }
    view
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
    fn push(&mut self, bytes: &[u8]) -> Vec<OutputChunk> {
        let mut all = std::mem::take(&mut self.pending);
        all.extend_from_slice(bytes);
        match std::str::from_utf8(&all) {
            Ok("") => vec![],
            Ok(text) => vec![OutputChunk::text(text)],
            Err(e) if e.error_len().is_none() => {
                let (text, rest) = all.split_at(e.valid_up_to());
                self.pending = rest.to_vec();
                match std::str::from_utf8(text) {
                    Ok("") | Err(_) => vec![],
                    Ok(text) => vec![OutputChunk::text(text)],
                }
            }
            Err(_) => vec![base64_chunk(&all)],
        }
    }

    /// What is left when the output has ended.
    fn finish(&mut self) -> Option<OutputChunk> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then(|| base64_chunk(&rest))
    }
}

fn base64_chunk(bytes: &[u8]) -> OutputChunk {
    OutputChunk::base64(base64::engine::general_purpose::STANDARD.encode(bytes))
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

    fn json_of(chunks: Vec<OutputChunk>) -> Vec<serde_json::Value> {
        chunks.iter().map(json).collect()
    }

    #[test]
    fn a_character_split_between_chunks_arrives_whole() {
        let mut chunks = Utf8Chunks::default();
        let bytes = "h€llo".as_bytes();
        assert_eq!(
            json_of(chunks.push(&bytes[..2])),
            vec![serde_json::json!({"data": "h", "attempt": 1})]
        );
        assert_eq!(
            json_of(chunks.push(&bytes[2..3])),
            Vec::<serde_json::Value>::new()
        );
        assert_eq!(
            json_of(chunks.push(&bytes[3..])),
            vec![serde_json::json!({"data": "€llo", "attempt": 1})]
        );
        assert_eq!(chunks.finish(), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_come_in_base64() {
        let mut chunks = Utf8Chunks::default();
        assert_eq!(
            json_of(chunks.push(&[0xff, b'a'])),
            vec![serde_json::json!({"data": "/2E=", "encoding": "base64", "attempt": 1})]
        );
        // A character cut short by the end of the output.
        assert_eq!(
            json_of(chunks.push(&[b'a', 0xe2, 0x82])),
            vec![serde_json::json!({"data": "a", "attempt": 1})]
        );
        assert_eq!(
            chunks.finish().map(|c| json(&c)),
            Some(serde_json::json!({"data": "4oI=", "encoding": "base64", "attempt": 1}))
        );
    }
}
