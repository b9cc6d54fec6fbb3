//! Following a task to its end: its live events (`GET /task/{id}/events`) when the
//! server streams them, polling `GET /task/{id}` otherwise, and Ctrl-C cancelling it.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Method, StatusCode};
use serde_json::Value;

use codebox_api::events::{self as sse, OutputChunk, StatusEvent, TaskEventName};
use codebox_api::{TaskStatus, TestView};

use crate::api::{Api, path_segment};
use crate::fail::{Fail, Result, code};
use crate::output::{self, Spinner};
use crate::testdir::TestCase;

/// A stream that says nothing for this long (not even a keep-alive) is given up for
/// polling.
const STREAM_IDLE: Duration = Duration::from_secs(90);
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);

pub struct Options {
    /// Print output and test verdicts as they come (not with `--json`).
    pub live: bool,
    /// Show the spinner while queued (when stderr is a terminal).
    pub spinner: bool,
    /// Poll for the exact bytes (`?encoding=base64`) rather than the default body.
    pub exact: bool,
    /// The test cases sent, for the test lines.
    pub cases: Vec<TestCase>,
}

/// What was already shown while the task ran.
#[derive(Debug, Default)]
pub struct Streamed {
    pub stdout: usize,
    pub stderr: usize,
    pub tests: BTreeSet<u32>,
    /// The stream ended with `done`: everything it had to say was said.
    pub complete: bool,
    /// The last byte written to the terminal, of either stream.
    pub last_byte: Option<u8>,
}

pub struct Outcome {
    /// The final `GET /task/{id}` body.
    pub body: Value,
    pub streamed: Streamed,
}

struct Live<'a> {
    options: &'a Options,
    spinner: Spinner,
    streamed: Streamed,
    /// The run the output shown comes from.
    attempt: u32,
    /// The id of the last event of the task's log that was shown.
    last_id: Option<String>,
}

/// Follows task `id` until it ends. Ctrl-C cancels the task and fails with
/// [`code::INTERRUPTED`].
pub async fn follow(api: &Api, id: &str, options: &Options) -> Result<Outcome> {
    let mut live = Live {
        options,
        spinner: Spinner::start("queued", options.spinner),
        streamed: Streamed::default(),
        attempt: 1,
        last_id: None,
    };
    let work = async {
        match events(api, id, &mut live).await? {
            Some(done) => Ok(done),
            None => poll(api, id, &mut live).await,
        }
    };
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let ended = tokio::select! {
        body = work => Some(body),
        () = interrupt => None,
    };
    live.spinner.stop();
    match ended {
        Some(body) => Ok(Outcome {
            body: body?,
            streamed: live.streamed,
        }),
        None => {
            let cancelled = tokio::time::timeout(Duration::from_secs(5), api.cancel(id)).await;
            let message = match cancelled {
                Ok(Ok(())) => format!("interrupted; task {id} cancelled"),
                _ => format!("interrupted; task {id} may still run (`codebox cancel {id}`)"),
            };
            Err(Fail::new(code::INTERRUPTED, message))
        }
    }
}

/// The header a stream opened again names the last event it had with.
const LAST_EVENT_ID: http::HeaderName = http::HeaderName::from_static("last-event-id");
/// Streams a broken stream is opened again for, from where it broke, before polling.
const RESUMES: u32 = 3;
/// The pause before a broken stream is opened again, doubled each time (0.25, 0.5, 1 s):
/// a server that keeps cutting streams is not called again at once.
const RESUME_PAUSE: Duration = Duration::from_millis(250);

/// What one stream came to.
enum Stream {
    /// `done`, with the task's body.
    Done(Value),
    /// Idle, broken or ended without `done`: it may be opened again.
    Broken,
    /// The server streams no events here.
    None,
}

/// The `done` body, or `None` when the server has no events or its streams kept ending
/// without one (a gateway that cannot stream): then polling takes over. A stream that
/// breaks is opened again with `Last-Event-ID`, so nothing is shown twice.
async fn events(api: &Api, id: &str, live: &mut Live<'_>) -> Result<Option<Value>> {
    for resume in 0..=RESUMES {
        if resume > 0 {
            tokio::time::sleep(RESUME_PAUSE * 2u32.pow(resume - 1)).await;
        }
        match stream(api, id, live).await? {
            Stream::Done(done) => return Ok(Some(done)),
            Stream::Broken => {}
            Stream::None => return Ok(None),
        }
    }
    Ok(None)
}

async fn stream(api: &Api, id: &str, live: &mut Live<'_>) -> Result<Stream> {
    let path = format!("/task/{}/events", path_segment(id));
    let mut request = api
        .request(Method::GET, &path, true)?
        .header(ACCEPT, "text/event-stream");
    if let Some(last) = &live.last_id {
        request = request.header(LAST_EVENT_ID, last);
    }
    // A network failure here is told by the polling that follows.
    let Ok(response) = api.send_unchecked(request).await else {
        return Ok(Stream::None);
    };
    if matches!(
        response.status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
    ) {
        return Ok(Stream::None);
    }
    let mut response = api.check(response, true).await?;
    let streams = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !streams {
        return Ok(Stream::None);
    }
    let mut parser = sse::Parser::new();
    loop {
        let chunk = match tokio::time::timeout(STREAM_IDLE, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            // Idle, broken or ended without `done`.
            _ => return Ok(Stream::Broken),
        };
        for event in parser.push(&chunk) {
            if event.id.is_some() {
                live.last_id.clone_from(&event.id);
            }
            if let Some(done) = live.event(&event)? {
                live.streamed.complete = true;
                return Ok(Stream::Done(done));
            }
        }
    }
}

