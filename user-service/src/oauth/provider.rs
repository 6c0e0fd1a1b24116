//! One OpenID Connect provider: its discovery document, its signing keys,
//! and the validation of the ID tokens it issues.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::{OnceCell, RwLock};

use crate::error::UserError;

/// How a provider is configured.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The name in the URL path: `google`, `kakao`, or the operator's.
    pub name: String,
    /// The issuer URL; `{issuer}/.well-known/openid-configuration` is read.
    pub issuer: String,
    /// The client id registered with the provider (the ID token's `aud`).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
    /// Scopes asked for (`openid` first).
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back: the gateway's callback.
    pub redirect_uri: String,
}

/// The parts of the discovery document (OpenID Connect Discovery 1.0) used.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's JWK Set.
    pub jwks_uri: String,
}

/// The claims of an ID token the platform reads.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    /// The provider's stable id of the person.
    pub sub: String,
    /// The email, when the scope gave it.
    pub email: Option<String>,
    /// Whether the provider verified the email (a boolean, or the strings
    /// "true"/"false" some providers send).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub email_verified: bool,
    /// Full name.
    pub name: Option<String>,
    /// Kakao's display name.
    pub nickname: Option<String>,
    /// Must equal the nonce of the authorization request.
    pub nonce: Option<String>,
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<B>::deserialize(d)? {
        Some(B::Bool(b)) => b,
        Some(B::Text(t)) => t.eq_ignore_ascii_case("true"),
        None => false,
    })
}

/// Signature algorithms accepted on ID tokens: asymmetric only (never
/// `none` or a shared-secret HMAC).
const ACCEPTED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// A provider with its discovery document and keys cached.
pub struct Provider {
    /// Its configuration.
    pub config: ProviderConfig,
    http: reqwest::Client,
    metadata: OnceCell<Metadata>,
    keys: RwLock<Option<(Instant, JwkSet)>>,
}

/// A provider's keys are refetched at most this often (for an unknown
/// `kid`, after a key rotation).
const KEY_REFETCH: Duration = Duration::from_secs(10);

