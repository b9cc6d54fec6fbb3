//! The caller's submissions as the listing holds them: code tasks (image tasks are not
//! Judge0's), newest first, read page by page up to a bound.

use codebox_core::domain::{TaskKind, TaskSummary};
use codebox_core::tasks::MAX_LIST_LIMIT;

use crate::problem::ApiResult;
use crate::state::AppState;

/// Submissions read at most for a listing, a count or the statistics (ten reads of the
/// store): past it, counts say this many.
pub(super) const COUNTED: usize = 1_000;

/// The owner's newest submissions, at most [`COUNTED`].
pub(super) async fn submissions_of(
    state: &AppState,
    owner: uuid::Uuid,
) -> ApiResult<Vec<TaskSummary>> {
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .tasks
            .list(owner, MAX_LIST_LIMIT, cursor.as_deref())
            .await?;
        listed.extend(page.items.into_iter().filter(|t| t.kind == TaskKind::Code));
        cursor = page.next_cursor;
        if cursor.is_none() || listed.len() >= COUNTED {
            listed.truncate(COUNTED);
            return Ok(listed);
        }
    }
}
