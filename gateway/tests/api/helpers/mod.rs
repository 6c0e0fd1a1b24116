//! The test harness, by job: [`app`] starts the platform (through
//! `stack::Stack::build`, the path the `stack` binary takes) on port 0 over
//! fresh databases; [`client`] calls it over HTTP as a frontend would;
//! [`fixtures`] makes the videos, plays, imports and settlements tests need;
//! [`faults`] stops, kills and restarts services and forges tokens;
//! [`money`] what the ledger, statement and webhook tests share.

mod app;
mod client;
mod faults;
mod fixtures;
mod money;

pub use app::*;
pub use client::*;
pub use faults::*;
pub use fixtures::history_csv;
pub use money::*;
