//! Generated gRPC code for every service of the platform (SPEC §9).
//!
//! One module per package and version: [`user::v1`], [`streaming::v1`], [`revenue::v1`]. [`FILE_DESCRIPTOR_SET`]
//! holds every compiled file, for server reflection.

/// The encoded `FileDescriptorSet` of every `.proto` file in this crate.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// `user.v1`: accounts, passwords, tokens, the JWK Set.
pub mod user {
    /// Version 1 of the user API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("user.v1");
    }
}

/// `streaming.v1`: videos, ads, play and pause, counts.
pub mod streaming {
    /// Version 1 of the streaming API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("streaming.v1");
    }
}

/// `revenue.v1`: settlement runs, statistics, earnings.
pub mod revenue {
    /// Version 1 of the revenue API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("revenue.v1");
    }
}

pub use prost_types;
