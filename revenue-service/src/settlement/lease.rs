//! The per-day lease (SPEC §6: two runs of the same day never interleave,
//! even with several revenue-service replicas): a row per day naming its
//! holder until it expires; the holder renews it while it runs.

use chrono::{NaiveDate, Utc};
use sea_orm::ConnectionTrait;

use super::Settler;
use crate::{error::RevenueError, sql::stmt};

impl Settler {
    pub(super) fn lease_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Takes (or renews) the lease of `day` unless another holder's is live.
    pub(super) async fn acquire_lease(&self, day: NaiveDate) -> Result<bool, RevenueError> {
        let now = Utc::now();
        let result = self
            .db
            .execute(stmt(
                self.db.get_database_backend(),
                "INSERT INTO settlement_leases (day, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (day) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE settlement_leases.expires_at < $4 OR settlement_leases.holder = excluded.holder",
                vec![day.into(), self.holder.clone().into(), (now + self.lease_chrono()).into(), now.into()],
            ))
            .await?;
        Ok(result.rows_affected() == 1)
    }

    pub(super) async fn release_lease(&self, day: NaiveDate) -> Result<(), RevenueError> {
        self.db
            .execute(stmt(
                self.db.get_database_backend(),
                "DELETE FROM settlement_leases WHERE day = $1 AND holder = $2",
                vec![day.into(), self.holder.clone().into()],
            ))
            .await?;
        Ok(())
    }
}
