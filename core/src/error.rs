//! The domain error: each variant has a meaning the HTTP edge maps to one status.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The thing does not exist, or belongs to someone else (never tell which).
    #[error("{0}")]
    NotFound(String),
    /// The thing existed but what it stored has expired (a task past its retention).
    #[error("{0}")]
    Gone(String),
    /// The request is valid but clashes with the current state (name taken, task finished).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is wrong; the text says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// The input is over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Missing, malformed, expired, revoked or forged credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the right to do this.
    #[error("{0}")]
    Forbidden(String),
    /// Over a limit on clients; retry after the duration.
    #[error("{0}")]
    RateLimited(String, std::time::Duration),
    /// A backend (store, queue) cannot be reached right now; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything else that went wrong in a backend. Its text is for logs only.
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the failure may be the platform's and not the request's: a dependency
    /// that cannot be reached, or one that refuses this process's credential. Callers
    /// that hold work through outages retry these; everything else is final.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Forbidden(_))
    }
}
