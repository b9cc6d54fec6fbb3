//! Where a waiting submit's time goes, read from the task's own timestamps: the stack
//! runs on this host, so its clock is the client's. Four segments of one
//! `POST /task?wait=true`:
//! - `request`: sent → `created_at` (HTTP, the session, the limits, the body checked);
//! - `to the run`: `created_at` → `started_at` (stored, published, delivered, taken by a
//!   worker, its start call);
//! - `run`: `started_at` → `finished_at` (the sandbox's work, as `duration_ms` counts it),
//!   and within it `program`, the program's own wall time (the result's `time_ms`, from
//!   its start to its end as the agent saw them);
//! - `to the answer`: `finished_at` → answered (the end stored, the waiter woken, the body
//!   read and sent).
//!
//! The stack's timestamps are whole milliseconds: one sample's segment is off by up to
//! 1 ms, a mean over many is not (the first and last segment lean by half a millisecond,
//! in opposite directions).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const SEGMENTS: [&str; 5] = [
    "request",
    "to the run",
    "run",
    "  of which the program",
    "to the answer",
];

/// The segments of each sample, in ms.
#[derive(Default)]
pub struct Timeline(Vec<[f64; 5]>);

impl Timeline {
    /// One waiting submit sent at `sent`, answered at `answered` with `task` (the
    /// `GET /task/{id}` body); a task without its timestamps or its `time_ms` is left out.
    pub fn add(&mut self, sent: DateTime<Utc>, answered: DateTime<Utc>, task: &Value) {
        let at = |key: &str| {
            task[key]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (Some(created), Some(started), Some(finished), Some(program)) = (
            at("created_at"),
            at("started_at"),
            at("finished_at"),
            task["result"]["time_ms"].as_f64(),
        ) else {
            return;
        };
        let ms = |from: DateTime<Utc>, to: DateTime<Utc>| {
            (to - from).num_microseconds().unwrap_or_default() as f64 / 1000.0
        };
        self.0.push([
            ms(sent, created),
            ms(created, started),
            ms(started, finished),
            program,
            ms(finished, answered),
        ]);
    }

    /// The mean of each segment, in order, and how many samples they are of.
    pub fn summary(&self) -> Value {
        let n = self.0.len();
        let segments: Vec<Value> = SEGMENTS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mean = self.0.iter().map(|s| s[i]).sum::<f64>() / n.max(1) as f64;
                json!({"segment": name, "mean_ms": super::round(mean)})
            })
            .collect();
        json!({"n": n, "segments": segments})
    }
}

pub fn print(title: &str, timeline: &Value) {
    let Some(segments) = timeline["segments"].as_array() else {
        return;
    };
    println!("{title}");
    for s in segments {
        println!(
            "  {:<40} {:>8.2} ms",
            s["segment"].as_str().unwrap_or_default(),
            s["mean_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
}
