//! Errors as `application/problem+json` (RFC 9457). A backend failure is logged here,
//! once, and answered with a generic text: no internals ever reach a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use codebox_core::Error;
use serde::Serialize;
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    #[schema(example = "Not Found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "task 3f2a… not found")]
    pub detail: String,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// The problem object this error answers with.
    pub fn problem(&self) -> Problem {
        Problem::of(self.status, self.detail.clone())
    }
}

impl Problem {
    pub fn of(status: StatusCode, detail: String) -> Self {
        Self {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::RateLimited(detail, after) => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, detail.clone());
                // Whole seconds, rounded up: a client waiting that long is let in.
                e.retry_after = Some(after.as_secs() + u64::from(after.subsec_nanos() > 0));
                return e;
            }
            Error::Unavailable(what) => {
                tracing::warn!(unavailable = %what, "backend unavailable");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "a backend is unavailable; try again shortly",
                );
            }
            Error::Backend(err) => {
                tracing::error!(error = ?err, "backend failure");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = problem_response(self.status, self.detail);
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

pub fn problem_response(status: StatusCode, detail: String) -> Response {
    let body = Problem::of(status, detail);
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

pub async fn not_found_fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

pub async fn method_not_allowed_fallback(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here"),
    )
}

/// The answer to a handler that panicked: a generic 500, the panic logged.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown");
    tracing::error!(panic = %what, "handler panicked");
    problem_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A task past its retention is 410 with its reason, never a 500.
    #[test]
    fn gone_is_410() {
        let e = ApiError::from(Error::Gone("this task's stored spec has expired".into()));
        assert_eq!(e.status, StatusCode::GONE);
        assert!(e.detail.contains("expired"), "{}", e.detail);
    }
}
