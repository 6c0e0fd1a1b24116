//! Argon2id password hashing (SPEC §3) on a pool of threads of its own.
//!
//! Argon2id takes 19 MiB and a core for tens of milliseconds per call. Each
//! of the pool's threads (one per core) keeps its 19 MiB working memory for
//! good and hashes into it, so a burst of logins neither runs more hashes at
//! once than there are cores nor churns the allocator with 19 MiB blocks:
//! allocating one per call left hundreds of MiB resident after a burst
//! (glibc's arenas keep what fragmentation strands). Calls wait in a bounded
//! line; one past it is refused at once ([`UserError::Busy`]: 503 with
//! `retry-after`) rather than left to time out at the gateway. A hash
//! already running when its caller gives up runs to its end on its thread,
//! so cancelled calls never add hashes; one whose caller left before its
//! turn is skipped.

use std::sync::{Arc, Mutex, mpsc};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use secrecy::{ExposeSecret, SecretString};

use crate::error::UserError;

/// Calls that may wait in line per core; the pool has one thread per core.
/// A hash takes 25–50 ms here, so a full line drains in 1.2–2.4 s, well
/// inside the gateway's 5 s deadline: whatever is let in is answered.
pub const QUEUE_PER_CORE: usize = 48;

/// The most Argon2 memory a stored hash may ask for, in 1 KiB blocks
/// (256 MiB); a hash asking more never verifies.
const MAX_BLOCKS: usize = 256 * 1024;

/// The most passes a stored hash may ask for; a hash asking more never
/// verifies.
const MAX_PASSES: u32 = 16;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// One computation, given its thread's working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hashing threads and their line. Cloning shares them; the threads end
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    line: mpsc::SyncSender<Job>,
}

impl Default for Hasher {
    /// One thread per core, [`QUEUE_PER_CORE`] places in line per thread.
    fn default() -> Self {
        Self::start(cores(), QUEUE_PER_CORE)
    }
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one) with `queue_per_thread`
    /// places in line for each.
    pub fn start(threads: usize, queue_per_thread: usize) -> Self {
        let threads = threads.max(1);
        let (line, jobs) = mpsc::sync_channel::<Job>(threads * queue_per_thread);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            let started = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work_through(&jobs));
            if let Err(e) = started {
                tracing::error!(error = %e, "a password-hashing thread did not start");
            }
        }
        Self { line }
    }

    /// Runs `work` on a hashing thread with that thread's memory; a job whose
    /// caller has gone by the time its turn comes is skipped.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, UserError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            if !done.is_closed() {
                let _ = done.send(work(memory));
            }
        });
        match self.line.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => return Err(UserError::Busy),
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(UserError::Internal(anyhow::anyhow!(
                    "the password-hashing threads stopped"
                )));
            }
        }
        result
            .await
            .map_err(|_| UserError::Internal(anyhow::anyhow!("a password-hashing thread stopped")))
    }

    /// Hashes `password` with Argon2id (the crate's defaults: 19 MiB, 2
    /// passes, 1 lane, 32 bytes) and a random salt; returns the PHC string.
    ///
    /// # Errors
    /// [`UserError::Busy`] when the line is full; internal if hashing itself
    /// fails.
    pub async fn hash_password(&self, password: SecretString) -> Result<String, UserError> {
        self.run(move |memory| phc_of(password.expose_secret().as_bytes(), memory))
            .await?
            .map_err(UserError::Internal)
    }

    /// Whether `candidate` matches the PHC string `hash`. With `hash` `None`
    /// (unknown email) it still spends the time of one verification against
    /// a dummy hash, so that timing does not tell which of the two was wrong.
    ///
    /// # Errors
    /// [`UserError::Busy`] when the line is full; internal if a hashing
    /// thread stopped.
    pub async fn verify_password(
        &self,
        hash: Option<String>,
        candidate: SecretString,
    ) -> Result<bool, UserError> {
        self.run(move |memory| {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
            let matched = matches(&hash, candidate.expose_secret().as_bytes(), memory);
            known && matched
        })
        .await
    }
}

