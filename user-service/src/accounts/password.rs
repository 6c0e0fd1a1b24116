//! Argon2id password hashing (SPEC §3), off the async threads.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Argon2id takes 19 MiB and a core for tens of milliseconds per call: at
/// most one call per core runs at a time, the rest wait their turn. Without
/// this bound a burst of logins would start hundreds of hashes at once
/// (seen: 1.6 GiB resident during 21,000 sign-ups) and could exhaust memory.
static HASHING: std::sync::LazyLock<Semaphore> = std::sync::LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
});

/// Runs one Argon2 computation on the blocking pool, within [`HASHING`].
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let _turn = HASHING.acquire().await?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Hashes `password` with Argon2id (the crate's defaults: 19 MiB, 2 passes,
/// 1 lane) and a random salt; returns the PHC string.
///
/// # Errors
/// Only if hashing itself fails.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Whether `candidate` matches the PHC string `hash`. With `hash` `None`
/// (unknown email) it still spends the time of one verification against a
/// dummy hash, so that timing does not tell which of the two was wrong.
///
/// # Errors
/// Only if the blocking task fails.
pub async fn verify_password(
    hash: Option<String>,
    candidate: SecretString,
) -> anyhow::Result<bool> {
    bounded(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(candidate.expose_secret().as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await
}

/// Argon2id hash of a random password nobody knows, with default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0/7ELMpJsqJSoYrp3zByN8ZYJZpcrTrhS3Wl7MpwULs";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verifies_only_its_password() {
        let hash = hash_password(SecretString::from("correct horse"))
            .await
            .unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        let good = verify_password(Some(hash.clone()), SecretString::from("correct horse")).await;
        let bad = verify_password(Some(hash), SecretString::from("wrong horse")).await;
        assert!(matches!(good, Ok(true)));
        assert!(matches!(bad, Ok(false)));
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let r = verify_password(None, SecretString::from("anything")).await;
        assert!(matches!(r, Ok(false)));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
