//! HTTP routes, grouped as the API is (SPEC §7).

pub mod auth;
pub mod ops;
pub mod users;

use actix_web::web::ServiceConfig;

/// Registers every route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(auth::signup)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(users::me)
        .service(users::list_users)
        .service(ops::jwks)
        .service(ops::healthz)
        .service(ops::readyz)
        .service(ops::openapi_json);
}