/// A hashing thread: takes jobs until the line closes. A job that panics
/// is logged and the thread goes on.
fn work_through(jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
        if ran.is_err() {
            tracing::error!("a password-hashing job panicked");
            memory = Vec::new();
        }
    }
}

/// The PHC string of `password` under Argon2id with the default
/// parameters and a random salt, computed in `memory`.
fn phc_of(password: &[u8], memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0_u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = Params::default();
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        (password, salt_bytes),
        &mut out,
        memory,
    )
    .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("{e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    Ok(phc.to_string())
}

/// Argon2 of `password` and `salt` into `out` under `params`, in `memory`
/// (grown to the size `params` need the first time).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    (password, salt): (&[u8], &[u8]),
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let memory = memory
        .get_mut(..blocks)
        .ok_or(argon2::Error::MemoryTooLittle)?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, memory)
}

/// Whether `candidate` matches the PHC string `hash`, with the parameters
/// the hash names; the comparison is constant-time (`Output`'s equality).
fn matches(hash: &str, candidate: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.block_count() > MAX_BLOCKS || params.t_cost() > MAX_PASSES {
        return false;
    }
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0_u8; expected.len()];
    compute(
        algorithm,
        version,
        params,
        (candidate, salt_bytes),
        &mut out,
        memory,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Argon2id hash of a random password nobody knows, with default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0/7ELMpJsqJSoYrp3zByN8ZYJZpcrTrhS3Wl7MpwULs";

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hash_verifies_only_its_password() {
        let hasher = Hasher::default();
        let hash = hasher
            .hash_password(SecretString::from("correct horse"))
            .await
            .unwrap_or_default();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let good = hasher
            .verify_password(Some(hash.clone()), SecretString::from("correct horse"))
            .await;
        let bad = hasher
            .verify_password(Some(hash), SecretString::from("wrong horse"))
            .await;
        assert!(matches!(good, Ok(true)));
        assert!(matches!(bad, Ok(false)));
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate_both_ways() {
        let hasher = Hasher::default();
        // A hash made by the crate's own hasher (as stored by earlier
        // versions) verifies here ...
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        let ok = hasher
            .verify_password(Some(theirs.clone()), SecretString::from("correct horse"))
            .await;
        assert!(matches!(ok, Ok(true)), "{theirs}");
        let no = hasher
            .verify_password(Some(theirs), SecretString::from("correct horsf"))
            .await;
        assert!(matches!(no, Ok(false)));
        // ... and ours verifies with the crate.
        let ours = hasher
            .hash_password(SecretString::from("correct horse"))
            .await
            .unwrap_or_default();
        let parsed = PasswordHash::new(&ours);
        assert!(parsed.is_ok_and(|p| {
            Argon2::default()
                .verify_password(b"correct horse", &p)
                .is_ok()
        }));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_past_the_line_is_refused_at_once() {
        let (threads, line) = (2, 8);
        let hasher = Hasher::start(threads, line);
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    hasher
                        .verify_password(Some(DUMMY_HASH.to_owned()), SecretString::from("guess"))
                        .await
                })
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
        assert_eq!(busy + answered, 100);
        // At most the line plus one taken by each thread got in.
        assert!(answered <= threads * line + threads, "{answered} answered");
        assert!(answered >= threads, "{answered} answered");
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let r = Hasher::default()
            .verify_password(None, SecretString::from("anything"))
            .await;
        assert!(matches!(r, Ok(false)));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn hashes_asking_too_much_or_malformed_never_verify() {
        let mut memory = Vec::new();
        let greedy = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0/7ELMpJsqJSoYrp3zByN8ZYJZpcrTrhS3Wl7MpwULs";
        let slow = "$argon2id$v=19$m=19456,t=1000,p=1$c29tZXNhbHRzb21lc2FsdA$0/7ELMpJsqJSoYrp3zByN8ZYJZpcrTrhS3Wl7MpwULs";
        assert!(!matches(greedy, b"x", &mut memory));
        assert!(!matches(slow, b"x", &mut memory));
        assert!(!matches("not a hash", b"x", &mut memory));
        assert!(memory.is_empty(), "nothing allocated for them");
    }
}
