//! A service's `grpc.health.v1` status that tells the truth: SERVING only
//! while every dependency it cannot work without (its database, its Redis)
//! answers, NOT_SERVING from the moment it is asked to stop, so that the
//! balancers probing it ([`crate::discovery`], the gateway's `/readyz`)
//! drain it before it goes. Both the service's own name and `""` (the
//! whole server, what the platform's probes ask) carry the status.

use std::{future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use tonic_health::{ServingStatus, server::HealthReporter};

/// The longest one dependency's check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What a service's health depends on: named checks, each `Ok` while its
/// dependency answers.
#[derive(Clone, Default)]
pub struct Dependencies {
    checks: Vec<(&'static str, Check)>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.checks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Dependencies {
    /// No dependency: SERVING until asked to stop.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds `check`, named `name` (e.g. `database`, `redis`) in logs.
    #[must_use]
    pub fn with<F, Fut, E>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.checks.push((
            name,
            Arc::new(move || {
                let answer = check();
                Box::pin(async move { answer.await.map_err(|e| e.to_string()) })
            }),
        ));
        self
    }

    /// A sea-orm database, checked with a `SELECT 1`-style ping.
    #[must_use]
    pub fn with_database(self, db: sea_orm::DatabaseConnection) -> Self {
        self.with("database", move || {
            let db = db.clone();
            async move { db.ping().await }
        })
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`]; the
    /// failing ones with their reasons (empty: all up).
    pub async fn down(&self) -> Vec<(&'static str, String)> {
        let checks = self.checks.iter().map(|(name, check)| async move {
            match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                Ok(Ok(())) => None,
                Ok(Err(reason)) => Some((*name, reason)),
                Err(_) => Some((*name, format!("no answer within {CHECK_TIMEOUT:?}"))),
            }
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Sets `status` for `service` and for the whole server (`""`).
async fn set(reporter: &HealthReporter, service: &str, status: ServingStatus) {
    reporter.set_service_status(service, status).await;
    reporter.set_service_status("", status).await;
}

/// The status `dependencies` call for now, logged when it changes from
/// `previous`.
async fn probe(
    dependencies: &Dependencies,
    service: &str,
    previous: Option<ServingStatus>,
) -> ServingStatus {
    let down = dependencies.down().await;
    let status = if down.is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    if previous != Some(status) {
        if down.is_empty() {
            tracing::info!(service, "dependencies answer: SERVING");
        } else {
            let reasons: Vec<String> = down.iter().map(|(n, r)| format!("{n}: {r}")).collect();
            tracing::warn!(service, down = %reasons.join("; "), "a dependency is down: NOT_SERVING");
        }
    }
    status
}

/// Keeps `service`'s status in `reporter` true: checks `dependencies` now
/// (the status is right before the first call is served), then every
/// `interval` in a task; until `stop` resolves, then NOT_SERVING for
/// `drain` while calls still arrive (balancers see it and move away), and
/// only then resolves itself — the server's signal to stop accepting.
pub async fn report(
    reporter: HealthReporter,
    service: &'static str,
    dependencies: Dependencies,
    interval: Duration,
    drain: Duration,
    stop: impl Future<Output = ()> + Send,
) -> impl Future<Output = ()> + Send {
    let first = probe(&dependencies, service, None).await;
    set(&reporter, service, first).await;
    let watcher = {
        let reporter = reporter.clone();
        tokio::spawn(async move {
            let mut last = first;
            loop {
                tokio::time::sleep(interval).await;
                let now = probe(&dependencies, service, Some(last)).await;
                if now != last {
                    set(&reporter, service, now).await;
                    last = now;
                }
            }
        })
    };
    async move {
        stop.await;
        watcher.abort();
        set(&reporter, service, ServingStatus::NotServing).await;
        tracing::info!(
            service,
            drain_seconds = drain.as_secs_f64(),
            "stopping: NOT_SERVING, draining before the listener closes"
        );
        tokio::time::sleep(drain).await;
    }
}
