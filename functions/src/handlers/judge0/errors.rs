//! Errors in Judge0's shapes: a submission it cannot take is 422 with its reasons by field
//! (`{"cpu_time_limit": ["must be less than or equal to 20"]}`, Rails' `errors`), any
//! other error `{"error": "…"}`, and a missing or bad credential a bare 401, as Judge0 1.13.1
//! answers. Every route under `/judge0/` goes through [`judge0_shapes`], which rewrites the
//! problem+json the rest of codebox answers with; the status and headers stay.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::problem::{CONTENT_TYPE, Problem};

/// A Judge0 error body: `error`, or (422) each field of the submission with its reasons
/// (`{"cpu_time_limit": ["must be less than or equal to 20"]}`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Judge0Error {
    /// What went wrong (every status but 422).
    pub error: Option<String>,
}

/// Where codebox's words for a submission's parts differ from Judge0's.
const CODEBOX_FIELDS: &[(&str, &str)] = &[
    ("code", "source_code"),
    ("language", "language_id"),
    ("limits.time_ms", "wall_time_limit"),
    ("limits.cpu_ms", "cpu_time_limit"),
    ("limits.memory_mb", "memory_limit"),
    ("limits.stack_mb", "stack_limit"),
    ("limits.output_kb", "max_file_size"),
    ("args", "command_line_arguments"),
    ("webhook.url", "callback_url"),
];

/// A 422's reason keyed by the field it is about (`base` when it names none), as Rails
/// lists a record's errors.
pub fn by_field(detail: &str) -> Value {
    // Judge0's own words, whole.
    if detail.starts_with("language with id") {
        return json!({ "language_id": [detail] });
    }
    // A reason that starts with a field's name (`field: reason` or `field reason`).
    let known = super::ALL_FIELDS
        .iter()
        .map(|f| (*f, *f))
        .chain(CODEBOX_FIELDS.iter().copied());
    for (word, field) in known {
        if let Some(rest) = detail.strip_prefix(word) {
            let reason = rest.trim_start_matches(':').trim();
            if rest.starts_with(':') || rest.starts_with(' ') {
                return json!({ field: [reason] });
            }
        }
    }
    // "setting compiler options is only allowed …", "language with id 9 doesn't exist".
    let field = if detail.contains("compiler options") {
        "compiler_options"
    } else if detail.starts_with("language with id") {
        "language_id"
    } else if detail.contains("callback") {
        "callback_url"
    } else if detail.contains("additional files") {
        "additional_files"
    } else if detail.contains("network") {
        "enable_network"
    } else {
        "base"
    };
    json!({ field: [detail] })
}

/// The Judge0 body of a problem.
pub fn shape(problem: &Problem) -> Value {
    if problem.status == StatusCode::UNPROCESSABLE_ENTITY.as_u16() {
        by_field(&problem.detail)
    } else {
        json!({ "error": problem.detail })
    }
}

/// Rewrites a problem+json answer into Judge0's shape.
pub async fn judge0_shapes(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()));
    if !is_problem {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::UNAUTHORIZED {
        // Judge0's `head :unauthorized`.
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let problem: Map<String, Value> = serde_json::from_slice(&bytes).unwrap_or_default();
    let detail = problem
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let shaped = shape(&Problem::of(parts.status, detail));
    let body = serde_json::to_vec(&shaped).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_keyed_by_the_field_they_name() {
        assert_eq!(
            by_field("cpu_time_limit must be less than or equal to 20"),
            json!({"cpu_time_limit": ["must be less than or equal to 20"]})
        );
        assert_eq!(
            by_field("command_line_arguments: missing closing quote"),
            json!({"command_line_arguments": ["missing closing quote"]})
        );
        assert_eq!(
            by_field("setting compiler options is only allowed for compiled languages"),
            json!({"compiler_options": ["setting compiler options is only allowed for compiled languages"]})
        );
        assert_eq!(
            by_field("language with id 9999 doesn't exist"),
            json!({"language_id": ["language with id 9999 doesn't exist"]})
        );
        assert_eq!(
            by_field("code is 200000 bytes; at most 131072 are accepted"),
            json!({"source_code": ["is 200000 bytes; at most 131072 are accepted"]})
        );
        assert_eq!(
            by_field("something else"),
            json!({"base": ["something else"]})
        );
    }
}
