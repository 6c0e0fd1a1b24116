//! Issuing access tokens (SPEC §3): EdDSA JWTs with `kid`, `iss`, `aud`,
//! `sub`, `role`, `iat`, `exp`, `jti`.

use chrono::Utc;
use common::auth::{AccessClaims, Role, TokenVerifier};
use jsonwebtoken::{Algorithm, Header, encode};

use super::keys::SigningKey;

/// Signs access tokens and verifies the ones callers present.
#[derive(Clone)]
pub struct AccessTokens {
    key: SigningKey,
    verifier: TokenVerifier,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
}

impl AccessTokens {
    /// Tokens from `issuer` for `audience`, valid `ttl_seconds`.
    pub fn new(key: SigningKey, issuer: String, audience: String, ttl_seconds: u32) -> Self {
        let verifier = TokenVerifier::new(&key.jwks(), &issuer, &audience);
        Self {
            key,
            verifier,
            issuer,
            audience,
            ttl_seconds: i64::from(ttl_seconds),
        }
    }

    /// A signed token for `user_id` with `role`, and its lifetime in seconds.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn issue(&self, user_id: i64, role: Role) -> anyhow::Result<(String, i64)> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + self.ttl_seconds,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid().to_owned());
        Ok((
            encode(&header, &claims, self.key.encoding_key())?,
            self.ttl_seconds,
        ))
    }

    /// The verifier for this service's own tokens.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The public keys as a JWK Set.
    pub fn jwks(&self) -> common::auth::JwkSet {
        self.key.jwks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_verifies_with_all_claims() {
        let key = SigningKey::generate_pem()
            .and_then(|pem| SigningKey::from_pem(&pem))
            .unwrap_or_else(|e| panic!("{e}"));
        let tokens = AccessTokens::new(key, "iss-x".into(), "aud-y".into(), 900);
        let (jwt, ttl) = tokens
            .issue(42, Role::Creator)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ttl, 900);
        let claims = tokens
            .verifier()
            .verify(&jwt)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.role, Role::Creator);
        assert_eq!(claims.iss, "iss-x");
        assert_eq!(claims.aud, "aud-y");
        assert_eq!(claims.exp - claims.iat, 900);
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let key = SigningKey::generate_pem()
            .and_then(|pem| SigningKey::from_pem(&pem))
            .unwrap_or_else(|e| panic!("{e}"));
        let tokens = AccessTokens::new(key, "iss".into(), "aud".into(), 60);
        let (jwt, _) = tokens
            .issue(7, Role::Viewer)
            .unwrap_or_else(|e| panic!("{e}"));
        let claims = tokens
            .verifier()
            .verify(&jwt)
            .unwrap_or_else(|e| panic!("{e}"));
        // Now served from memory...
        assert_eq!(tokens.verifier().verify(&jwt), Ok(claims.clone()));
        // ...but not past exp (plus the leeway).
        let later = claims.exp + common::auth::LEEWAY_SECONDS as i64 + 1;
        assert!(tokens.verifier().verify_at(&jwt, later).is_err());
        // A verifier over other keys remembers nothing of it.
        let other = SigningKey::generate_pem()
            .and_then(|pem| SigningKey::from_pem(&pem))
            .unwrap_or_else(|e| panic!("{e}"));
        let verifier = common::auth::TokenVerifier::new(&other.jwks(), "iss", "aud");
        assert!(verifier.verify(&jwt).is_err());
    }
}
