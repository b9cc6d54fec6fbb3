//! Extractors whose rejections are problem+json, and the bearer-token guards.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use codebox_core::auth::Principal;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::AppState;

/// `axum::Json` whose rejections (bad JSON, unknown fields, wrong content type, body too
/// large) are problem+json with the same status.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// [`Json`] for a body that must be a JSON object: serde would also take an array of a
/// struct's field values in order, which no request document allows.
pub struct JsonObject<T>(pub T);

impl<T, S> FromRequest<S> for JsonObject<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // Unknown fields and wrong types are the client's mistakes like bad syntax: 400.
    let status = match &rejection {
        JsonRejection::JsonDataError(_) => StatusCode::BAD_REQUEST,
        other => other.status(),
    };
    let detail = match &rejection {
        JsonRejection::JsonDataError(e) => format!("invalid request body: {}", e.body_text()),
        JsonRejection::JsonSyntaxError(_) => "the request body is not valid JSON".to_owned(),
        JsonRejection::MissingJsonContentType(_) => {
            "expected a body with Content-Type: application/json".to_owned()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!(
                "the request body is larger than {} bytes",
                crate::handlers::BODY_LIMIT
            )
        }
        other => other.body_text(),
    };
    ApiError::new(status, detail)
}

pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::bad_request(
                "the task id in the path is not a UUID",
            )),
            Err(other) => Err(ApiError::new(other.status(), other.body_text())),
        }
    }
}

pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("invalid query: {}", e.body_text()),
            )),
            Err(other) => Err(ApiError::new(other.status(), other.body_text())),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be 'Bearer <token>'",
        )),
    }
}

/// A logged-in user (a valid token whose session is live).
pub struct AuthUser(pub Principal);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let principal = state.accounts.authenticate(token).await?;
        Ok(Self(principal))
    }
}

/// The worker credential. A user's valid token is recognised and refused with 403.
pub struct Worker;

impl FromRequestParts<AppState> for Worker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if state.accounts.is_worker_token(token) {
            return Ok(Self);
        }
        match state.accounts.authenticate(token).await {
            Ok(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this route is for workers only",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// The client's address, as the rates per address count it: API Gateway's `sourceIp` on
/// Lambda, the peer address of the connection in the gateway and the embedded default.
/// No header is trusted: a client could write any `X-Forwarded-For`.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
            parts
                .extensions
                .get::<lambda_http::request::RequestContext>()
            && let Some(ip) = &ctx.http.source_ip
        {
            return Ok(Self(ip.clone()));
        }
        if let Some(axum::extract::ConnectInfo(peer)) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        {
            return Ok(Self(peer.ip().to_string()));
        }
        // Served without connection info (in-process tests): one shared bucket.
        Ok(Self("unknown".to_owned()))
    }
}
