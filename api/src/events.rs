//! A task's live events (`GET /task/{id}/events`): their names and data, and a parser of
//! the Server-Sent Events stream that carries them (the `text/event-stream` format of the
//! WHATWG HTML standard), fed with the chunks of a response body as they come.

use serde::{Deserialize, Serialize};

use crate::status::{OutputEncoding, TaskStatus};

/// What an event of a task's stream is: its SSE `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskEventName {
    /// [`StatusEvent`], now and on each change.
    Status,
    /// [`OutputChunk`] of stdout as the program writes it.
    Stdout,
    /// [`OutputChunk`] of stderr.
    Stderr,
    /// One test's outcome as it ends (a `TestView`).
    Test,
    /// The task as `GET /task/{id}` shows it (a `TaskView`); the stream closes.
    Done,
    /// A problem object: the task can no longer be read; the stream closes.
    Error,
}

impl TaskEventName {
    const ALL: [Self; 6] = [
        Self::Status,
        Self::Stdout,
        Self::Stderr,
        Self::Test,
        Self::Done,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Test => "test",
            Self::Done => "done",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

/// The data of a `status` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub status: TaskStatus,
}

/// The data of a `stdout` or `stderr` event: UTF-8 text as it is, other bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    pub data: String,
    /// `base64` when `data` is the bytes in base64; absent for text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<OutputEncoding>,
    /// The run this output comes from, from 1: a run the platform retried (its sandbox
    /// was lost) starts its output again with the next number.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

impl OutputChunk {
    pub fn text(data: &str) -> Self {
        Self {
            data: data.to_owned(),
            encoding: None,
            attempt: 1,
        }
    }

    /// This chunk, as output of run `attempt`.
    pub fn of_attempt(self, attempt: u32) -> Self {
        Self { attempt, ..self }
    }

    pub fn base64(data: String) -> Self {
        Self {
            data,
            encoding: Some(OutputEncoding::Base64),
            attempt: 1,
        }
    }

    pub fn is_base64(&self) -> bool {
        self.encoding == Some(OutputEncoding::Base64)
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:`; `message` when the event names none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen so far on the stream.
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not ended yet (a chunk may end anywhere, even inside a character).
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` first in this one belongs to it.
    after_cr: bool,
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events completed by `chunk`.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_ended(&line) {
                        events.push(event);
                    }
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    fn line_ended(&mut self, line: &[u8]) -> Option<Event> {
        let text = String::from_utf8_lossy(line);
        let mut text: &str = &text;
        if !self.started {
            self.started = true;
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.is_empty() {
            return self.dispatch();
        }
        if text.starts_with(':') {
            return None; // a comment (keep-alive)
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STREAM: &str = "id: 1\nevent: status\ndata: {\"status\":\"running\"}\n\n\
                          : keep-alive\n\n\
                          id: 2\nevent: stdout\ndata: {\"data\":\"h\u{e9}llo\\n\"}\n\n\
                          id: 3\nevent: done\ndata: {\"a\":1,\ndata: \"b\":2}\n\n";

    fn expected() -> Vec<Event> {
        let ev = |id: &str, event: &str, data: &str| Event {
            event: event.into(),
            data: data.into(),
            id: Some(id.into()),
        };
        vec![
            ev("1", "status", "{\"status\":\"running\"}"),
            ev("2", "stdout", "{\"data\":\"h\u{e9}llo\\n\"}"),
            ev("3", "done", "{\"a\":1,\n\"b\":2}"),
        ]
    }

    #[test]
    fn parses_a_whole_stream() {
        assert_eq!(Parser::new().push(STREAM.as_bytes()), expected());
    }

    /// Chunks end anywhere: inside a line, a field name, a UTF-8 character, a CRLF.
    #[test]
    fn any_split_gives_the_same_events() {
        for stream in [
            STREAM.to_owned(),
            STREAM.replace('\n', "\r\n"),
            STREAM.replace('\n', "\r"),
        ] {
            let bytes = stream.as_bytes();
            for cut in 0..=bytes.len() {
                let mut p = Parser::new();
                let mut got = p.push(&bytes[..cut]);
                got.extend(p.push(&bytes[cut..]));
                assert_eq!(got, expected(), "cut at {cut} of {stream:?}");
            }
            let mut p = Parser::new();
            let got: Vec<Event> = bytes.iter().flat_map(|b| p.push(&[*b])).collect();
            assert_eq!(got, expected(), "byte by byte");
        }
    }

    #[test]
    fn fields_follow_the_standard() {
        let mut p = Parser::new();
        // BOM, no space after the colon, a field without colon, an event without data,
        // and an unfinished event at the end.
        let got = p.push(b"\xEF\xBB\xBFdata:x\ndata\n\nevent: lonely\n\nretry: 5\ndata: late");
        assert_eq!(
            got,
            vec![Event {
                event: "message".into(),
                data: "x\n".into(),
                id: None
            }]
        );
        assert_eq!(p.push(b"\n").len(), 0);
        let got = p.push(b"\n");
        assert_eq!(got[0].data, "late");
        assert_eq!(got[0].event, "message", "the unused event name was dropped");
    }

    /// Every event name is the serde name, both ways.
    #[test]
    fn event_names_are_written_as_serde_writes_them() {
        for name in TaskEventName::ALL {
            assert_eq!(
                serde_json::to_value(name).unwrap(),
                serde_json::json!(name.as_str())
            );
            assert_eq!(TaskEventName::parse(name.as_str()), Some(name));
        }
        let chunk = serde_json::to_value(OutputChunk::text("hi")).unwrap();
        assert_eq!(chunk, serde_json::json!({"data": "hi", "attempt": 1}));
        let chunk = serde_json::to_value(OutputChunk::base64("/2E=".into()).of_attempt(2)).unwrap();
        assert_eq!(
            chunk,
            serde_json::json!({"data": "/2E=", "encoding": "base64", "attempt": 2})
        );
        let old: OutputChunk = serde_json::from_value(serde_json::json!({"data": "x"})).unwrap();
        assert_eq!(old.attempt, 1, "a chunk without a run is the first run's");
    }
}
