//! The streaming service (SPEC §4, §5): videos and their ad slots, the ad
//! inventory, play and pause with watch sessions and resume, exact counting
//! of views, watch seconds and ad views on Redis (or in process), the
//! write-back to its database with a watermark, the daily counts the
//! settlement pulls, and the import of historical counts; served over gRPC
//! `streaming.v1` with `grpc.health.v1` and server reflection.
//!
//! [`startup::Application`] is what the binary, the all-in-one stack and the
//! tests start.

pub mod catalog;
pub mod clock;
pub mod config;
pub mod counting;
pub mod daily_counts;
pub mod entity;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod migration;
pub mod startup;

pub use config::Settings;
pub use startup::Application;
