//! The per-request span and metrics, and `GET /metrics`.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::Instrument;

pub use codebox_core::telemetry::{init_tracing, metrics_handle};

/// `GET /metrics` in the Prometheus text format.
pub fn router() -> Router {
    metrics_handle();
    Router::new().route("/metrics", get(render))
}

async fn render() -> Response {
    let mut res = metrics_handle().render().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// One span per request, and request count and latency by route, method and status.
pub async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let span = tracing::info_span!("request", %method, %route, status = tracing::field::Empty);
    let started = Instant::now();
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    span.record("status", status);
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("codebox_http_requests_total",
        "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
    .increment(1);
    codebox_core::telemetry::emf(
        &[("Route", &route)],
        &[
            ("Requests", 1.0, "Count"),
            ("ServerErrors", f64::from(u8::from(status >= 500)), "Count"),
            ("Latency", elapsed * 1000.0, "Milliseconds"),
        ],
    );
    metrics::histogram!("codebox_http_request_duration_seconds",
        "route" => route, "method" => method)
    .record(elapsed);
    res
}
