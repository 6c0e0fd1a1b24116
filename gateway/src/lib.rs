//! The gateway (SPEC §7, §8): the only public edge. It validates access
//! tokens locally against the user service's JWK Set, rate-limits sign-up
//! and login per client IP, routes `/api/v1/…` to the gRPC services, and
//! renders every error as the JSON envelope with an `x-request-id`.
//!
//! [`startup::Application`] is what the binary, the all-in-one stack and the
//! tests start.

pub mod admin_write;
pub mod auth;
pub mod client_ip;
pub mod config;
pub mod cors;
pub mod csv_cell;
pub mod downstream;
pub mod error;
pub mod extract;
pub mod http_errors;
pub mod openapi;
pub mod rate_limit;
pub mod report_bodies;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod studio;

pub use config::Settings;
pub use startup::Application;
