//! The platform in one process: [`Stack::build`] starts the four services
//! wired to each other (one service credential, each gRPC address as
//! configured, every downstream URL pointing at its sibling, no Consul).
//! The `stack` binary (`stack up`, `stack demo`) and the gateway's test
//! harness start the platform through it, so tests start what operators
//! run.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use secrecy::SecretString;
use tokio::{sync::watch, task::JoinHandle};

/// Every service's settings, before [`Stack::build`] wires them together.
#[derive(Clone)]
pub struct Settings {
    /// The user service's.
    pub users: user_service::Settings,
    /// The streaming service's.
    pub streaming: streaming_service::Settings,
    /// The revenue service's.
    pub revenue: revenue_service::Settings,
    /// The gateway's.
    pub gateway: gateway::Settings,
}

impl Settings {
    /// Every service's settings from the environment (and `CONFIG_FILE`),
    /// as the separate binaries read them.
    ///
    /// # Errors
    /// A malformed setting.
    pub fn load() -> anyhow::Result<Self> {
        Ok(Self {
            users: common::config::load().context("user-service settings")?,
            streaming: common::config::load().context("streaming-service settings")?,
            revenue: common::config::load().context("revenue-service settings")?,
            gateway: common::config::load().context("gateway settings")?,
        })
    }
}

/// One running service: its task, its stop switch, and the settings it
/// started with (its gRPC address as bound).
pub struct Service<S> {
    /// What it started with; a restart starts it again with these.
    pub settings: S,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

impl<S> Service<S> {
    fn spawn<F>(settings: S, run: impl FnOnce(watch::Receiver<bool>) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Self {
            settings,
            stop,
            task: Some(tokio::spawn(run(rx))),
        }
    }

    /// Asks the service to stop gracefully and waits up to `within` for it.
    ///
    /// # Errors
    /// It failed, panicked or did not stop in time.
    pub async fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        tokio::time::timeout(within, task)
            .await
            .context("did not stop in time")?
            .context("panicked")?
    }

