//! Where the time goes: the stack's own histograms — the worker's stages
//! (`codebox_stage_seconds`, see `worker/src/stages.rs`), the queue wait and the API's
//! routes — read from `GET /metrics` before and after a measured section, as the mean
//! milliseconds of each and how often it happened per task.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Sum (seconds) and count of each histogram series, keyed `stage agent`, `queue`,
/// `api POST /task`.
#[derive(Default)]
pub struct Snapshot(BTreeMap<String, (f64, f64)>);

pub async fn snapshot(http: &reqwest::Client, base: &str) -> anyhow::Result<Snapshot> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Snapshot {
    let mut series = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name_labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match name_labels.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
            None => (name_labels, ""),
        };
        let (base, is_sum) = if let Some(b) = name.strip_suffix("_sum") {
            (b, true)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, false)
        } else {
            continue;
        };
        let label = |key: &str| {
            labels
                .split("\",")
                .filter_map(|kv| kv.split_once("=\""))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let key = match base {
            "codebox_stage_seconds" => format!("stage {}", label("stage")),
            "codebox_queue_wait_seconds" => "queue".to_owned(),
            "codebox_http_request_duration_seconds" => {
                format!("api {} {}", label("method"), label("route"))
            }
            _ => continue,
        };
        let entry = series.entry(key).or_insert((0.0, 0.0));
        if is_sum {
            entry.0 += value;
        } else {
            entry.1 += value;
        }
    }
    Snapshot(series)
}

/// What happened between two snapshots over `tasks` tasks: per series, the mean ms of
/// one occurrence and the occurrences per task.
pub fn between(before: &Snapshot, after: &Snapshot, tasks: usize) -> Value {
    let mut out = serde_json::Map::new();
    for (key, (sum, count)) in &after.0 {
        let (sum0, count0) = before.0.get(key).copied().unwrap_or((0.0, 0.0));
        let n = count - count0;
        if n <= 0.0 {
            continue;
        }
        out.insert(
            key.clone(),
            json!({
                "mean_ms": super::round((sum - sum0) * 1000.0 / n),
                "per_task": super::round(n / tasks.max(1) as f64),
            }),
        );
    }
    Value::Object(out)
}

/// Prints the split: the worker's stages in their order, then the queue and the API.
pub fn print(title: &str, split: &Value) {
    println!("{title}");
    let Some(map) = split.as_object() else {
        return;
    };
    let order = [
        "queue", "lease", "slot", "take", "agent", "program", "commit", "bundle", "create",
        "dispose",
    ];
    let mut keys: Vec<&String> = Vec::new();
    for name in order {
        keys.extend(
            map.keys()
                .filter(|k| k.as_str() == name || k.strip_prefix("stage ") == Some(name)),
        );
    }
    keys.extend(map.keys().filter(|k| k.starts_with("api ")));
    for key in keys {
        let v = &map[key.as_str()];
        println!(
            "  {key:<40} {:>8.2} ms x {:>5.2} per task",
            v["mean_ms"].as_f64().unwrap_or(f64::NAN),
            v["per_task"].as_f64().unwrap_or(f64::NAN)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sums_and_counts_of_the_series_it_knows() {
        let before = parse(
            "# TYPE codebox_stage_seconds histogram\n\
             codebox_stage_seconds_bucket{stage=\"agent\",le=\"0.005\"} 1\n\
             codebox_stage_seconds_sum{stage=\"agent\"} 0.002\n\
             codebox_stage_seconds_count{stage=\"agent\"} 1\n",
        );
        let after = parse(
            "codebox_stage_seconds_sum{stage=\"agent\"} 0.012\n\
             codebox_stage_seconds_count{stage=\"agent\"} 3\n\
             codebox_queue_wait_seconds_sum 0.004\n\
             codebox_queue_wait_seconds_count 2\n\
             codebox_http_request_duration_seconds_sum{method=\"GET\",route=\"/status/{id}\"} 0.01\n\
             codebox_http_request_duration_seconds_count{method=\"GET\",route=\"/status/{id}\"} 10\n\
             codebox_tasks_total{language=\"python\"} 3\n",
        );
        let split = between(&before, &after, 2);
        assert_eq!(split["stage agent"]["mean_ms"], 5.0);
        assert_eq!(split["stage agent"]["per_task"], 1.0);
        assert_eq!(split["queue"]["mean_ms"], 2.0);
        assert_eq!(split["api GET /status/{id}"]["mean_ms"], 1.0);
        assert_eq!(split["api GET /status/{id}"]["per_task"], 5.0);
        assert_eq!(split.as_object().map(|m| m.len()), Some(3));
    }
}
