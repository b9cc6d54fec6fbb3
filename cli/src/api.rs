//! The codebox HTTP API as the client uses it: requests, and every failure turned into
//! one line and an exit status (problem+json `detail`, `Retry-After`, the network's
//! reason).

use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use codebox_api::{Language, TaskView};

use crate::fail::{Fail, Result, code, lower_first};
use crate::net::{Error, Http, Request, Response};

/// Bound on an ordinary request (not on the event stream, which lasts as long as the task).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Api {
    http: Http,
    pub server: String,
    token: Option<String>,
}

impl Api {
    pub fn new(server: String, token: Option<String>) -> Result<Self> {
        let http = Http::new(CONNECT_TIMEOUT, server.starts_with("https://"))
            .map_err(|e| Fail::unavailable(format!("cannot set up HTTPS: {e}")))?;
        Ok(Self {
            http,
            server,
            token,
        })
    }

    /// The token, or the failure of not being logged in.
    pub fn token(&self) -> Result<&str> {
        self.token.as_deref().ok_or_else(|| {
            Fail::new(
                code::NO_PERMISSION,
                format!(
                    "not logged in to {}: run `codebox login` or set CODEBOX_TOKEN",
                    self.server
                ),
            )
        })
    }

    /// A request to `path` of the server, with the token when `authed`.
    pub fn request(&self, method: Method, path: &str, authed: bool) -> Result<Request> {
        let request = Request::new(method, format!("{}{path}", self.server))
            .header(ACCEPT, "application/json");
        Ok(if authed {
            request.header(AUTHORIZATION, &format!("Bearer {}", self.token()?))
        } else {
            request
        })
    }

    /// Sends a request, bounded by [`REQUEST_TIMEOUT`], and fails on any status but 2xx.
    pub async fn send(&self, request: Request, authed: bool) -> Result<Response> {
        let response = self
            .send_unchecked(request.timeout(REQUEST_TIMEOUT))
            .await?;
        self.check(response, authed).await
    }

    /// Sends a request and returns whatever answered; only the network can fail here.
    pub async fn send_unchecked(&self, request: Request) -> Result<Response> {
        self.http.send(request).await.map_err(|e| self.network(e))
    }

    /// The response when it is a success, else its failure.
    pub async fn check(&self, response: Response, authed: bool) -> Result<Response> {
        let status = response.status;
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers.clone();
        let body = response.bytes().await.unwrap_or_default();
        Err(failure_of(status, &headers, &body, authed, &self.server))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, authed: bool) -> Result<T> {
        let request = self.request(Method::GET, path, authed)?;
        let response = self.send(request, authed).await?;
        self.json(response).await
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        authed: bool,
    ) -> Result<T> {
        let request = self.request(Method::POST, path, authed)?.json(body);
        let response = self.send(request, authed).await?;
        self.json(response).await
    }

    pub async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T> {
        let bytes = response.bytes().await.map_err(|e| self.network(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Fail::unavailable(format!(
                "unexpected answer from {}: {}",
                self.server,
                lower_first(&e.to_string())
            ))
        })
    }

    pub async fn languages(&self) -> Result<Vec<Language>> {
        self.get_json("/languages", false).await
    }

