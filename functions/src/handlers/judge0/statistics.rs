//! `GET /judge0/statistics` as Judge0 answers it, over the caller's own submissions: how
//! many, today and on each of the 30 days before, by language and by status, and the
//! bytes they hold. Kept ten minutes per caller, as Judge0 keeps its own;
//! `invalidate_cache=true` counts again.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Days, Utc};
use codebox_core::domain::{Task, TaskSpec};
use codebox_core::kept::Kept;
use codebox_core::languages;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use crate::extract::Query;
use crate::problem::ApiResult;
use crate::state::AppState;

use super::Judge0User;

/// How long a caller's statistics are kept, as Judge0 keeps its own.
pub const KEPT: Duration = Duration::from_secs(10 * 60);
/// Callers whose statistics one API process keeps at most; past it, all are counted again.
const CALLERS_KEPT: usize = 10_000;
/// Submissions read at once while counting.
const READS_AT_ONCE: usize = 16;

/// Each caller's statistics, kept [`KEPT`] (at most [`CALLERS_KEPT`] callers).
pub struct StatisticsCache(Kept<uuid::Uuid, Statistics>);

impl Default for StatisticsCache {
    fn default() -> Self {
        Self(Kept::new(KEPT, CALLERS_KEPT))
    }
}

/// What `GET /judge0/statistics` answers, in Judge0's key order.
#[derive(Debug, Clone, Serialize)]
pub struct Statistics {
    created_at: String,
    cached_until: String,
    submissions: Submissions,
    languages: Vec<LanguageCount>,
    statuses: Vec<StatusCount>,
    database: Database,
}

#[derive(Debug, Clone, Serialize)]
struct LanguageCount {
    language: Named<Option<u16>>,
    count: u64,
}

#[derive(Debug, Clone, Serialize)]
struct StatusCount {
    status: Named<u8>,
    count: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Named<Id> {
    id: Id,
    name: String,
}

#[derive(Debug, Clone, Serialize)]
struct Database {
    size_pretty: String,
    size_in_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Submissions {
    total: usize,
    today: u64,
    last_30_days: NewestFirst,
}

/// Each of the 30 days before today and its count, newest first, as Judge0 writes them
/// (a JSON object whose keys keep this order).
#[derive(Debug, Clone)]
struct NewestFirst(Vec<(String, u64)>);

impl Serialize for NewestFirst {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(day, n)| (day, n)))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StatisticsParams {
    /// `true`: count again now rather than answer what was counted within ten minutes.
    pub invalidate_cache: Option<String>,
}

#[utoipa::path(get, path = "/judge0/statistics", tag = "judge0",
    params(StatisticsParams),
    security(("bearer" = []), ("x_auth_token" = [])),
    responses(
        (status = 200, description = "Your submissions counted as Judge0 counts all of its own (the newest 1 000): `submissions` (`total`, `today`, `last_30_days` by UTC day), `languages` and `statuses` with their counts, `database` the bytes they hold; `created_at` and `cached_until` say when they were counted and until when they are kept", body = Object),
        (status = 401, description = "No valid token")))]
