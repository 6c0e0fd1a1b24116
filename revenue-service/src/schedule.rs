//! The schedules. The daily settlement (SPEC §6): at the configured time
//! (default 00:10 platform time) queue yesterday's run once the streaming
//! watermark has passed the end of it, checking again every
//! `SETTLEMENT_WATERMARK_POLL_SECONDS` (default 60) until then. The monthly
//! close (SPEC §11.4): at the configured time (default the 5th at 03:00
//! platform time) close every month not closed yet up to the previous one,
//! in order, once all of its days are settled and final, trying again
//! every `CLOSE_RETRY_SECONDS` (default 3,600) until then.

use std::{str::FromStr, time::Duration};

use chrono::Utc;

use sea_orm::DatabaseConnection;

use crate::{
    settlement::Settler,
    statements::{self, CloseError},
};

/// A cron expression (`sec min hour day month weekday`), or why not.
fn parse_cron(expression: &str) -> Result<cron::Schedule, String> {
    cron::Schedule::from_str(expression)
        .map_err(|e| format!("{expression:?} is not a cron expression: {e}"))
}

/// Sleeps until `cron`'s next time in platform time; false when `stop`
/// came first or there is no next time.
async fn until_next(
    cron: &cron::Schedule,
    settler: &Settler,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> bool {
    let zone = settler.time().zone();
    let Some(next) = cron.after(&Utc::now().with_timezone(&zone)).next() else {
        return false;
    };
    let wait = (next.with_timezone(&Utc) - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::select! {
        () = stop.as_mut() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// A cron schedule (`sec min hour day month weekday`) in platform time.
#[derive(Debug, Clone)]
pub struct DailySchedule {
    cron: cron::Schedule,
    watermark_poll: Duration,
}

impl FromStr for DailySchedule {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        parse_cron(expression).map(|cron| Self {
            cron,
            watermark_poll: Duration::from_secs(60),
        })
    }
}

impl DailySchedule {
    /// Checks the watermark this often while waiting for it.
    pub fn with_watermark_poll(mut self, every: Duration) -> Self {
        self.watermark_poll = every;
        self
    }

    /// Queues yesterday's settlement at each scheduled time until `stop`.
    pub async fn run(self, settler: Settler, stop: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
            if !until_next(&self.cron, &settler, &mut stop).await {
                return;
            }
            let Some(yesterday) = settler.time().today().pred_opt() else {
                continue;
            };
            loop {
                match settler.written_back(yesterday).await {
                    Ok(true) => break,
                    Ok(false) => tracing::info!(%yesterday, "waiting for the streaming watermark"),
                    Err(e) => tracing::warn!(%yesterday, error = %e, "watermark unavailable"),
                }
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(self.watermark_poll) => {}
                }
            }
            match settler.enqueue(&[yesterday]).await {
                Ok(ids) => tracing::info!(%yesterday, run_id = ?ids, "daily settlement queued"),
                Err(e) => tracing::error!(%yesterday, error = %e, "queueing the daily settlement"),
            }
        }
    }
}

/// The monthly close's schedule: a cron schedule in platform time.
#[derive(Debug, Clone)]
pub struct MonthlySchedule {
    cron: cron::Schedule,
    retry: Duration,
}

impl FromStr for MonthlySchedule {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        parse_cron(expression).map(|cron| Self {
            cron,
            retry: Duration::from_secs(3_600),
        })
    }
}

impl MonthlySchedule {
    /// Tries again this often while a month cannot be closed yet.
    pub fn with_retry(mut self, every: Duration) -> Self {
        self.retry = every;
        self
    }

    /// At each scheduled time until `stop`: closes the months not closed
    /// yet, oldest first, up to the previous month (only the previous
    /// month when none was ever closed).
    pub async fn run(
        self,
        db: DatabaseConnection,
        settler: Settler,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        loop {
            if !until_next(&self.cron, &settler, &mut stop).await {
                return;
            }
            while let Err(e) = close_due_months(&db, &settler).await {
                tracing::warn!(error = %e, "monthly close: not yet");
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(self.retry) => {}
                }
            }
        }
    }
}

/// Closes the months due, oldest first: from the month after the last
/// closed one (or the previous month, when none was) to the previous
/// month.
///
/// # Errors
/// The first month that could not be closed, and why.
pub async fn close_due_months(
    db: &DatabaseConnection,
    settler: &Settler,
) -> Result<(), CloseError> {
    use chrono::Datelike;
    use sea_orm::{EntityTrait, QueryOrder};
    let today = settler.time().today();
    let Some(previous) = chrono::NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .and_then(|first| first.checked_sub_months(chrono::Months::new(1)))
    else {
        return Ok(());
    };
    let latest = crate::entity::close::Entity::find()
        .order_by_desc(crate::entity::close::Column::Month)
        .one(db)
        .await?;
    let mut month = latest
        .and_then(|c| c.month.checked_add_months(chrono::Months::new(1)))
        .unwrap_or(previous);
    while month <= previous {
        statements::close_month(db, settler, month, "schedule").await?;
        let Some(next) = month.checked_add_months(chrono::Months::new(1)) else {
            break;
        };
        month = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_parses_and_garbage_does_not() {
        assert!(DailySchedule::from_str("0 10 0 * * *").is_ok());
        assert!(DailySchedule::from_str("every day").is_err());
        assert!(MonthlySchedule::from_str("0 0 3 5 * *").is_ok());
        assert!(MonthlySchedule::from_str("monthly").is_err());
    }
}
