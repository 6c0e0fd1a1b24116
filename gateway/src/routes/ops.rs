//! Operations endpoints outside `/api/v1` (SPEC §7): `/healthz`, `/readyz`,
//! `/.well-known/jwks.json`, `/openapi.json` (`/metrics` and `/docs` are
//! mounted in `startup`).

use std::time::Duration;

use actix_web::{HttpResponse, get, http::StatusCode, web};
use common::{
    auth::JwkSet,
    error::{ErrorCode, FieldViolation},
};
use serde::Serialize;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use utoipa::{OpenApi, ToSchema};

use crate::{error::ApiError, startup::AppState};

/// How long `/readyz` waits for each downstream.
const READY_TIMEOUT: Duration = Duration::from_millis(1_500);

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(tag = "auth", responses((status = 200, body = JwkSet), (status = 503, body = common::error::ErrorEnvelope)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let set = state.jwks.jwk_set().await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=60"))
        .json(set))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The gateway is alive.
#[utoipa::path(tag = "ops", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness and each dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    /// Downstream name → `up`.
    pub downstreams: std::collections::BTreeMap<String, String>,
    /// The gateway's own dependencies → `up`: `signing_keys` (the user
    /// service's public keys, without which no token can be checked).
    pub gateway: std::collections::BTreeMap<String, String>,
}

/// Ready when the gateway is not stopping, has the keys that verify access
/// tokens, and every downstream answers SERVING to its gRPC health check
/// (a service answers NOT_SERVING while its database or Redis is down, or
/// while it drains); otherwise 503 naming each failing one in `details`
/// (`gateway` while draining after SIGTERM, `signing_keys`, or the
/// downstream's name).
#[utoipa::path(tag = "ops", responses((status = 200, body = Readiness), (status = 503, body = common::error::ErrorEnvelope)))]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Readiness>, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            "draining: the gateway is stopping",
        );
        err.details = vec![FieldViolation::new("gateway", "stopping (SIGTERM)")];
        return Err(err.retry_after(1));
    }
    let keys = tokio::time::timeout(READY_TIMEOUT, state.jwks.jwk_set());
    let checks = state
        .downstreams
        .channels()
        .map(|(name, channel)| async move {
            let mut client = HealthClient::new(channel);
            let answer = tokio::time::timeout(
                READY_TIMEOUT,
                client.check(HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await;
            (name, answer)
        });
    let mut up = std::collections::BTreeMap::new();
    let mut own = std::collections::BTreeMap::new();
    let mut down = Vec::new();
    // Checked at once, so that two dead downstreams still answer in time.
    let (keys, answers) = futures::future::join(keys, futures::future::join_all(checks)).await;
    match keys {
        Ok(Ok(_)) => {
            own.insert("signing_keys".to_owned(), "up".to_owned());
        }
        Ok(Err(e)) => down.push(FieldViolation::new("signing_keys", e.message)),
        Err(_) => down.push(FieldViolation::new(
            "signing_keys",
            "the key set did not load in time",
        )),
    }
    for (name, answer) in answers {
        match answer {
            Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32 => {
                up.insert(name.to_owned(), "up".to_owned());
            }
            Ok(Ok(_)) => down.push(FieldViolation::new(name, "not serving")),
            Ok(Err(status)) => down.push(FieldViolation::new(
                name,
                format!("unreachable ({:?})", status.code()),
            )),
            Err(_) => down.push(FieldViolation::new(name, "health check timed out")),
        }
    }
    if down.is_empty() {
        return Ok(web::Json(Readiness {
            status: "ready",
            downstreams: up,
            gateway: own,
        }));
    }
    let names: Vec<&str> = down.iter().map(|d| d.field.as_str()).collect();
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotReady,
        format!("down: {}", names.join(", ")),
    );
    err.details = down;
    Err(err.retry_after(1))
}

/// The OpenAPI document.
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::ApiDoc::openapi())
}
