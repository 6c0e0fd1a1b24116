//! The Ed25519 signing key of access tokens and its public JWK Set.
//!
//! The key is PKCS#8 PEM, from `USER_SIGNING_KEY` or `USER_SIGNING_KEY_FILE`,
//! or generated once into the key file when `USER_GENERATE_SIGNING_KEY` is on
//! (the all-in-one mode). Its `kid` is the RFC 7638 thumbprint of its JWK.

use std::path::Path;

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::auth::{Jwk, JwkSet};
use jsonwebtoken::EncodingKey;
use ring::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::config::Settings;

/// The private key that signs access tokens, with its public half.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    public_x: String,
    kid: String,
}

impl SigningKey {
    /// Parses a PKCS#8 PEM Ed25519 private key, its lines separated by
    /// newlines or, on one line (an env file), by literal `\n` escapes.
    ///
    /// # Errors
    /// Not PEM, not PKCS#8, or not Ed25519.
    pub fn from_pem(pem_text: &str) -> anyhow::Result<Self> {
        let pem_text = pem_text.trim().trim_matches('"').replace("\\n", "\n");
        let pem = pem::parse(pem_text).context("signing key is not PEM")?;
        let der = pem.contents();
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| anyhow::anyhow!("signing key is not an Ed25519 PKCS#8 key: {e}"))?;
        let public_x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der),
            kid: thumbprint(&public_x),
            public_x,
        })
    }

    /// A fresh random key, as PEM.
    ///
    /// # Errors
    /// Only if the system random source fails.
    pub fn generate_pem() -> anyhow::Result<String> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
        Ok(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            der.as_ref().to_vec(),
        )))
    }

    /// The key the settings name (see the module docs).
    ///
    /// # Errors
    /// No key configured and generation off; unreadable or bad key.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(pem) = &settings.user_signing_key {
            return Self::from_pem(pem.expose_secret());
        }
        let path = settings
            .user_signing_key_file
            .clone()
            .unwrap_or_else(|| settings.data_dir.join("jwt-ed25519.pem"));
        if path.exists() {
            let text = SecretString::from(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading signing key {}", path.display()))?,
            );
            return Self::from_pem(text.expose_secret());
        }
        if !settings.user_generate_signing_key {
            bail!(
                "no signing key: set USER_SIGNING_KEY or USER_SIGNING_KEY_FILE \
                 (or USER_GENERATE_SIGNING_KEY=true to create one)"
            );
        }
        let pem = SecretString::from(Self::generate_pem()?);
        write_private(&path, pem.expose_secret())?;
        tracing::info!(path = %path.display(), "generated a new signing key");
        Self::from_pem(pem.expose_secret())
    }

    /// The key id (`kid` header).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// For signing.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public JWK Set: this key alone.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: self.public_x.clone(),
                kid: self.kid.clone(),
                alg: Some("EdDSA".into()),
                use_: Some("sig".into()),
            }],
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 JWK: SHA-256 over the required members
/// in lexicographic order, base64url.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pem_with_a_stable_kid() {
        let pem = SigningKey::generate_pem().unwrap_or_default();
        let a = SigningKey::from_pem(&pem).map(|k| k.kid().to_owned()).ok();
        let b = SigningKey::from_pem(&pem).map(|k| k.kid().to_owned()).ok();
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn rfc_8037_thumbprint_example() {
        // RFC 8037 appendix A.3.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn a_key_on_one_line_with_escaped_newlines_is_the_same_key() {
        let pem = SigningKey::generate_pem().unwrap_or_default();
        let one_line = format!("\"{}\"", pem.trim().replace('\n', "\\n"));
        assert!(!one_line.contains('\n'));
        let a = SigningKey::from_pem(&pem).map(|k| k.kid().to_owned()).ok();
        let b = SigningKey::from_pem(&one_line)
            .map(|k| k.kid().to_owned())
            .ok();
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(SigningKey::from_pem("not a key").is_err());
    }
}
