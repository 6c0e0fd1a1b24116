//! Consul (SPEC §10): registering this instance with the local agent, and
//! following a service's passing instances through the health API.
//!
//! - Registration uses the agent API, `PUT /v1/agent/service/register` and
//!   `PUT /v1/agent/service/deregister/:id`, through a thin client of our
//!   own: `rs-consul` registers through the catalog API only, which cannot
//!   carry a gRPC check the agent runs nor `DeregisterCriticalServiceAfter`.
//! - Discovery uses `rs-consul`'s `get_service_nodes`, i.e.
//!   `GET /v1/health/service/:name?passing=true&index=…&wait=…`: a blocking
//!   query that returns as soon as the answer's `X-Consul-Index` moves past
//!   the one we hold, or after the wait.

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use rs_consul::{Config, Consul, GetServiceNodesRequest, QueryOptions};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::watch;

use super::DiscoverySettings;

/// Follows the passing instances of one service in Consul.
pub struct HealthWatch {
    client: Arc<Consul>,
    service: String,
    wait: Duration,
}

impl HealthWatch {
    /// A watch of `service` through the agent at `address`
    /// (`http://host:8500`), blocking up to `wait` per query.
    pub fn new(address: &str, token: Option<&SecretString>, service: &str, wait: Duration) -> Self {
        let config = Config {
            address: address.trim_end_matches('/').to_owned(),
            token: token.map(|t| t.expose_secret().to_owned()),
            ..Config::default()
        };
        Self {
            client: Arc::new(Consul::new(config)),
            service: service.to_owned(),
            wait,
        }
    }

    /// One query: the passing instances as `http://address:port` URLs, and
    /// the answer's index. With `index`, Consul holds the answer until the
    /// result changes or `wait` passes.
    ///
    /// # Errors
    /// Consul unreachable, or an answer that is not the documented shape.
    pub async fn query(&self, index: Option<u64>) -> anyhow::Result<(BTreeSet<String>, u64)> {
        let request = GetServiceNodesRequest {
            service: &self.service,
            passing: true,
            ..Default::default()
        };
        let options = QueryOptions {
            index,
            wait: index.map(|_| self.wait),
            // Consul adds up to wait/16 of jitter to a blocking query.
            timeout: Some(self.wait + self.wait / 16 + Duration::from_secs(5)),
            ..Default::default()
        };
        let answer = self
            .client
            .get_service_nodes(request, Some(options))
            .await
            .with_context(|| format!("Consul health query for {}", self.service))?;
        let urls = answer
            .response
            .into_iter()
            .map(|node| {
                // The service address when it was registered with one, else
                // the node's (Consul's documented rule).
                let host = if node.service.address.is_empty() {
                    node.node.address
                } else {
                    node.service.address
                };
                url(&host, node.service.port)
            })
            .collect();
        Ok((urls, answer.index))
    }

