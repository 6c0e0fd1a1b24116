//! Standard Webhooks signatures (SPEC §11.5): the secret is
//! `whsec_<base64 key>`; a message is signed as
//! `v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret's text.
const PREFIX: &str = "whsec_";
/// Bytes of a generated key (Standard Webhooks: 24 to 64).
const KEY_BYTES: usize = 32;

/// An endpoint's signing key. Its `Debug` shows nothing of it: secrets are
/// never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random key.
    pub fn generate() -> Self {
        let mut key = vec![0_u8; KEY_BYTES];
        rand::Rng::fill(&mut rand::rng(), key.as_mut_slice());
        Self(key)
    }

    /// A secret from its text, `whsec_<base64 key>`.
    ///
    /// # Errors
    /// Not that shape.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or("a webhook secret starts with whsec_")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "a webhook secret's key is base64")?;
        if key.is_empty() {
            return Err("a webhook secret's key is empty");
        }
        Ok(Self(key))
    }

    /// Its text, `whsec_<base64 key>`: shown once, when the endpoint is
    /// registered, and stored.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` of a message: `v1,<base64 HMAC-SHA256 of
    /// "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC accepts keys of every length")
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_reference_message() {
        // Computed with the `standardwebhooks` package (1.1.0, PyPI):
        // Webhook(secret).sign(id, 1614265330, body).
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_generated_secret_round_trips_and_never_shows_in_debug() {
        let secret = Secret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(Secret::parse(&text).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        assert!(Secret::parse("whsec_!!").is_err());
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
