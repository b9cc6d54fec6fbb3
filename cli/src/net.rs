//! The little HTTP/1.1 client the command needs, on hyper with rustls on ring: bodies
//! in and out, a body read as it streams, redirects, timeouts.
//!
//! Why not reqwest: its TLS feature would be unified into every reqwest client the
//! workspace builds (the worker's, the tests'), and with ring it makes each of them need
//! a process-wide crypto provider, or it brings aws-lc instead. Here the provider is
//! given to this one connector and nothing else changes.

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Redirects followed at most (the API answers a large body on AWS with a 303 to S3).
const MAX_REDIRECTS: usize = 5;

pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Why a request did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No connection (refused, no such host, TLS handshake); the reason.
    Connect(String),
    /// No answer, or no end of it, in time.
    Timeout,
    /// The connection broke after it was made; the reason.
    Lost(String),
    /// The request cannot be made (a bad URL, a bad redirect).
    Invalid(String),
}

pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Bound on the answer and its whole body.
    pub timeout: Option<Duration>,
}

impl Request {
    pub fn new(method: Method, url: String) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: None,
        }
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Bytes::from(body.to_string());
        self.header(CONTENT_TYPE, "application/json")
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    deadline: Option<Instant>,
}

impl Http {
    /// `tls_roots`: load the system's certificate authorities (for an https server).
    pub fn new(connect_timeout: Duration, tls_roots: bool) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        if tls_roots {
            // SSL_CERT_FILE / SSL_CERT_DIR are honoured; unreadable ones are skipped.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Sends `request`, following redirects (without the credentials when one leaves
    /// the server's origin).
    pub async fn send(&self, mut request: Request) -> Result<Response, Error> {
        let deadline = request.timeout.map(|t| Instant::now() + t);
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = request
                .url
                .parse()
                .map_err(|_| Error::Invalid(format!("{:?} is not a URL", request.url)))?;
            let mut builder = http::Request::builder()
                .method(request.method.clone())
                .uri(uri.clone());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if !request.body.is_empty() {
                builder = builder.header(CONTENT_LENGTH, request.body.len());
            }
            let outgoing = builder
                .body(Full::new(request.body.clone()))
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let answer = within(deadline, self.client.request(outgoing))
                .await?
                .map_err(|e| {
                    if e.is_connect() {
                        Error::Connect(reason(&e))
                    } else {
                        Error::Lost(reason(&e))
                    }
                })?;
            let location = answer
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match (answer.status(), location) {
                (
                    s @ (StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT),
                    Some(location),
                ) => {
                    let next = resolve(&uri, &location)?;
                    if origin(&next) != origin(&uri) {
                        request.headers.remove(AUTHORIZATION);
                    }
                    let to_get = s == StatusCode::SEE_OTHER
                        || (request.method == Method::POST && s.as_u16() < 303);
                    if to_get {
                        request.method = Method::GET;
                        request.body = Bytes::new();
                        request.headers.remove(CONTENT_TYPE);
                    }
                    request.url = next.to_string();
                }
                _ => {
                    let (parts, body) = answer.into_parts();
                    return Ok(Response {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                        deadline,
                    });
                }
            }
        }
        Err(Error::Invalid(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

impl Response {
    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        let collected = within(self.deadline, self.body.collect()).await?;
        collected
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| Error::Lost(reason(&e)))
    }

    /// The next piece of the body as it arrives; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match within(self.deadline, self.body.frame()).await? {
                None => return Ok(None),
                Some(Err(e)) => return Err(Error::Lost(reason(&e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

async fn within<T>(deadline: Option<Instant>, f: impl Future<Output = T>) -> Result<T, Error> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, f)
            .await
            .map_err(|_| Error::Timeout),
        None => Ok(f.await),
    }
}

/// `location` against `base`: absolute, or a path on the same origin.
fn resolve(base: &Uri, location: &str) -> Result<Uri, Error> {
    let bad = || Error::Invalid(format!("a redirect to {location:?}"));
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme = base.scheme_str().ok_or_else(bad)?;
        let authority = base.authority().ok_or_else(bad)?;
        return format!("{scheme}://{authority}{location}")
            .parse()
            .map_err(|_| bad());
    }
    let uri: Uri = location.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(bad()),
    }
}

fn origin(uri: &Uri) -> (Option<&str>, Option<&str>, Option<u16>) {
    (uri.scheme_str(), uri.host(), uri.port_u16())
}

/// The innermost reason of an error chain: "connection refused", "dns error: …".
pub fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        return crate::fail::io_reason(io);
    }
    crate::fail::lower_first(&inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://h:8080/task/1".parse().unwrap();
        assert_eq!(
            resolve(&base, "/result/1").unwrap().to_string(),
            "http://h:8080/result/1"
        );
        let s3 = resolve(&base, "https://bucket.s3.example/responses/x?sig=1").unwrap();
        assert_eq!(s3.host(), Some("bucket.s3.example"));
        assert_ne!(origin(&s3), origin(&base));
        assert!(resolve(&base, "ftp://x/y").is_err());
        assert!(resolve(&base, "//elsewhere/x").is_err());
    }
}
