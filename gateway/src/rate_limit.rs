//! Per-client-IP rate limits on sign-up and login (SPEC §3), with the
//! `governor` crate's GCRA limiter: `AUTH_RATE_LIMIT_PER_MINUTE` requests a
//! minute each, as a burst that refills evenly; 0 turns them off.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use actix_web::http::StatusCode;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use common::error::ErrorCode;

use crate::error::ApiError;

/// One keyed limiter, or none when the limit is 0.
#[derive(Clone)]
pub struct IpRateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl IpRateLimit {
    /// `per_minute` requests a minute per IP; 0 means unlimited.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
        }
    }

    /// Counts one request from `ip`.
    ///
    /// # Errors
    /// 429 with `retry-after` (whole seconds, at least 1) when over the limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests; slow down",
            )
            .retry_after(seconds.max(1))
        })
    }

    /// Forgets idle clients; called periodically so the key map stays small.
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The gateway's limiters.
#[derive(Clone)]
pub struct AuthRateLimits {
    /// `POST /api/v1/auth/signup`.
    pub signup: IpRateLimit,
    /// `POST /api/v1/auth/login`.
    pub login: IpRateLimit,
}

impl AuthRateLimits {
    /// Both limits at `per_minute`, and a task that prunes them every minute.
    pub fn new(per_minute: u32) -> Self {
        let limits = Self {
            signup: IpRateLimit::per_minute(per_minute),
            login: IpRateLimit::per_minute(per_minute),
        };
        let pruned = limits.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                pruned.signup.prune();
                pruned.login.prune();
            }
        });
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_applies_per_ip_and_zero_turns_it_off() {
        let limit = IpRateLimit::per_minute(3);
        let a = IpAddr::from([1, 1, 1, 1]);
        let b = IpAddr::from([2, 2, 2, 2]);
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        let err = limit.check(a).err();
        assert_eq!(
            err.as_ref().map(|e| e.status),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(
            err.and_then(|e| e.retry_after)
                .is_some_and(|s| (1..=20).contains(&s))
        );
        assert!(limit.check(b).is_ok());
        let off = IpRateLimit::per_minute(0);
        for _ in 0..1000 {
            assert!(off.check(a).is_ok());
        }
    }
}
