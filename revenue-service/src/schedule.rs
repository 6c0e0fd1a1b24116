//! The daily settlement (SPEC §6): at the configured time (default 00:10
//! platform time) queue yesterday's run once the streaming watermark has
//! passed the end of it, checking again every `SETTLEMENT_WATERMARK_POLL_SECONDS`
//! (default 60) until then.

use std::{str::FromStr, time::Duration};

use chrono::Utc;

use crate::settlement::Settler;

/// A cron schedule (`sec min hour day month weekday`) in platform time.
#[derive(Debug, Clone)]
pub struct DailySchedule {
    cron: cron::Schedule,
    watermark_poll: Duration,
}

impl FromStr for DailySchedule {
    type Err = String;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        cron::Schedule::from_str(expression)
            .map(|cron| Self {
                cron,
                watermark_poll: Duration::from_secs(60),
            })
            .map_err(|e| format!("{expression:?} is not a cron expression: {e}"))
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
            let zone = settler.time().zone();
            let Some(next) = self.cron.after(&Utc::now().with_timezone(&zone)).next() else {
                return;
            };
            let wait = (next.with_timezone(&Utc) - Utc::now())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_parses_and_garbage_does_not() {
        assert!(DailySchedule::from_str("0 10 0 * * *").is_ok());
        assert!(DailySchedule::from_str("every day").is_err());
    }
}
