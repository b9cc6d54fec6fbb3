//! Webhooks: when a task that asked for one ends, the API tells its URL — codebox's own
//! `POST` of the `GET /task/{id}` body, or Judge0's `PUT` of the submission's default
//! fields in base64 for a `callback_url`; each signed with its owner's key when the
//! deployment has a `WEBHOOK_SECRET`. Told by the API once the outcome is stored, never by a worker: the
//! hosts that run untrusted code make no call a user chose. A long-running API calls in
//! the background; the `commit` Lambda function hands each call to the webhook queue
//! (nothing of a function runs after it answers, and calling before would hold its
//! worker), and the `webhooks` function, fed by that queue, makes it: the same tries,
//! timeouts and pauses everywhere.
//!
//! Files: `address.rs` (where a webhook may point), `calls.rs` (the calls of ended
//! tasks, made only by a process that stores tasks' ends, or the `webhooks` function),
//! `queued.rs` (the `webhooks` function's batches), `send.rs` (the guarded client),
//! `signing.rs` (each user's key and the signature).

pub mod address;
mod calls;
#[cfg(feature = "aws")]
pub mod queued;
mod send;
mod signing;

use std::net::IpAddr;
use std::sync::Arc;

use codebox_core::domain::UserId;
use secrecy::{ExposeSecret, SecretString};

pub use address::AllowedHosts;
pub use calls::WebhookCalls;
pub use send::{Call, DRAIN, Sender, Sent, TIMEOUT, TRIES};
pub use signing::{SIGNATURE, TIMESTAMP, signature, user_key};

/// Time a webhook's host gets to resolve when its task is submitted.
const LOOKUP: std::time::Duration = std::time::Duration::from_secs(3);
/// The header naming the task a call is about.
pub const TASK: &str = "x-codebox-task";

/// The deployment's webhook settings.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// `CALLBACK_ALLOWED_HOSTS`.
    pub allowed_hosts: AllowedHosts,
    /// `WEBHOOK_SECRET`: what each user's signing key is derived from; unsigned without one.
    pub secret: Option<SecretString>,
}

/// Where webhooks may point, and each user's signing key: what every API process
/// needs to take a task with a webhook (the calls themselves are [`WebhookCalls`]'s).
pub struct Webhooks {
    allowed: AllowedHosts,
    secret: Option<SecretString>,
}

impl Webhooks {
    pub fn new(config: &WebhookConfig) -> Arc<Self> {
        Arc::new(Self {
            allowed: config.allowed_hosts.clone(),
            secret: config.secret.clone(),
        })
    }

    /// Whether a submitted task may have this webhook: a URL whose host, listed in
    /// `CALLBACK_ALLOWED_HOSTS` or not, resolves to no address of the deployment's own
    /// networks. The reason in words when not.
    pub async fn check(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
        let Some((host, port)) = target_allowed(&self.allowed, &parsed)? else {
            return Ok(());
        };
        let found = tokio::time::timeout(LOOKUP, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| format!("{host} did not resolve within {} s", LOOKUP.as_secs()))?
            .map_err(|_| format!("{host} does not resolve"))?;
        // What a name resolves to is not told: a user could map internal names with it.
        for addr in found {
            if address::forbidden(addr.ip()).is_some() {
                return Err(format!(
                    "{host} does not resolve to public addresses only, which a webhook must; a deployment allows its own receivers in CALLBACK_ALLOWED_HOSTS"
                ));
            }
        }
        Ok(())
    }

    /// The key `user`'s calls are signed with; `None` where calls are not signed.
    pub fn key_for(&self, user: UserId) -> Option<String> {
        user_key(self.secret.as_ref()?.expose_secret().as_bytes(), user)
    }
}

/// A host as a URL names it, without an IPv6 address's brackets.
fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

fn refused(host: &str, ip: IpAddr, why: &str) -> String {
    format!(
        "{host} resolves to {ip} ({why}), which a webhook may not reach; a deployment allows its own receivers in CALLBACK_ALLOWED_HOSTS"
    )
}

/// The rules a URL meets before any address is looked at: http(s), a host, no user
/// information; a host listed in `CALLBACK_ALLOWED_HOSTS` for its port, or an IP address
/// a webhook may reach. `Some((name, port))` for a name whose addresses are still to be
/// checked (at submit by a lookup, at a call as it resolves).
pub(crate) fn target_allowed(
    allowed: &AllowedHosts,
    url: &reqwest::Url,
) -> Result<Option<(String, u16)>, String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() {
        return Err("has no host".into());
    }
    let port = url.port_or_known_default().unwrap_or(0);
    match allowed.allows(bare(&host), port) {
        Some(true) => return Ok(None),
        Some(false) => {
            return Err(format!(
                "{host} is listed in CALLBACK_ALLOWED_HOSTS for other ports than {port}"
            ));
        }
        None => {}
    }
    match bare(&host).parse::<IpAddr>() {
        Ok(ip) => match address::forbidden(ip) {
            Some(why) => Err(refused(&host, ip, why)),
            None => Ok(None),
        },
        Err(_) => Ok(Some((host, port))),
    }
}
