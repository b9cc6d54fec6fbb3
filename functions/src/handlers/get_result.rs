//! `GET /result/{id}`: the outcome of a finished task. An image task's output comes as
//! PNG bytes unless the client asks for JSON.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use codebox_core::domain::{TaskId, TaskResult, Verdict};

use crate::dto::{CodeResultView, ImageResultView, ResultParams};
use crate::extract::{AuthUser, Path, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

#[utoipa::path(get, path = "/result/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Task id"), ResultParams),
    responses(
        (status = 200, description = "Code task: the outcome. Image task: the PNG, or with \
            `Accept: application/json` the JSON form",
            content(
                (CodeResultView = "application/json"),
                (ImageResultView = "application/json"),
                (Vec<u8> = "image/png"))),
        (status = 400, description = "Unknown query parameter or encoding", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task of yours", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The task is past its retention: what it stored has expired", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not finished; `detail` names the status", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all, fields(task_id = %id))]
pub async fn get_result(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<TaskId>,
    Query(params): Query<ResultParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let task = state.tasks.result(me.user_id, id).await?;
    let Some(result) = &task.result else {
        return Err(
            codebox_core::Error::Backend(anyhow::anyhow!("finished task without result")).into(),
        );
    };
    match result {
        TaskResult::Code(r) => Ok(axum::Json(CodeResultView {
            id: task.id,
            status: task.status,
            result: crate::dto::code_output(r, params.encoding.unwrap_or_default()),
        })
        .into_response()),
        TaskResult::Image(r) => {
            let image = state.tasks.image_output(&task).await?;
            let wants_json = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/json"));
            match image {
                Some(png) if !wants_json && r.verdict == Verdict::Ok => {
                    let mut res = png.into_response();
                    res.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
                    Ok(res)
                }
                image => Ok(axum::Json(ImageResultView {
                    id: task.id,
                    status: task.status,
                    verdict: r.verdict,
                    image_base64: image
                        .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
                    error: r.error.clone(),
                })
                .into_response()),
            }
        }
    }
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/result/{id}", get(get_result))
            .with_state(state),
    )
}
