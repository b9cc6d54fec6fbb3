//! Tracing set-up and the process's Prometheus recorder, shared by every binary.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Latency buckets in seconds: fine below 10 ms where the API lives, coarse up to the
/// 20 s task limit for sandbox and end-to-end times.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0,
];

/// `LOG_FORMAT=json` for containers, pretty otherwise; `RUST_LOG` filters (default info).
/// `LOG_SPANS=1` also logs each span as it closes with its time busy and idle: with
/// `RUST_LOG=debug` a request's trace, each store, queue and bus call on its way timed
/// (spans named `store.*`, `queue.*`, `bus.*`, `sessions.*`, `limits.*`, and the worker's
/// calls of the API, `api.*`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let spans = std::env::var("LOG_SPANS").is_ok_and(|v| v == "1" || v == "true");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(if spans { FmtSpan::CLOSE } else { FmtSpan::NONE });
    // A second init (tests, embedded) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics may be empty");
        }
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .ok();
        handle
    })
}

/// CloudWatch's embedded metric format: with `METRICS_FORMAT=emf` (the AWS stack's
/// functions and workers), each call writes one JSON line on stdout that CloudWatch Logs
/// turns into metrics of the namespace `METRICS_NAMESPACE` (`codebox`; the stack sets
/// `codebox/<stack name>`, so two stacks in one account never mix) — nothing to scrape in
/// the cloud. Elsewhere it does nothing (Prometheus serves the same figures).
pub fn emf(dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)]) {
    static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();
    let namespace = NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_FORMAT")
            .is_ok_and(|v| v.eq_ignore_ascii_case("emf"))
            .then(|| {
                std::env::var("METRICS_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
            })
    });
    if let Some(namespace) = namespace {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        println!("{}", emf_document(namespace, now, dimensions, metrics));
    }
}

/// The CloudWatch namespace of [`emf`] when `METRICS_NAMESPACE` names none.
pub const DEFAULT_NAMESPACE: &str = "codebox";

/// One embedded-metric-format document: `metrics` (name, value, unit) under one set of
/// `dimensions` (name, value).
pub fn emf_document(
    namespace: &str,
    timestamp_ms: u64,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, &str)],
) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, _, unit)| serde_json::json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        },
    });
    if let Some(root) = doc.as_object_mut() {
        for (name, value) in dimensions {
            root.insert((*name).to_owned(), serde_json::json!(value));
        }
        for (name, value, _) in metrics {
            root.insert((*name).to_owned(), serde_json::json!(value));
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape CloudWatch's specification asks for: every dimension and metric named in
    /// `_aws` is a member of the root with its value.
    #[test]
    fn an_emf_document_names_each_value_it_carries() {
        let doc = emf_document(
            "codebox",
            1_700_000_000_000,
            &[("Route", "/task")],
            &[
                ("Requests", 1.0, "Count"),
                ("Latency", 12.5, "Milliseconds"),
            ],
        );
        assert_eq!(
            doc,
            serde_json::json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "codebox",
                    "Dimensions": [["Route"]],
                    "Metrics": [{"Name": "Requests", "Unit": "Count"},
                                {"Name": "Latency", "Unit": "Milliseconds"}]}]},
                "Route": "/task", "Requests": 1.0, "Latency": 12.5,
            })
        );
    }
}