    /// Uploads `png` (`POST /task/upload`, then a `PUT` to the URL it grants, without the
    /// token) and returns the `image_key` an image task names it by.
    pub async fn upload_png(&self, png: Vec<u8>) -> Result<String> {
        let granted: Value = self
            .post_json(
                "/task/upload",
                &serde_json::json!({"size": png.len()}),
                true,
            )
            .await?;
        let (Some(key), Some(url)) = (
            granted["image_key"].as_str(),
            granted["upload_url"].as_str(),
        ) else {
            return Err(Fail::unavailable(format!(
                "unexpected answer from {} to an upload",
                self.server
            )));
        };
        let mut request = Request::new(Method::PUT, url.to_owned());
        for (name, value) in granted["headers"].as_object().into_iter().flatten() {
            // The body's length is sent as it is.
            if name.eq_ignore_ascii_case("content-length") {
                continue;
            }
            if let (Ok(name), Some(value)) = (
                http::header::HeaderName::from_bytes(name.as_bytes()),
                value.as_str(),
            ) {
                request = request.header(name, value);
            }
        }
        request.body = png.into();
        let response = self
            .http
            .send(request.timeout(REQUEST_TIMEOUT))
            .await
            .map_err(|e| self.network(e))?;
        if !response.status.is_success() {
            let status = response.status;
            let body = response.bytes().await.unwrap_or_default();
            return Err(Fail::unavailable(format!(
                "the upload was refused ({status}): {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        Ok(key.to_owned())
    }

    /// `DELETE /task/{id}`.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        let request = self.request(Method::DELETE, &format!("/task/{}", path_segment(id)), true)?;
        self.send(request, true).await.map(drop)
    }

    /// A failure of the network as one line.
    pub fn network(&self, e: Error) -> Fail {
        let server = &self.server;
        Fail::unavailable(match e {
            Error::Connect(why) => format!("cannot reach {server}: {why}"),
            Error::Timeout => format!("{server} did not answer in time"),
            Error::Lost(why) => format!("lost the connection to {server}: {why}"),
            Error::Invalid(why) => format!("cannot ask {server}: {why}"),
        })
    }
}

/// A task id in a path: the API's ids are UUIDs; anything else is kept from reaching
/// another route.
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A refused request as one line: the problem's `detail` (else its `title`, else the
/// status), and its exit status.
pub fn failure_of(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    authed: bool,
    server: &str,
) -> Fail {
    let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| {
        problem
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let said = text("detail")
        .or_else(|| text("title"))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let wait = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| format!(", retry in {s} s"))
                .unwrap_or_default();
            Fail::new(code::TRY_LATER, format!("too many requests ({said}){wait}"))
        }
        StatusCode::UNAUTHORIZED if authed => Fail::new(
            code::NO_PERMISSION,
            format!("{said}: log in again with `codebox login`"),
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Fail::new(code::NO_PERMISSION, said),
        s if s.is_server_error() => {
            Fail::unavailable(format!("{server} failed: {said} (HTTP {})", s.as_u16()))
        }
        s if s.is_client_error() => Fail::new(code::REFUSED, said),
        s => Fail::unavailable(format!(
            "unexpected answer from {server}: HTTP {}",
            s.as_u16()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn fail(status: u16, body: &str, retry: Option<&str>, authed: bool) -> Fail {
        let mut headers = HeaderMap::new();
        if let Some(r) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(r).unwrap());
        }
        failure_of(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
            authed,
            "http://h",
        )
    }

    #[test]
    fn problems_become_one_line_each() {
        let p = |status: u16, detail: &str| {
            format!(r#"{{"type":"about:blank","title":"T","status":{status},"detail":"{detail}"}}"#)
        };
        assert_eq!(
            fail(401, &p(401, "wrong username or password"), None, false),
            Fail::new(code::NO_PERMISSION, "wrong username or password")
        );
        assert_eq!(
            fail(401, &p(401, "token expired"), None, true),
            Fail::new(
                code::NO_PERMISSION,
                "token expired: log in again with `codebox login`"
            )
        );
        assert_eq!(
            fail(429, &p(429, "at most 2 calls a minute"), Some("12"), false),
            Fail::new(
                code::TRY_LATER,
                "too many requests (at most 2 calls a minute), retry in 12 s"
            )
        );
        assert_eq!(
            fail(429, "", None, true),
            Fail::new(code::TRY_LATER, "too many requests (too many requests)")
        );
        assert_eq!(
            fail(409, &p(409, "task x already finished"), None, true).code,
            code::REFUSED
        );
        assert_eq!(
            fail(503, r#"{"title":"Service Unavailable"}"#, None, true),
            Fail::unavailable("http://h failed: Service Unavailable (HTTP 503)")
        );
        assert_eq!(
            fail(502, "<html>bad gateway</html>", None, true),
            Fail::unavailable("http://h failed: bad gateway (HTTP 502)")
        );
    }

    #[test]
    fn ids_stay_in_their_segment() {
        assert_eq!(path_segment("3f2a-b"), "3f2a-b");
        assert_eq!(path_segment("../x?y"), "%2E%2E%2Fx%3Fy");
    }
}
