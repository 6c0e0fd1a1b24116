//! Black-box tests of the gateway and the user service over HTTP, as a
//! frontend calls them. Each test starts its own services on port 0 with a
//! fresh PostgreSQL database (or SQLite file) that is dropped afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_flow;
mod cors;
mod errors;
mod helpers;
mod hostile;
mod ledger;
mod revenue;
mod social_login;
mod statements;
mod streaming;
mod studio;
mod tokens;
mod tracing;
mod webhooks;