impl Provider {
    /// A provider reached through `http`; nothing is fetched until first
    /// used, so start-up does not depend on the provider.
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            metadata: OnceCell::new(),
            keys: RwLock::new(None),
        }
    }

    /// The discovery document, fetched once.
    ///
    /// # Errors
    /// The provider is unreachable, or its document names another issuer.
    pub async fn metadata(&self) -> Result<&Metadata, UserError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let metadata: Metadata = self.get_json(&url).await?;
                if metadata.issuer != self.config.issuer {
                    return Err(UserError::OAuthProvider(format!(
                        "{} announces issuer {}",
                        self.config.issuer, metadata.issuer
                    )));
                }
                Ok(metadata)
            })
            .await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, UserError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| UserError::OAuthProvider(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(UserError::OAuthProvider(format!(
                "{url}: HTTP {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| UserError::OAuthProvider(format!("{url}: {e}")))
    }

    /// The key named `kid` (or the only key, when the token names none).
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, UserError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some((_, set)) = self.keys.read().await.as_ref()
            && let Some(jwk) = find(set)
        {
            return DecodingKey::from_jwk(&jwk)
                .map_err(|e| UserError::InvalidIdToken(e.to_string()));
        }
        let mut keys = self.keys.write().await;
        let stale = keys
            .as_ref()
            .is_none_or(|(fetched, _)| fetched.elapsed() >= KEY_REFETCH);
        if stale {
            let uri = self.metadata().await?.jwks_uri.clone();
            let set: JwkSet = self.get_json(&uri).await?;
            *keys = Some((Instant::now(), set));
        }
        let jwk = keys
            .as_ref()
            .and_then(|(_, set)| find(set))
            .ok_or_else(|| UserError::InvalidIdToken("signed with an unknown key".into()))?;
        DecodingKey::from_jwk(&jwk).map_err(|e| UserError::InvalidIdToken(e.to_string()))
    }

    /// Validates an ID token (OpenID Connect Core §3.1.3.7): an accepted
    /// asymmetric algorithm, the signature against the provider's JWK Set,
    /// `iss` = the issuer, `aud` = our client id, `exp` in the future (60 s
    /// leeway), and `nonce` = the nonce of the authorization request.
    ///
    /// # Errors
    /// [`UserError::InvalidIdToken`] saying which check failed.
    pub async fn validate(&self, id_token: &str, nonce: &str) -> Result<IdClaims, UserError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| UserError::InvalidIdToken(format!("malformed: {e}")))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(UserError::InvalidIdToken(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
            .map_err(|e| UserError::InvalidIdToken(e.to_string()))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(UserError::InvalidIdToken("nonce does not match".into()));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::tokens::keys::SigningKey;

    const ISSUER: &str = "https://id.example";

    fn key() -> SigningKey {
        SigningKey::from_pem(&SigningKey::generate_pem().expect("pem")).expect("key")
    }

    /// A provider whose discovery document and keys are already cached, so
    /// no request leaves the test.
    fn provider(key: &SigningKey) -> Provider {
        let p = Provider::new(
            ProviderConfig {
                name: "test".into(),
                issuer: ISSUER.into(),
                client_id: "our-client".into(),
                client_secret: SecretString::from("s"),
                scopes: vec!["openid".into()],
                redirect_uri: "http://127.0.0.1/callback".into(),
            },
            reqwest::Client::new(),
        );
        p.metadata
            .set(Metadata {
                issuer: ISSUER.into(),
                authorization_endpoint: format!("{ISSUER}/auth"),
                token_endpoint: format!("{ISSUER}/token"),
                jwks_uri: "http://127.0.0.1:9/jwks".into(),
            })
            .expect("empty");
        let set: JwkSet = serde_json::from_value(serde_json::to_value(key.jwks()).expect("json"))
            .expect("a JWK Set");
        *p.keys.try_write().expect("unlocked") = Some((Instant::now(), set));
        p
    }

    fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).expect("signed")
    }

    fn claims() -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": ISSUER, "aud": "our-client", "sub": "person-1", "exp": now + 300,
            "iat": now, "nonce": "n-1", "email": "p@example.com", "email_verified": "true"
        })
    }

    #[tokio::test]
    async fn id_tokens_are_checked_claim_by_claim() {
        let k = key();
        let p = provider(&k);
        let good = sign(Algorithm::EdDSA, k.kid(), k.encoding_key(), &claims());
        let ok = p.validate(&good, "n-1").await.expect("valid");
        assert_eq!(ok.sub, "person-1");
        assert!(ok.email_verified, "\"true\" as a string counts");

        let refused = |changes: serde_json::Value| {
            let mut c = claims();
            for (name, value) in changes.as_object().expect("object") {
                c[name] = value.clone();
            }
            sign(Algorithm::EdDSA, k.kid(), k.encoding_key(), &c)
        };
        let past = chrono::Utc::now().timestamp() - 3_600;
        for (what, token, nonce) in [
            (
                "another issuer",
                refused(json!({"iss": "https://evil.example"})),
                "n-1",
            ),
            (
                "another audience",
                refused(json!({"aud": "their-client"})),
                "n-1",
            ),
            ("expired", refused(json!({"exp": past})), "n-1"),
            ("another nonce", good.clone(), "n-2"),
        ] {
            assert!(
                matches!(
                    p.validate(&token, nonce).await,
                    Err(UserError::InvalidIdToken(_))
                ),
                "{what} must be refused"
            );
        }
        // Signed by another key under the same kid: the signature fails.
        let other = key();
        let forged = sign(Algorithm::EdDSA, k.kid(), other.encoding_key(), &claims());
        assert!(matches!(
            p.validate(&forged, "n-1").await,
            Err(UserError::InvalidIdToken(_))
        ));
        // A shared-secret algorithm is never accepted.
        let hmac = sign(
            Algorithm::HS256,
            k.kid(),
            &EncodingKey::from_secret(b"guess"),
            &claims(),
        );
        assert!(matches!(
            p.validate(&hmac, "n-1").await,
            Err(UserError::InvalidIdToken(_))
        ));
        // An unknown kid (keys fetched just now, so no refetch) is refused.
        let unknown = sign(Algorithm::EdDSA, "no-such-kid", k.encoding_key(), &claims());
        assert!(matches!(
            p.validate(&unknown, "n-1").await,
            Err(UserError::InvalidIdToken(_))
        ));
    }
}
