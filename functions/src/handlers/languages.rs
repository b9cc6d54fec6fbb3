//! `GET /languages`: the language table with the versions a worker found in its runner
//! image. A worker reports them once it starts (`PUT /commit/languages`); the API process
//! that hears it keeps them, and so does the blob store ([`LISTING_KEY`]), which every
//! other API process reads at most once a minute — on AWS the `languages` function never
//! hears a worker itself.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use codebox_core::languages::Language;

use crate::state::AppState;

/// Where the last listing a worker reported is kept.
pub const LISTING_KEY: &str = "meta/languages.json";
/// How long a process goes by the listing it has before reading the stored one again.
const REREAD: Duration = Duration::from_secs(60);

/// Whether `listing` names this API's languages and their compilers, in order (a worker
/// of another version or a corrupt blob does not replace the table): only the versions
/// are a worker's to say.
pub fn is_listing(listing: &[Language]) -> bool {
    let known = codebox_core::languages::unprobed();
    listing.len() == known.len()
        && listing.iter().zip(&known).all(|(a, b)| {
            a.id == b.id
                && a.name == b.name
                && a.compiled == b.compiled
                && a.compilers.len() == b.compilers.len()
                && a.compilers
                    .iter()
                    .zip(&b.compilers)
                    .all(|(x, y)| x.id == y.id)
        })
}

#[utoipa::path(get, path = "/languages", tag = "service",
    responses((status = 200, description = "The languages and the versions in the runner image",
        body = Vec<Language>)))]
pub async fn languages(State(state): State<AppState>) -> axum::Json<Vec<Language>> {
    let due = {
        let mut read = state.languages_read.lock();
        let due = read.is_none_or(|at| at.elapsed() >= REREAD);
        if due {
            *read = Some(Instant::now());
        }
        due
    };
    if due {
        match state.tasks.blobs().get(LISTING_KEY).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Vec<Language>>(&bytes) {
                Ok(listing) if is_listing(&listing) => state.set_languages(listing),
                _ => tracing::warn!("the stored language listing is not this API's; ignored"),
            },
            Ok(None) => {}
            // The listing without versions is still the right answer.
            Err(e) => tracing::debug!(error = %e, "the stored language listing was not read"),
        }
    }
    axum::Json(state.languages.read().clone())
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/languages", get(languages))
            .with_state(state),
    )
}
