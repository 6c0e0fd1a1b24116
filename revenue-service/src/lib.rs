//! The revenue service (SPEC §6, §7): settlement runs that pull a day's
//! counts from the streaming service through a circuit breaker and price
//! them with the tiered rate card in effect ([`money`]), under a per-day
//! lease; the daily schedule; and the reports — top videos, a video's days,
//! a creator's earnings — served over gRPC `revenue.v1` with
//! `grpc.health.v1` and server reflection.

#![deny(
    clippy::float_arithmetic,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

pub mod admin_writes;
pub mod archive;
pub mod cache;
pub mod config;
pub mod entity;
pub mod error;
pub mod grpc;
pub mod ledger;
pub mod metrics;
pub mod migration;
pub mod money;
pub mod reports;
pub mod rollups;
pub mod schedule;
pub mod settlement;
pub mod sql;
pub mod startup;
pub mod statements;
pub mod webhooks;

/// The tables partitioned by month on `day` on PostgreSQL (issue 19,
/// `common::partitions`): a settled day needs its month in both (its rows,
/// its transfers); the service makes the months ahead of today in both.
pub const MONTHLY_TABLES: [&str; 2] = ["daily_stats", "ledger_transfers"];

pub use config::Settings;
pub use startup::Application;
