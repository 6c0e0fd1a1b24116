//! The user service (SPEC §3): accounts with Argon2id passwords, EdDSA access
//! tokens, rotating refresh tokens with reuse detection, and the JWK Set,
//! served over gRPC `user.v1` with `grpc.health.v1` and server reflection.
//!
//! [`startup::Application`] is what the binary, the all-in-one stack and the
//! tests start.

pub mod accounts;
pub mod config;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod migration;
pub mod oauth;
pub mod startup;
pub mod tokens;

pub use config::Settings;
pub use startup::Application;
