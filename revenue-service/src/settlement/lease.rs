//! Per-day leases (SPEC §6: two runs of the same day never interleave,
//! even with several revenue-service replicas; SPEC §11.2: nor does a run
//! with a restatement or an adjustment that reaches its day): a row per day
//! naming its holder until it expires; the holder renews it while it works.
//! Everyone takes the days they need in ascending order, so two holders
//! never wait for each other.

use std::{sync::Mutex, time::Duration};

use chrono::{NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::sql::stmt;

/// The leases one piece of work (a run, an adjustment) holds.
pub(super) struct Leases {
    db: DatabaseConnection,
    holder: String,
    ttl: chrono::Duration,
    held: Mutex<Vec<NaiveDate>>,
}

impl Leases {
    /// No leases yet, for `holder` (unique to one piece of work); each
    /// lasts `ttl` unless renewed.
    pub(super) fn new(db: DatabaseConnection, holder: String, ttl: Duration) -> Self {
        Self {
            db,
            holder,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30)),
            held: Mutex::new(Vec::new()),
        }
    }

    fn held(&self) -> Vec<NaiveDate> {
        self.held.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Takes (or renews) the lease of `day` unless another holder's is live.
    pub(super) async fn try_take(&self, day: NaiveDate) -> Result<bool, DbErr> {
        let now = Utc::now();
        let result = self
            .db
            .execute(stmt(
                self.db.get_database_backend(),
                "INSERT INTO settlement_leases (day, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE settlement_leases.expires_at < $4 OR settlement_leases.holder = excluded.holder",
                vec![day.into(), self.holder.clone().into(), (now + self.ttl).into(), now.into()],
            ))
            .await?;
        let taken = result.rows_affected() == 1;
        if taken
            && let Ok(mut held) = self.held.lock()
            && !held.contains(&day)
        {
            held.push(day);
        }
        Ok(taken)
    }

    /// Takes the leases of `days` (ascending), waiting for each while
    /// another holder has it, at most `patience` in all; `false` when the
    /// patience ran out (the leases taken so far stay held).
    pub(super) async fn take_waiting(
        &self,
        days: &[NaiveDate],
        patience: Duration,
    ) -> Result<bool, DbErr> {
        let deadline = tokio::time::Instant::now() + patience;
        for &day in days {
            while !self.try_take(day).await? {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(false);
                }
                self.renew().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(true)
    }

    /// Renews every lease held; failures are logged (the next renewal
    /// tries again, and the work fails if its lease lapses and is taken).
    pub(super) async fn renew(&self) {
        for day in self.held() {
            if let Err(e) = self.try_take(day).await {
                tracing::warn!(%day, error = %e, "renewing a lease");
            }
        }
    }

    /// Releases every lease held.
    pub(super) async fn release(&self) -> Result<(), DbErr> {
        for day in self.held() {
            self.db
                .execute(stmt(
                    self.db.get_database_backend(),
                    "DELETE FROM settlement_leases WHERE day = $1 AND holder = $2",
                    vec![day.into(), self.holder.clone().into()],
                ))
                .await?;
        }
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
        Ok(())
    }

    /// Runs `work` while a task renews the leases every third of their
    /// lifetime.
    pub(super) async fn renewing<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let every = (self.ttl / 3).to_std().unwrap_or(Duration::from_secs(10));
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => self.renew().await,
            }
        }
    }
}