impl Live<'_> {
    /// Output of run `attempt` comes: a run the platform retried starts its output again,
    /// and what the earlier run showed no longer counts.
    fn run(&mut self, attempt: u32) {
        if attempt <= self.attempt {
            return;
        }
        self.attempt = attempt;
        if self.streamed.stdout + self.streamed.stderr > 0 || !self.streamed.tests.is_empty() {
            if self.options.live {
                if self.streamed.last_byte.is_some_and(|b| b != b'\n') {
                    output::stderr(b"\n");
                }
                output::stderr(b"codebox: the run was retried; its output starts again\n");
                self.streamed.last_byte = Some(b'\n');
            }
            self.streamed = Streamed::default();
        }
    }

    fn event(&mut self, event: &sse::Event) -> Result<Option<Value>> {
        let Some(name) = TaskEventName::parse(&event.event) else {
            return Ok(None);
        };
        match name {
            TaskEventName::Status => {
                if serde_json::from_str::<StatusEvent>(&event.data)
                    .is_ok_and(|e| e.status != TaskStatus::Queued)
                {
                    self.spinner.stop();
                }
            }
            TaskEventName::Stdout | TaskEventName::Stderr => {
                self.spinner.stop();
                let Ok(chunk) = serde_json::from_str::<OutputChunk>(&event.data) else {
                    return Ok(None);
                };
                self.run(chunk.attempt);
                let bytes = decode(&chunk.data, chunk.is_base64());
                let stdout = name == TaskEventName::Stdout;
                if stdout {
                    self.streamed.stdout += bytes.len();
                } else {
                    self.streamed.stderr += bytes.len();
                }
                if self.options.live && !bytes.is_empty() {
                    if stdout {
                        output::stdout(&bytes)?;
                    } else {
                        output::stderr(&bytes);
                    }
                    self.streamed.last_byte = bytes.last().copied();
                }
            }
            TaskEventName::Test => {
                self.spinner.stop();
                if let Some(attempt) = serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .and_then(|v| v["attempt"].as_u64())
                {
                    self.run(u32::try_from(attempt).unwrap_or(u32::MAX));
                }
                if let Ok(test) = serde_json::from_str::<TestView>(&event.data) {
                    if self.options.live {
                        if self.streamed.last_byte.is_some_and(|b| b != b'\n') {
                            output::stderr(b"\n");
                        }
                        crate::report::test_line(&test, &self.options.cases);
                        self.streamed.last_byte = Some(b'\n');
                    }
                    self.streamed.tests.insert(test.index);
                }
            }
            TaskEventName::Done => {
                if let Ok(data @ Value::Object(_)) = serde_json::from_str::<Value>(&event.data) {
                    return Ok(Some(data));
                }
            }
            TaskEventName::Error => {}
        }
        Ok(None)
    }
}

/// Polls `GET /task/{id}` with a bounded backoff until the task has ended.
async fn poll(api: &Api, id: &str, live: &mut Live<'_>) -> Result<Value> {
    let path = format!(
        "/task/{}{}",
        path_segment(id),
        if live.options.exact {
            "?encoding=base64"
        } else {
            ""
        }
    );
    let mut pause = POLL_FIRST;
    loop {
        let body: Value = api.get_json(&path, true).await?;
        let status = body["status"].as_str().unwrap_or_default();
        if status != "queued" {
            live.spinner.stop();
        }
        if TaskStatus::is_finished_str(status) {
            return Ok(body);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// Output as the API wrote it: text, or base64 of the exact bytes.
pub fn decode(text: &str, base64: bool) -> Vec<u8> {
    if base64 && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
        return bytes;
    }
    text.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(name: &str, data: Value) -> sse::Event {
        sse::Event {
            event: name.to_owned(),
            data: data.to_string(),
            id: None,
        }
    }

    #[test]
    fn a_retried_runs_output_counts_from_its_start() {
        let options = Options {
            live: false,
            spinner: false,
            exact: false,
            cases: Vec::new(),
        };
        let mut live = Live {
            options: &options,
            spinner: Spinner::start("queued", false),
            streamed: Streamed::default(),
            attempt: 1,
            last_id: None,
        };
        let chunk = |data: &str, attempt: u32| {
            event(
                "stdout",
                serde_json::json!({"data": data, "attempt": attempt}),
            )
        };
        live.event(&chunk("first run\n", 1)).unwrap();
        assert_eq!(live.streamed.stdout, 10);
        live.event(&chunk("again\n", 2)).unwrap();
        assert_eq!(
            live.streamed.stdout, 6,
            "the first run's output no longer counts"
        );
        live.event(&chunk("more\n", 2)).unwrap();
        assert_eq!(live.streamed.stdout, 11);
    }
}
