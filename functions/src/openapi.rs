//! The OpenAPI 3.1 document, generated from the handlers, and Swagger UI (assets vendored
//! into the binary, so it works offline).

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(title = "codebox", description = "Run untrusted code and image filters over REST."),
    paths(
        handlers::root::root,
        handlers::health::health,
        handlers::languages::languages,
        handlers::register::register,
        handlers::login::login,
        handlers::logout::logout,
        handlers::create_task::create_task,
        handlers::get_status::get_status,
        handlers::get_result::get_result,
        handlers::get_task::get_task,
        handlers::list_tasks::list_tasks,
        handlers::cancel_task::cancel_task,
        handlers::commit::commit,
        handlers::commit::start,
        handlers::commit::status,
        handlers::commit::ping,
        handlers::commit::report_languages,
    ),
    components(schemas(
        codebox_core::domain::TaskResult,
        codebox_core::domain::ImageResult,
        codebox_core::bytes::BytesSchema,
        codebox_core::tasks::LimitsRequest,
        codebox_core::tasks::FilterRequest,
        codebox_core::tasks::FilterParameters,
    )),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Register, log in, log out"),
        (name = "tasks", description = "Submit, follow, list and cancel your tasks"),
        (name = "worker", description = "For workers only (the worker credential)"),
        (name = "service", description = "Liveness, readiness, languages"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document as JSON, as `GET /openapi.json` serves it.
    pub fn openapi_json() -> serde_json::Value {
        serde_json::to_value(Self::openapi()).unwrap_or_default()
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "worker",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /openapi.json` and `GET /swagger/`.
pub fn router() -> Router {
    let doc = ApiDoc::openapi();
    let json = doc.clone();
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(json) }),
        )
        .merge(SwaggerUi::new("/swagger").url("/swagger/openapi.json", doc))
        .layer(axum::middleware::from_fn(crate::telemetry::observe))
}
