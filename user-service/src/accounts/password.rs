//! Argon2id password hashing (SPEC §3), off the async threads.

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{
    Arc, LazyLock,
    atomic::{AtomicUsize, Ordering},
};
use tokio::sync::Semaphore;

use crate::error::UserError;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// Argon2id takes 19 MiB and a core for tens of milliseconds per call: at
/// most one call per core runs at a time, the rest wait their turn. Without
/// this bound a burst of logins would start hundreds of hashes at once
/// (seen: 1.6 GiB resident during 21,000 sign-ups) and could exhaust memory.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(cores())));

/// Calls waiting for, or holding, a turn.
static IN_LINE: AtomicUsize = AtomicUsize::new(0);

/// Calls that may wait for a turn per core; one more is refused at once
/// ([`UserError::Busy`], 503 with `retry-after`) rather than left to time
/// out at the gateway. 16 a core drain in well under a second.
pub const QUEUE_PER_CORE: usize = 16;

/// A place in line, given back when dropped.
struct Place;

impl Drop for Place {
    fn drop(&mut self) {
        IN_LINE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs one Argon2 computation on the blocking pool, within [`HASHING`].
/// The turn and the place in line belong to the computation itself, not to
/// the caller: a caller that gives up (its request timed out) leaves the
/// computation holding them until it ends, so cancelled calls can never
/// start more hashes at once than there are cores.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, UserError> {
    let cores = cores();
    if IN_LINE.fetch_add(1, Ordering::AcqRel) >= cores * (1 + QUEUE_PER_CORE) {
        IN_LINE.fetch_sub(1, Ordering::AcqRel);
        return Err(UserError::Busy);
    }
    let place = Place;
    let turn = HASHING
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| UserError::Internal(e.into()))?;
    tokio::task::spawn_blocking(move || {
        let _held = (turn, place);
        work()
    })
    .await
    .map_err(|e| UserError::Internal(e.into()))
}

/// Hashes `password` with Argon2id (the crate's defaults: 19 MiB, 2 passes,
/// 1 lane) and a random salt; returns the PHC string.
///
/// # Errors
/// [`UserError::Busy`] when too many hashes wait already; internal if
/// hashing itself fails.
pub async fn hash_password(password: SecretString) -> Result<String, UserError> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| UserError::Internal(anyhow::anyhow!("hashing failed: {e}")))
    })
    .await?
}

/// Whether `candidate` matches the PHC string `hash`. With `hash` `None`
/// (unknown email) it still spends the time of one verification against a
/// dummy hash, so that timing does not tell which of the two was wrong.
///
/// # Errors
/// [`UserError::Busy`] when too many hashes wait already; internal if the
/// blocking task fails.
pub async fn verify_password(
    hash: Option<String>,
    candidate: SecretString,
) -> Result<bool, UserError> {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_past_the_queue_is_refused_at_once_and_cancelled_calls_keep_their_turn() {
        let calls: Vec<_> = (0..200)
            .map(|_| {
                tokio::spawn(verify_password(
                    Some(DUMMY_HASH.to_owned()),
                    SecretString::from("guess"),
                ))
            })
            .collect();
        let mut busy = 0;
        let mut answered = 0;
        for call in calls {
            match call.await {
                Ok(Err(UserError::Busy)) => busy += 1,
                Ok(Ok(false)) => answered += 1,
                _ => {}
            }
        }
        let line = cores() * (1 + QUEUE_PER_CORE);
        assert_eq!(busy + answered, 200);
        assert!(busy >= 200 - line, "{busy} refused, line of {line}");
        assert!(answered >= cores(), "{answered} answered");
        // Callers that give up leave their hashes holding the turns.
        let given_up: Vec<_> = (0..cores() * 3)
            .map(|_| {
                tokio::spawn(verify_password(
                    Some(DUMMY_HASH.to_owned()),
                    SecretString::from("guess"),
                ))
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for call in &given_up {
            call.abort();
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        assert!(
            HASHING.available_permits() < cores() || IN_LINE.load(Ordering::Acquire) == 0,
            "a running hash keeps its turn after its caller left"
        );
        assert!(IN_LINE.load(Ordering::Acquire) <= cores());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let r = verify_password(None, SecretString::from("anything")).await;
        assert!(matches!(r, Ok(false)));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