pub async fn statistics(
    State(state): State<AppState>,
    Judge0User(me): Judge0User,
    Query(params): Query<StatisticsParams>,
) -> ApiResult<axum::Json<Statistics>> {
    if params.invalidate_cache.as_deref().map(str::trim) == Some("true") {
        state.judge0_statistics.0.forget(&me.user_id);
    } else if let Some(kept) = state.judge0_statistics.0.get(&me.user_id) {
        return Ok(axum::Json(kept));
    }
    let listed = super::listing::submissions_of(&state, me.user_id).await?;
    let tasks: Vec<_> = futures::stream::iter(listed)
        .map(|t| state.tasks.get(me.user_id, t.id))
        .buffered(READS_AT_ONCE)
        .collect()
        .await;
    let mut read = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task {
            Ok(task) => read.push(task),
            // Gone meanwhile (past its retention).
            Err(codebox_core::Error::NotFound(_) | codebox_core::Error::Gone(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let counted = count(&state, &read, Utc::now());
    state.judge0_statistics.0.put(me.user_id, counted.clone());
    Ok(axum::Json(counted))
}

/// The statistics of `tasks`, counted at `now`.
fn count(state: &AppState, tasks: &[Task], now: DateTime<Utc>) -> Statistics {
    let today = now.date_naive();
    let mut by_day: BTreeMap<String, u64> = (1..=30)
        .filter_map(|back| today.checked_sub_days(Days::new(back)))
        .map(|day| (day.to_string(), 0))
        .collect();
    let mut on_today = 0u64;
    let mut by_language: BTreeMap<(Option<u16>, String), u64> = BTreeMap::new();
    let mut by_status: BTreeMap<u8, u64> = BTreeMap::new();
    let mut bytes = 0u64;
    for task in tasks {
        let day = task.created_at.date_naive();
        if day == today {
            on_today += 1;
        } else if let Some(n) = by_day.get_mut(&day.to_string()) {
            *n += 1;
        }
        if let TaskSpec::Code(spec) = &task.spec {
            let id = languages::judge0_id(&spec.language, spec.compiler);
            let name = languages::find(&spec.language).map_or_else(
                || spec.language.clone(),
                |def| super::view::language_name(def, spec.compiler, state),
            );
            *by_language.entry((id, name)).or_default() += 1;
        }
        *by_status
            .entry(super::view::status_of(task, state.judge0_signals).0)
            .or_default() += 1;
        bytes += serde_json::to_vec(task).map_or(0, |b| b.len() as u64);
    }
    let mut languages: Vec<_> = by_language.into_iter().collect();
    // Most used first, as Judge0 orders them.
    languages.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let languages = languages
        .into_iter()
        .map(|((id, name), count)| LanguageCount {
            language: Named { id, name },
            count,
        })
        .collect();
    let statuses = by_status
        .into_iter()
        .map(|(id, count)| {
            let name = super::STATUSES
                .iter()
                .find(|(s, _)| *s == id)
                .map_or("", |(_, d)| d);
            StatusCount {
                status: Named {
                    id,
                    name: name.to_owned(),
                },
                count,
            }
        })
        .collect();
    let kept_until = now + chrono::Duration::from_std(KEPT).unwrap_or_default();
    Statistics {
        created_at: rails_time(now),
        cached_until: rails_time(kept_until),
        submissions: Submissions {
            total: tasks.len(),
            today: on_today,
            last_30_days: NewestFirst(by_day.into_iter().rev().collect()),
        },
        languages,
        statuses,
        database: Database {
            size_pretty: pretty_size(bytes),
            size_in_bytes: bytes,
        },
    }
}

/// A time as Rails writes one in JSON: milliseconds and the offset.
fn rails_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// Bytes as PostgreSQL's `pg_size_pretty` writes them: `8192 bytes`, `12 kB`, `5 MB`.
fn pretty_size(bytes: u64) -> String {
    const LIMIT: u64 = 10 * 1024;
    if bytes < LIMIT {
        return format!("{bytes} bytes");
    }
    // Half units: one bit kept for rounding half up, as PostgreSQL rounds.
    let mut half = bytes >> 9;
    for unit in ["kB", "MB", "GB"] {
        if half < LIMIT * 2 - 1 {
            return format!("{} {unit}", half.div_ceil(2));
        }
        half >>= 10;
    }
    format!("{} TB", half.div_ceil(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_postgres_writes_them() {
        assert_eq!(pretty_size(0), "0 bytes");
        assert_eq!(pretty_size(10_239), "10239 bytes");
        assert_eq!(pretty_size(10_240), "10 kB");
        assert_eq!(pretty_size(12_800), "13 kB");
        assert_eq!(pretty_size(5 * 1024 * 1024), "5120 kB");
        assert_eq!(pretty_size(20 * 1024 * 1024), "20 MB");
    }

    #[test]
    fn times_read_as_rails_writes_them() {
        let t = DateTime::parse_from_rfc3339("2026-12-06T13:46:14.5Z")
            .expect("a time")
            .with_timezone(&Utc);
        assert_eq!(rails_time(t), "2026-12-06T13:46:14.500+00:00");
    }
}
