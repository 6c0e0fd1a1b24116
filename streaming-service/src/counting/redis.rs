//! The Redis counter store (SPEC §5): one Lua script per step. Keys of a
//! video share its hash tag (`{v<id>}`), so each script touches one slot
//! and runs unchanged on Redis Cluster; the dirty and in-flight sets share
//! the `{ctl}` tag.
//!
//! Key layout under the configured prefix `P`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{v<id>}:c:<day>` | hash | `views`, `watch`, `ads` of the day |
//! | `P:{v<id>}:p:<day>` | hash | a taken batch: the counts, `token` and `seq` |
//! | `P:{v<id>}:q:<day>` | string | the bucket's last batch sequence (kept [`SEQUENCE_TTL_MS`]) |
//! | `P:{v<id>}:dd:<viewer>` | string | view dedupe: until (Unix ms) |
//! | `P:{v<id>}:ad:<viewer>` | hash | slot → ad dedupe until (Unix ms) |
//! | `P:{v<id>}:s:<session>` | hash | `viewer`, `pos`, `t0` (play time), `w` (watched s), `a` (ad views), `t` (last report, for scripts before `t0`) |
//! | `P:{v<id>}:r:<viewer>` | string | resume position |
//! | `P:{ctl}:dirty`, `P:{ctl}:inflight` | sets | `<video>:<day>` members |

use std::collections::HashMap;

use deadpool_redis::{Runtime, cluster};
use redis::{ErrorKind, FromRedisValue, Script, ScriptInvocation, ServerErrorKind};

use super::{
    AD_SLOT_INTERVAL_SECONDS, Bucket, CounterError, CounterStore, Counts, NotCounted, PauseEvent,
    PauseOutcome, PlayEvent, PlayOutcome, RESUME_TTL_MS, Taken, WATCH_SLACK_SECONDS,
};

/// How long a bucket's last batch sequence is kept, milliseconds: one
/// hour. The sequence is Redis's clock; the kept value only matters when
/// that clock steps back between two takes of a bucket, and a bucket taken
/// again after an hour has a clock far ahead of it.
pub const SEQUENCE_TTL_MS: i64 = 3_600_000;

/// A pool of single-node or cluster connections.
enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(cluster::Pool),
}

/// Counters in Redis or a Redis Cluster.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    play: Script,
    pause: Script,
    take: Script,
    release: Script,
}