    /// Ends the service at once, as a crash would: its task is aborted
    /// wherever it is (connections drop, open transactions roll back).
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The four services running in this process.
pub struct Stack {
    /// The user service.
    pub users: Service<user_service::Settings>,
    /// The streaming service.
    pub streaming: Service<streaming_service::Settings>,
    /// The revenue service.
    pub revenue: Service<revenue_service::Settings>,
    /// The gateway.
    pub gateway: Service<gateway::Settings>,
    /// Where the gateway's HTTP API listens.
    pub gateway_addr: SocketAddr,
    /// Where the gateway serves `/metrics`.
    pub metrics_addr: SocketAddr,
    /// The streaming service's write-back, to run one by hand.
    pub writeback: streaming_service::counting::writeback::Writeback,
}

impl Stack {
    /// Starts the four services of `settings` wired to each other: one
    /// service credential (`users.service_credential`, generated when
    /// unset), each gRPC address as configured (port 0: any free one), the
    /// downstream URLs pointing at the services started here, no Consul.
    ///
    /// # Errors
    /// A service fails to build (port in use, database unreachable, …).
    /// Nothing drains on stop (`GRPC_DRAIN_SECONDS`, `GATEWAY_DRAIN_SECONDS`
    /// are 0): in one process no balancer moves away first.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let Settings {
            mut users,
            mut streaming,
            mut revenue,
            mut gateway,
        } = settings;
        for discovery in [
            &mut users.discovery,
            &mut streaming.discovery,
            &mut revenue.discovery,
            &mut gateway.discovery,
        ] {
            discovery.consul_http_addr = None;
        }
        // One process: no balancer routes around a stopping service here,
        // so a drain would only delay the stop.
        for grpc in [&mut users.grpc, &mut streaming.grpc, &mut revenue.grpc] {
            grpc.grpc_drain_seconds = 0;
        }
        gateway.gateway_drain_seconds = 0;
        let credential = users.service_credential.clone().unwrap_or_else(|| {
            SecretString::from(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        });
        users.service_credential = Some(credential.clone());
        let user_app = user_service::Application::build(users.clone()).await?;
        users.user_grpc_addr = user_app.local_addr();
        users.user_metrics_addr = user_app.metrics_addr();
        let user_url = format!("http://{}", user_app.local_addr());

        streaming.service_credential = Some(credential.clone());
        streaming.streaming_user_service_url.clone_from(&user_url);
        let streaming_app = streaming_service::Application::build(streaming.clone()).await?;
        streaming.streaming_grpc_addr = streaming_app.local_addr();
        streaming.streaming_metrics_addr = streaming_app.metrics_addr();
        let streaming_url = format!("http://{}", streaming_app.local_addr());
        let writeback = streaming_app.writeback();

        revenue.service_credential = Some(credential.clone());
        revenue.revenue_user_service_url.clone_from(&user_url);
        revenue
            .revenue_streaming_service_url
            .clone_from(&streaming_url);
        let revenue_app = revenue_service::Application::build(revenue.clone()).await?;
        revenue.revenue_grpc_addr = revenue_app.local_addr();
        revenue.revenue_metrics_addr = revenue_app.metrics_addr();

        gateway.service_credential = Some(credential);
        gateway.gateway_user_service_url = user_url;
        gateway.gateway_streaming_service_url = streaming_url;
        gateway.gateway_revenue_service_url = format!("http://{}", revenue_app.local_addr());
        let gateway_app = gateway::Application::build(gateway.clone()).await?;
        let (gateway_addr, metrics_addr) = (gateway_app.local_addr(), gateway_app.metrics_addr());
        tracing::info!(user_service = %users.user_grpc_addr, streaming_service = %streaming.streaming_grpc_addr,
            revenue_service = %revenue.revenue_grpc_addr, gateway = %gateway_addr, "services listening");
        Ok(Self {
            users: Service::spawn(users, |rx| user_app.run_until(stopped(rx))),
            streaming: Service::spawn(streaming, |rx| streaming_app.run_until(stopped(rx))),
            revenue: Service::spawn(revenue, |rx| revenue_app.run_until(stopped(rx))),
            gateway: Service::spawn(gateway, |rx| gateway_app.run_until(stopped(rx))),
            gateway_addr,
            metrics_addr,
            writeback,
        })
    }

    /// Starts the streaming service again with the settings (and address)
    /// it had; stop or kill it first.
    ///
    /// # Errors
    /// It fails to build.
    pub async fn restart_streaming(&mut self) -> anyhow::Result<()> {
        let app = streaming_service::Application::build(self.streaming.settings.clone()).await?;
        self.writeback = app.writeback();
        self.streaming = Service::spawn(self.streaming.settings.clone(), |rx| {
            app.run_until(stopped(rx))
        });
        Ok(())
    }

    /// Starts the revenue service again with the settings (and address) it
    /// had; stop or kill it first.
    ///
    /// # Errors
    /// It fails to build.
    pub async fn restart_revenue(&mut self) -> anyhow::Result<()> {
        let app = revenue_service::Application::build(self.revenue.settings.clone()).await?;
        self.revenue = Service::spawn(self.revenue.settings.clone(), |rx| {
            app.run_until(stopped(rx))
        });
        Ok(())
    }

    /// Stops every service gracefully, the edge first and the user service
    /// last (the streaming service writes its counters back).
    ///
    /// # Errors
    /// A service failed or did not stop within 60 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let within = Duration::from_secs(60);
        self.gateway.stop(within).await.context("gateway")?;
        self.revenue.stop(within).await.context("revenue-service")?;
        self.streaming
            .stop(within)
            .await
            .context("streaming-service")?;
        self.users.stop(within).await.context("user-service")
    }

    /// Asks every service to stop without waiting (as dropping a test's
    /// stack does).
    pub fn stop_now(&self) {
        for stop in [
            &self.gateway.stop,
            &self.revenue.stop,
            &self.streaming.stop,
            &self.users.stop,
        ] {
            let _ = stop.send(true);
        }
    }
}
