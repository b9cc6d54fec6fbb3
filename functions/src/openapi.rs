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
        handlers::create_task::create_batch,
        handlers::upload::grant,
        handlers::upload::upload,
        handlers::get_status::get_status,
        handlers::get_result::get_result,
        handlers::get_task::get_task,
        handlers::task_events::task_events,
        handlers::list_tasks::list_tasks,
        handlers::webhook_key::webhook_key,
        handlers::cancel_task::cancel_task,
        handlers::commit::commit,
        handlers::commit::start,
        handlers::commit::cancelled,
        handlers::commit::lease,
        handlers::commit::events,
        handlers::commit::status,
        handlers::commit::ping,
        handlers::commit::report_languages,
        handlers::judge0::about,
        handlers::judge0::config_info,
        handlers::judge0::languages_list,
        handlers::judge0::language,
        handlers::judge0::statuses,
        handlers::judge0::version,
        handlers::judge0::languages_all,
        handlers::judge0::system_info,
        handlers::judge0::statistics,
        handlers::judge0::workers,
        handlers::judge0::authenticate,
        handlers::judge0::authorize,
        handlers::judge0::index,
        handlers::judge0::create,
        handlers::judge0::show,
        handlers::judge0::delete,
        handlers::judge0::create_batch,
        handlers::judge0::show_batch,
    ),
    components(schemas(
        codebox_core::domain::TaskResult,
        codebox_core::domain::ImageResult,
        codebox_core::bytes::BytesSchema,
        codebox_core::tasks::LimitsRequest,
    )),
    modifiers(&Security, &StandardResponses, &ClosedVariants),
    tags(
        (name = "accounts", description = "Register, log in, log out"),
        (name = "tasks", description = "Submit, follow, list and cancel your tasks"),
        (name = "worker", description = "For workers only (the worker credential)"),
        (name = "service", description = "Liveness, readiness, languages"),
        (name = "judge0", description = "Judge0 CE 1.13.1-compatible: existing Judge0 clients work unchanged (`X-Auth-Token` or Bearer)"),
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
            "x_auth_token",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("X-Auth-Token"),
            )),
        );
        components.add_security_scheme(
            "worker",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The answers every route of a kind can give, written once here instead of on each
/// handler: a JSON body can be malformed (400), too big (413) or not JSON (415); a path or
/// query parameter can be malformed (400); a route with a credential can be called without
/// one (401), and a worker route with a user's token (403).
struct StandardResponses;

impl Modify for StandardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::Operation;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        crate::problem::CONTENT_TYPE,
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        // Under /judge0/ errors have Judge0's shapes (`{"error": …}`, a bare 401).
        let judge0 = |status: &str, description: &str| {
            let response = ResponseBuilder::new().description(description);
            RefOr::T(if status == "401" {
                response.build()
            } else {
                response
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Judge0Error")))
                            .build(),
                    )
                    .build()
            })
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let under_judge0 = path.starts_with("/judge0/");
            let add = |op: &mut Operation, status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| {
                        if under_judge0 {
                            judge0(status, description)
                        } else {
                            problem(description)
                        }
                    });
            };
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                if op.request_body.is_some() {
                    add(op, "400", "The body is not valid JSON of this schema");
                    add(op, "413", "The body is over 12 MiB");
                    add(op, "415", "The body is not `application/json`");
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                    add(op, "400", "A malformed path or query parameter");
                }
                let schemes: Vec<String> = op
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|s| serde_json::to_value(s).ok())
                    .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
                    .flatten()
                    .collect();
                if !schemes.is_empty() {
                    add(op, "401", "No valid credential");
                }
                if schemes.iter().any(|s| s == "worker") {
                    add(op, "403", "A user's token on a worker route");
                }
            }
        }
    }
}

/// An internally tagged enum of structs that refuse unknown fields comes out of `utoipa`
/// as `allOf: [$ref Variant, {kind}]`, which nothing satisfies: the variant refuses
/// `kind`. Each such branch becomes one closed object with the variant's properties and
/// its tag, which is what the API accepts.
struct ClosedVariants;

impl Modify for ClosedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use serde_json::Value;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Ok(Value::Object(mut schemas)) = serde_json::to_value(&components.schemas) else {
            return;
        };
        let closed: std::collections::HashMap<String, Value> = schemas
            .iter()
            .filter(|(_, s)| s["additionalProperties"] == Value::Bool(false))
            .map(|(name, s)| (format!("#/components/schemas/{name}"), s.clone()))
            .collect();
        for schema in schemas.values_mut() {
            let Some(branches) = schema.get_mut("oneOf").and_then(Value::as_array_mut) else {
                continue;
            };
            for branch in branches.iter_mut() {
                let Some([first, tag]) = branch
                    .get("allOf")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .and_then(|parts| <&[Value; 2]>::try_from(parts).ok())
                else {
                    continue;
                };
                let Some(variant) = first["$ref"].as_str().and_then(|r| closed.get(r)) else {
                    continue;
                };
                let mut merged = variant.clone();
                if let (Some(props), Some(tag_props)) = (
                    merged["properties"].as_object_mut(),
                    tag["properties"].as_object(),
                ) {
                    props.extend(tag_props.clone());
                }
                if let Some(required) = merged["required"].as_array_mut() {
                    required.extend(tag["required"].as_array().cloned().unwrap_or_default());
                }
                *branch = merged;
            }
        }
        if let Ok(rebuilt) = serde_json::from_value(Value::Object(schemas)) {
            components.schemas = rebuilt;
        }
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
