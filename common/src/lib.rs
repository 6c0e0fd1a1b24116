//! What every service of the platform shares, and nothing else: layered
//! configuration ([`config`]), telemetry ([`telemetry`]), the JSON error
//! envelope and its gRPC carrier ([`error`]), and access-token verification
//! against a JWK Set fetched from the user service ([`auth`], [`jwks`]),
//! and service discovery and registration ([`discovery`]).

#[cfg(feature = "archive")]
pub mod archive;
pub mod auth;
pub mod config;
pub mod database;
pub mod discovery;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod jwks;
pub mod metrics;
pub mod paging;
pub mod partitions;
pub mod shutdown;
pub mod telemetry;
pub mod time;
