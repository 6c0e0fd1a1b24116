//! Tokens (SPEC §3): the signing key and JWK Set ([`keys`]), access tokens
//! ([`access`]) and refresh tokens ([`refresh`]).

pub mod access;
pub mod entity;
pub mod keys;
pub mod refresh;
