//! Access tokens (SPEC §3): the claims, the roles, and verification against
//! a JWK Set of Ed25519 public keys.
//!
//! Only `EdDSA` is accepted: a token with any other `alg` (`none`, `HS256`
//! signed with the public key bytes, …), a wrong `iss` or `aud`, an unknown
//! `kid`, a bad signature or a past `exp` is rejected.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The default `iss` of access tokens (`JWT_ISSUER`).
pub const DEFAULT_ISSUER: &str = "streaming-settlement-platform";
/// The default `aud` of access tokens (`JWT_AUDIENCE`).
pub const DEFAULT_AUDIENCE: &str = "streaming-settlement-api";

/// Seconds of clock skew tolerated on `exp`.
pub const LEEWAY_SECONDS: u64 = 5;

/// A user's role (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watches videos.
    Viewer,
    /// Uploads videos and is paid for them.
    Creator,
    /// Operates the platform; made only by an operator.
    Admin,
}

impl Role {
    /// The wire name: `viewer`, `creator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Creator => "creator",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Role::Viewer),
            "creator" => Some(Role::Creator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token (SPEC §3). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer; must equal the configured `JWT_ISSUER`.
    pub iss: String,
    /// Audience; must equal the configured `JWT_AUDIENCE`.
    pub aud: String,
    /// The user id, as a decimal string.
    pub sub: String,
    /// The user's role.
    pub role: Role,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique token id (a UUID).
    pub jti: String,
}

impl AccessClaims {
    /// The user id in `sub`.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when `sub` is not an integer.
    pub fn user_id(&self) -> Result<i64, TokenError> {
        self.sub
            .parse()
            .map_err(|_| TokenError::Invalid("sub is not a user id".into()))
    }
}

/// Why a token was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header names an algorithm other than EdDSA.
    #[error("malformed token")]
    Malformed,
    /// Signed with a key this verifier does not know; a caller may refetch
    /// the JWK Set and try again.
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    /// Bad signature, expired, wrong issuer or audience, missing claim.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// A JWK Set document (RFC 7517), as much of it as Ed25519 keys need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 8037: `kty` `OKP`, `crv` `Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type, `OKP`.
    pub kty: String,
    /// Curve, `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key id: the RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `sig`.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// How many verified tokens a [`TokenVerifier`] remembers.
pub const VERIFIED_CACHE_SIZE: usize = 8_192;

/// Verifies access tokens against the Ed25519 keys of a JWK Set.
///
/// A token that verified once is remembered (by its exact text, up to
/// [`VERIFIED_CACHE_SIZE`] of them) until its `exp`, so that a client's
/// repeated calls cost one signature check, not one each: the same text
/// under the same keys can only verify the same way again. Clones share the
/// memory; a verifier built from another key set starts empty.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    verified: std::sync::Arc<quick_cache::sync::Cache<String, AccessClaims>>,
}

impl TokenVerifier {
    /// A verifier for tokens from `issuer` to `audience`, signed by a key of
    /// `jwks`. Keys of other types are skipped.
    pub fn new(jwks: &JwkSet, issuer: &str, audience: &str) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                DecodingKey::from_ed_components(&k.x)
                    .ok()
                    .map(|key| (k.kid.clone(), key))
            })
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Self {
            keys,
            validation,
            verified: std::sync::Arc::new(quick_cache::sync::Cache::new(VERIFIED_CACHE_SIZE)),
        }
    }

    /// Whether a key with this id is known.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Verifies `token` and returns its claims.
    ///
    /// # Errors
    /// See [`TokenError`].
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, unix_now())
    }

    /// [`verify`](Self::verify), with `now` (Unix seconds) deciding whether
    /// a remembered token has expired since.
    ///
    /// # Errors
    /// See [`TokenError`].
    pub fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, TokenError> {
        if let Some(claims) = self.verified.get(token) {
            if claims.exp.saturating_add(LEEWAY_SECONDS as i64) >= now {
                return Ok(claims);
            }
            self.verified.remove(token);
            return Err(TokenError::Invalid("ExpiredSignature".into()));
        }
        let claims = self.verify_signature(token)?;
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// The full check: header, key, signature, claims.
    fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.ok_or(TokenError::Malformed)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey(kid))?;
        decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