fn store_error(e: impl std::fmt::Display) -> CounterError {
    CounterError(e.to_string())
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://host:port/db`), keys under
    /// `prefix`.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn single(url: &str, pool_size: usize, prefix: &str) -> Result<Self, CounterError> {
        let mut config = deadpool_redis::Config::from_url(url);
        config.pool = Some(deadpool_redis::PoolConfig::new(pool_size));
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(store_error)?;
        Ok(Self::with_pool(Pool::Single(pool), prefix))
    }

    /// A store on the Redis Cluster reachable at any of `urls`.
    ///
    /// # Errors
    /// A malformed URL.
    pub fn cluster(
        urls: Vec<String>,
        pool_size: usize,
        prefix: &str,
    ) -> Result<Self, CounterError> {
        let mut config = cluster::Config::from_urls(urls);
        config.pool = Some(deadpool_redis::PoolConfig::new(pool_size));
        let pool = config
            .create_pool(Some(Runtime::Tokio1))
            .map_err(store_error)?;
        Ok(Self::with_pool(Pool::Cluster(pool), prefix))
    }

    fn with_pool(pool: Pool, prefix: &str) -> Self {
        Self {
            pool,
            prefix: prefix.to_owned(),
            play: Script::new(include_str!("lua/play.lua")),
            pause: Script::new(include_str!("lua/pause.lua")),
            take: Script::new(include_str!("lua/take.lua")),
            release: Script::new(include_str!("lua/release.lua")),
        }
    }

    /// `PING`.
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn ping(&self) -> Result<(), CounterError> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn video_key(&self, video_id: i64, rest: &str) -> String {
        format!("{}:{{v{video_id}}}:{rest}", self.prefix)
    }

    fn counters_key(&self, bucket: Bucket) -> String {
        self.video_key(
            bucket.video_id,
            &format!("c:{}", bucket.day.format("%Y-%m-%d")),
        )
    }

    fn pending_key(&self, bucket: Bucket) -> String {
        self.video_key(
            bucket.video_id,
            &format!("p:{}", bucket.day.format("%Y-%m-%d")),
        )
    }

    fn sequence_key(&self, bucket: Bucket) -> String {
        self.video_key(
            bucket.video_id,
            &format!("q:{}", bucket.day.format("%Y-%m-%d")),
        )
    }

    fn set_key(&self, name: &str) -> String {
        format!("{}:{{ctl}}:{name}", self.prefix)
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        call: &ScriptInvocation<'_>,
    ) -> Result<T, CounterError> {
        match &self.pool {
            Pool::Single(pool) => {
                let mut conn = pool.get().await.map_err(store_error)?;
                call.invoke_async(&mut conn).await.map_err(store_error)
            }
            Pool::Cluster(pool) => {
                let mut conn = pool.get().await.map_err(store_error)?;
                call.invoke_async(&mut conn).await.map_err(store_error)
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CounterError> {
        match &self.pool {
            Pool::Single(pool) => {
                let mut conn = pool.get().await.map_err(store_error)?;
                cmd.query_async(&mut conn).await.map_err(store_error)
            }
            Pool::Cluster(pool) => {
                let mut conn = pool.get().await.map_err(store_error)?;
                cmd.query_async(&mut conn).await.map_err(store_error)
            }
        }
    }

    /// Runs a counting script between two dirty marks of its bucket, in one
    /// pipeline (one round trip on a single node). The mark before the
    /// script means a crash after the increment never hides the bucket from
    /// the write-back; the mark after means a write-back that took the first
    /// mark while the script was on its way cannot leave it unmarked. On a
    /// cluster the three go one after the other (the dirty set lives in
    /// another slot).
    async fn marked_invoke<T: FromRedisValue>(
        &self,
        bucket: Bucket,
        call: &ScriptInvocation<'_>,
    ) -> Result<T, CounterError> {
        let dirty = self.set_key("dirty");
        let member = bucket.member();
        let mut pipe = redis::pipe();
        pipe.cmd("SADD")
            .arg(&dirty)
            .arg(&member)
            .ignore()
            .invoke_script(call)
            .cmd("SADD")
            .arg(&dirty)
            .arg(&member)
            .ignore();
        let reply: redis::RedisResult<(T,)> = match &self.pool {
            Pool::Single(pool) => {
                let mut conn = pool.get().await.map_err(store_error)?;
                match pipe.query_async(&mut conn).await {
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        call.load_async(&mut conn).await.map_err(store_error)?;
                        pipe.query_async(&mut conn).await
                    }
                    other => other,
                }
            }
            Pool::Cluster(_) => {
                // A cluster pipeline may not cross slots: three round trips.
                self.query::<i64>(redis::cmd("SADD").arg(&dirty).arg(&member))
                    .await?;
                let value: T = self.invoke(call).await?;
                self.query::<i64>(redis::cmd("SADD").arg(&dirty).arg(&member))
                    .await?;
                Ok((value,))
            }
        };
        reply.map(|(value,)| value).map_err(store_error)
    }
}

#[async_trait::async_trait]
impl CounterStore for RedisStore {
    fn pool_use(&self) -> Option<common::metrics::PoolUse> {
        Some(common::metrics::PoolUse::of_deadpool(match &self.pool {
            Pool::Single(pool) => pool.status(),
            Pool::Cluster(pool) => pool.status(),
        }))
    }

    async fn ping(&self) -> Result<(), CounterError> {
        RedisStore::ping(self).await
    }

    async fn play(&self, e: &PlayEvent) -> Result<PlayOutcome, CounterError> {
        let bucket = Bucket {
            video_id: e.video_id,
            day: e.day,
        };
        let mut call = self.play.prepare_invoke();
        call.key(self.video_key(e.video_id, &format!("dd:{}", e.viewer)))
            .key(self.counters_key(bucket))
            .key(self.video_key(e.video_id, &format!("r:{}", e.viewer)))
            .key(self.video_key(e.video_id, &format!("s:{}", e.session_id)))
            .arg(u8::from(e.owner))
            .arg(e.now_ms)
            .arg(e.window_ms)
            .arg(e.duration_seconds)
            .arg(&e.viewer)
            .arg(e.session_ttl_ms);
        let (reason, resume): (String, i32) = self.marked_invoke(bucket, &call).await?;
        let not_counted = match reason.as_str() {
            "" => None,
            "owner" => Some(NotCounted::Owner),
            "duplicate" => Some(NotCounted::Duplicate),
            other => return Err(CounterError(format!("play script said {other:?}"))),
        };
        Ok(PlayOutcome {
            not_counted,
            resume_position_seconds: resume,
        })
    }

    async fn pause(&self, e: &PauseEvent) -> Result<Option<PauseOutcome>, CounterError> {
        let bucket = Bucket {
            video_id: e.video_id,
            day: e.day,
        };
        let mut call = self.pause.prepare_invoke();
        call.key(self.video_key(e.video_id, &format!("s:{}", e.session_id)))
            .key(self.counters_key(bucket))
            .key(self.video_key(e.video_id, &format!("r:{}", e.viewer)))
            .key(self.video_key(e.video_id, &format!("ad:{}", e.viewer)))
            .arg(&e.viewer)
            .arg(e.position_seconds)
            .arg(e.now_ms)
            .arg(e.duration_seconds)
            .arg(u8::from(e.owner))
            .arg(u8::from(e.ads_served))
            .arg(e.window_ms)
            .arg(e.session_ttl_ms)
            .arg(RESUME_TTL_MS)
            .arg(AD_SLOT_INTERVAL_SECONDS)
            .arg(WATCH_SLACK_SECONDS);
        let reply: Vec<i64> = self.marked_invoke(bucket, &call).await?;
        match reply.as_slice() {
            [-1] => Ok(None),
            &[added, ads, position] => Ok(Some(PauseOutcome {
                watched_seconds_added: i32::try_from(added).map_err(store_error)?,
                ad_views_counted: i32::try_from(ads).map_err(store_error)?,
                position_seconds: i32::try_from(position).map_err(store_error)?,
            })),
            other => Err(CounterError(format!("pause script said {other:?}"))),
        }
    }

    async fn dirty(&self) -> Result<Vec<Bucket>, CounterError> {
        let members: Vec<String> = self
            .query(
                redis::cmd("SUNION")
                    .arg(self.set_key("dirty"))
                    .arg(self.set_key("inflight")),
            )
            .await?;
        let mut buckets: Vec<Bucket> = members
            .iter()
            .filter_map(|m| Bucket::from_member(m))
            .collect();
        buckets.sort_unstable();
        Ok(buckets)
    }

    async fn take(&self, bucket: Bucket, token: &str) -> Result<Option<Taken>, CounterError> {
        self.query::<i64>(
            redis::cmd("SMOVE")
                .arg(self.set_key("dirty"))
                .arg(self.set_key("inflight"))
                .arg(bucket.member()),
        )
        .await?;
        let mut call = self.take.prepare_invoke();
        call.key(self.counters_key(bucket))
            .key(self.pending_key(bucket))
            .key(self.sequence_key(bucket))
            .arg(token)
            .arg(SEQUENCE_TTL_MS);
        let fields: HashMap<String, String> = self.invoke(&call).await?;
        let Some(token) = fields.get("token") else {
            return Ok(None);
        };
        let count = |name: &str| -> Result<i64, CounterError> {
            fields
                .get(name)
                .map_or(Ok(0), |v| v.parse().map_err(store_error))
        };
        let seq = fields
            .get("seq")
            .map(|v| v.parse::<i64>().map_err(store_error))
            .transpose()?;
        Ok(Some(Taken {
            bucket,
            token: token.clone(),
            seq,
            counts: Counts {
                views: count("views")?,
                watch_seconds: count("watch")?,
                ad_views: count("ads")?,
            },
        }))
    }

    async fn release(&self, taken: &Taken) -> Result<(), CounterError> {
        let mut call = self.release.prepare_invoke();
        call.key(self.pending_key(taken.bucket))
            .key(self.counters_key(taken.bucket))
            .arg(&taken.token);
        let newer: i64 = self.invoke(&call).await?;
        if newer == 1 {
            // Counts arrived since the take, or another batch is pending:
            // keep the bucket marked.
            self.query::<i64>(
                redis::cmd("SMOVE")
                    .arg(self.set_key("inflight"))
                    .arg(self.set_key("dirty"))
                    .arg(taken.bucket.member()),
            )
            .await
            .map(|_| ())
        } else {
            self.forget(taken.bucket).await
        }
    }

    async fn forget(&self, bucket: Bucket) -> Result<(), CounterError> {
        self.query::<i64>(
            redis::cmd("SREM")
                .arg(self.set_key("inflight"))
                .arg(bucket.member()),
        )
        .await
        .map(|_| ())
    }
}
