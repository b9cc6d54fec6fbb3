//! The calls: one HTTP client whose resolver drops the addresses a webhook may not reach
//! (so a name that resolved to a public address when the task was submitted and to a
//! private one now is refused when the call connects), no redirects followed, 5 s per try,
//! 3 tries with backoff on a failure to connect or a 5xx/429 answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::address::{AllowedHosts, forbidden};

/// Time one try gets, as Judge0's `CALLBACKS_TIMEOUT`.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of one call, as Judge0's `CALLBACKS_MAX_TRIES`.
pub const TRIES: u32 = 3;
/// The pause after the first failed try; doubled after each.
const BACKOFF: Duration = Duration::from_millis(500);
/// The longest a call takes: every try and the pauses between them (16.5 s), what a
/// stopping API gives the calls under way.
pub const DRAIN: Duration = Duration::from_millis(
    TIMEOUT.as_millis() as u64 * TRIES as u64
        + BACKOFF.as_millis() as u64 * ((1u64 << (TRIES - 1)) - 1),
);

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// How a call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered (any status but 5xx/429, or one on the last try).
    Answered(u16),
    /// Every try failed, or the target is not allowed: why.
    Failed(String),
}

/// Resolves as the system does, keeping only the addresses a webhook may reach (every
/// address of a host listed in `CALLBACK_ALLOWED_HOSTS`).
struct Guarded {
    allowed: AllowedHosts,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let listed = self.allowed.lists(&name.as_str().to_ascii_lowercase());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| listed || forbidden(a.ip()).is_none())
                .collect();
            if kept.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| forbidden(a.ip()).map(|w| format!("{} ({w})", a.ip())))
                    .unwrap_or_else(|| "no address".to_owned());
                return Err(format!(
                    "{host} resolves to {why}, an address a webhook may not reach"
                )
                .into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The client every call goes through.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    allowed: AllowedHosts,
}

impl Sender {
    pub fn new(allowed: AllowedHosts) -> anyhow::Result<Self> {
        // rustls on ring, the process's one provider (a second install keeps the first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // Straight to the receiver: through a proxy, the proxy would resolve the name,
            // past the resolver below.
            .no_proxy()
            .user_agent(concat!("codebox/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guarded {
                allowed: allowed.clone(),
            }))
            .build()?;
        Ok(Self { http, allowed })
    }

    /// Makes the call, trying up to [`TRIES`] times.
    pub async fn send(&self, call: &Call) -> Sent {
        if let Err(why) = super::target_allowed(&self.allowed, &call.url) {
            return Sent::Failed(why);
        }
        let mut pause = BACKOFF;
        let mut last = String::new();
        for attempt in 1..=TRIES {
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(call.body.clone());
            for (name, value) in &call.headers {
                request = request.header(*name, value);
            }
            match request.send().await {
                Ok(r) => {
                    let status = r.status();
                    let again = status.is_server_error() || status.as_u16() == 429;
                    if !again || attempt == TRIES {
                        return Sent::Answered(status.as_u16());
                    }
                    last = format!("answered {status}");
                }
                Err(e) => {
                    last = error_chain(&e);
                    // A refused address stays refused: no second try.
                    if last.contains("a webhook may not reach") {
                        return Sent::Failed(last);
                    }
                }
            }
            if attempt < TRIES {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Sent::Failed(last)
    }
}

/// An error with its causes, as one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}
