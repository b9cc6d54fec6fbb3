//! The hello of every language the target lists (`GET /languages`, the language table), each
//! timed as the python hello is: `wait=true`, one task at a time after a warm-up, every
//! answer a successful run printing `hello`. The programs are the end-to-end matrix's
//! (`codebox_tests::programs`); a language that fails (or has no program) is reported as
//! failed with the reason, not as a figure.

use std::time::Instant;

use codebox_tests::Client;
use codebox_tests::programs::{multi_file, programs};
use serde_json::{Map, Value, json};

use crate::{Answer, HELLO, latency};

/// The most `--per-language-samples` takes: the part stays within minutes.
pub const MAX_SAMPLES: usize = 20;

/// `POST /task` of `language`'s hello, as the matrix submits it (default limits).
fn body(language: &str) -> Option<Value> {
    let hello = programs(language)?.hello;
    let mut body = json!({"language": language, "code": hello});
    if language == "multifile" {
        multi_file(&mut body, hello);
    }
    Some(body)
}

/// Each listed language's hello `samples` times: `{language: summary}`, where a failed
/// language's summary is `{"failed": why}` (keyed, and so printed, by id).
pub async fn hellos(c: &Client, samples: usize) -> anyhow::Result<Value> {
    let listed = c.get_json("/languages").await?;
    let ids: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["id"].as_str().map(str::to_owned))
        .collect();
    if ids.is_empty() {
        anyhow::bail!("GET /languages listed no language: {listed}");
    }
    eprintln!(
        "bench: hello of each of {} languages x{samples}, answered by wait=true",
        ids.len()
    );
    let started = Instant::now();
    let mut out = Map::new();
    for id in ids {
        let entry = match body(&id) {
            None => json!({"failed": "no hello program in tests/src/programs.rs"}),
            Some(body) => match latency(c, &body, samples, Answer::Waiting, HELLO).await {
                Ok(measured) => measured.e2e,
                Err(e) => json!({"failed": format!("{e:#}")}),
            },
        };
        match entry["failed"].as_str() {
            Some(why) => eprintln!("bench:   {id}: failed: {why}"),
            None => eprintln!("bench:   {id}: p50 {} ms", entry["p50_ms"]),
        }
        out.insert(id, entry);
    }
    let secs = started.elapsed().as_secs();
    eprintln!("bench: the languages' hellos took {secs} s");
    Ok(Value::Object(out))
}

/// One line per language: its p50, p95 and p99, or why it failed.
pub fn print(per_language: &Value) {
    let Some(all) = per_language.as_object().filter(|all| !all.is_empty()) else {
        return; // skipped (`--per-language-samples 0`)
    };
    let failed = all.values().filter(|s| s.get("failed").is_some()).count();
    println!(
        "hello per language, wait=true ({} languages, {failed} failed):",
        all.len()
    );
    for (id, s) in all {
        let name = format!("  {id}");
        match s["failed"].as_str() {
            Some(why) => {
                let why: String = why.chars().take(120).collect();
                println!("{name:<34} FAILED: {why}");
            }
            None => super::print_row(&name, s),
        }
    }
}