    /// Publishes the instances to `out` until every receiver is gone. A
    /// failed query keeps the last known set and is retried after a second;
    /// an index that goes backwards (a Consul restart) starts over, as
    /// Consul's blocking-query documentation asks.
    pub async fn run(self, out: watch::Sender<BTreeSet<String>>) {
        let mut index: Option<u64> = None;
        while !out.is_closed() {
            match self.query(index).await {
                Ok((urls, next)) => {
                    index = match index {
                        Some(previous) if next < previous => None,
                        _ => Some(next.max(1)),
                    };
                    out.send_if_modified(|current| {
                        if *current == urls {
                            return false;
                        }
                        tracing::info!(service = %self.service, instances = ?urls, "Consul instances changed");
                        *current = urls;
                        true
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Consul query failed; keeping the last known instances");
                    index = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

fn url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// How Consul checks an instance's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// `grpc.health.v1` Check on the registered address and port.
    Grpc,
    /// `GET http://address:port<path>` answering 2xx.
    Http(&'static str),
}

/// The agent's service registration payload (Consul's documented
/// `PUT /v1/agent/service/register` body).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceRegistration {
    /// A unique instance id: `<name>-<address>-<port>`.
    #[serde(rename = "ID")]
    pub id: String,
    /// The service name (a [`super::names`] constant).
    pub name: String,
    /// The address other instances dial.
    pub address: String,
    /// The port other instances dial.
    pub port: u16,
    /// Tags: `grpc` or `http`.
    pub tags: Vec<String>,
    /// The health check the agent runs.
    pub check: AgentCheck,
}

/// A check in a registration.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AgentCheck {
    /// The check's name.
    pub name: String,
    /// For a gRPC check: `address:port`.
    #[serde(rename = "GRPC", skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    /// For a gRPC check: plaintext.
    #[serde(rename = "GRPCUseTLS", skip_serializing_if = "Option::is_none")]
    pub grpc_use_tls: Option<bool>,
    /// For an HTTP check: the URL.
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// How often, e.g. `2s`.
    pub interval: String,
    /// How long one check may take, e.g. `1s`.
    pub timeout: String,
    /// Remove the instance once critical this long, e.g. `60s`.
    pub deregister_critical_service_after: String,
}

impl ServiceRegistration {
    /// The registration of `name` reachable at `address:port`.
    pub fn new(
        name: &str,
        address: &str,
        port: u16,
        check: CheckKind,
        settings: &DiscoverySettings,
    ) -> Self {
        let host_port = if address.contains(':') {
            format!("[{address}]:{port}")
        } else {
            format!("{address}:{port}")
        };
        let interval = settings.consul_check_interval_seconds.max(1);
        let (grpc, grpc_use_tls, http, tag) = match check {
            CheckKind::Grpc => (Some(host_port.clone()), Some(false), None, "grpc"),
            CheckKind::Http(path) => (
                None,
                None,
                Some(format!("http://{host_port}{path}")),
                "http",
            ),
        };
        Self {
            id: format!("{name}-{address}-{port}"),
            name: name.to_owned(),
            address: address.to_owned(),
            port,
            tags: vec![tag.to_owned()],
            check: AgentCheck {
                name: format!("{name} health"),
                grpc,
                grpc_use_tls,
                http,
                interval: format!("{interval}s"),
                timeout: format!("{}s", interval.min(5)),
                deregister_critical_service_after: format!(
                    "{}s",
                    settings.consul_deregister_critical_after_seconds.max(1)
                ),
            },
        }
    }
}

/// A thin client of the local agent's service API.
#[derive(Clone)]
pub struct Agent {
    http: reqwest::Client,
    address: String,
    token: Option<SecretString>,
}

impl Agent {
    /// A client of the agent at `address` (`http://host:8500`).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(address: &str, token: Option<SecretString>) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            address: address.trim_end_matches('/').to_owned(),
            token,
        })
    }

    fn put(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.put(format!("{}{path}", self.address));
        match &self.token {
            Some(token) => request.header("X-Consul-Token", token.expose_secret()),
            None => request,
        }
    }

    /// Registers (or re-registers) an instance.
    ///
    /// # Errors
    /// The agent is unreachable or answers other than 200.
    pub async fn register(&self, registration: &ServiceRegistration) -> anyhow::Result<()> {
        self.put("/v1/agent/service/register")
            .json(registration)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Deregisters the instance `id`.
    ///
    /// # Errors
    /// The agent is unreachable or answers other than 200.
    pub async fn deregister(&self, id: &str) -> anyhow::Result<()> {
        self.put(&format!("/v1/agent/service/deregister/{id}"))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// This instance's registration, kept until [`Registration::deregister`].
pub struct Registration {
    agent: Agent,
    id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Registers `name`, bound at `bound`, with the agent that `settings`
    /// name, in the background (retried every 2 s until the agent takes
    /// it, so a service may start before Consul). `None` without Consul.
    ///
    /// # Errors
    /// A malformed agent address.
    pub async fn start(
        settings: &DiscoverySettings,
        name: &str,
        bound: SocketAddr,
        check: CheckKind,
    ) -> anyhow::Result<Option<Self>> {
        let Some(address) = &settings.consul_http_addr else {
            return Ok(None);
        };
        let agent = Agent::new(address, settings.consul_http_token.clone())?;
        let advertised = advertised_address(settings, bound).await;
        let registration =
            ServiceRegistration::new(name, &advertised, bound.port(), check, settings);
        let id = registration.id.clone();
        let background = agent.clone();
        let task = tokio::spawn(async move {
            loop {
                match background.register(&registration).await {
                    Ok(()) => {
                        tracing::info!(id = %registration.id, "registered in Consul");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "Consul registration failed; retrying in 2 s");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        Ok(Some(Self { agent, id, task }))
    }

    /// The instance id registered.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Deregisters (on graceful shutdown); a failure is logged, since
    /// Consul drops the instance anyway once its check has been critical
    /// for `CONSUL_DEREGISTER_CRITICAL_AFTER_SECONDS`.
    pub async fn deregister(self) {
        self.task.abort();
        match self.agent.deregister(&self.id).await {
            Ok(()) => tracing::info!(id = %self.id, "deregistered from Consul"),
            Err(e) => {
                tracing::warn!(id = %self.id, error = %format!("{e:#}"), "Consul deregistration failed")
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, after deregistering `registration` (if
/// any) so that Consul stops sending callers here before the server drains.
pub async fn deregister_on_signal(registration: Option<Registration>) {
    crate::shutdown::signal().await;
    if let Some(registration) = registration {
        registration.deregister().await;
    }
}

/// The address to register: the configured one, else the bind address if
/// specific, else this host's name resolved, else 127.0.0.1.
async fn advertised_address(settings: &DiscoverySettings, bound: SocketAddr) -> String {
    if let Some(address) = &settings.consul_service_address {
        return address.clone();
    }
    if !bound.ip().is_unspecified() {
        return bound.ip().to_string();
    }
    if let Ok(host) = std::env::var("HOSTNAME")
        && let Ok(mut addrs) = tokio::net::lookup_host((host.as_str(), bound.port())).await
        && let Some(found) = addrs.find(|a| !a.ip().is_loopback())
    {
        return found.ip().to_string();
    }
    "127.0.0.1".to_owned()
}
