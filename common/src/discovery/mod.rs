//! Finding the instances of a downstream service, and announcing this one
//! (SPEC §1, §10).
//!
//! A downstream is named by a comma-separated list of URLs
//! (`http://host:port,…`), by `dns://host:port` — every address the name
//! resolves to, resolved again every `DISCOVERY_DNS_INTERVAL_MS` (default
//! 2,000 ms): a compose service scaled to several replicas, whose name the
//! compose network's DNS answers with one address per replica — or, when
//! `CONSUL_HTTP_ADDR` is set, by its Consul service name: the passing instances that Consul's health API reports,
//! followed with blocking queries ([`consul::HealthWatch`]). A single static
//! URL is one plain lazily connecting channel, as before discovery existed.
//! Several instances, or any list from Consul, become one tonic balanced
//! channel ([`Downstream::channel`]) fed by an [`Instances`] set: every
//! candidate is probed with the standard `grpc.health.v1` check every
//! `DISCOVERY_PROBE_INTERVAL_MS` (default 500 ms) and only serving instances
//! take calls, so an instance that dies is dropped within about one probe
//! interval even before Consul's own check notices. When no candidate
//! answers, all candidates are kept: calls then fail fast with `UNAVAILABLE`
//! instead of waiting for an instance that may never come.
//!
//! Registration of this instance in Consul ([`consul::Registration`]) is the
//! other half; each binary does it after binding its port and undoes it on
//! graceful shutdown.

pub mod consul;

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use secrecy::SecretString;
use serde::Deserialize;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint, channel::Change};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The Consul service names the platform registers under (SPEC §1).
pub mod names {
    /// `user-service`.
    pub const USER: &str = "user-service";
    /// `streaming-service`.
    pub const STREAMING: &str = "streaming-service";
    /// `revenue-service`.
    pub const REVENUE: &str = "revenue-service";
    /// `gateway`.
    pub const GATEWAY: &str = "gateway";
}

/// Discovery and registration settings, shared by every service's settings
/// (flattened in; SPEC §10). All are optional: without `CONSUL_HTTP_ADDR`
/// nothing registers and downstreams come from the static URL lists.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscoverySettings {
    /// `CONSUL_HTTP_ADDR`: the local Consul agent's HTTP API, e.g.
    /// `http://consul:8500`. Unset (the default): no Consul.
    #[serde(default)]
    pub consul_http_addr: Option<String>,
    /// `CONSUL_HTTP_TOKEN`: an ACL token for the agent, when it needs one.
    #[serde(default)]
    pub consul_http_token: Option<SecretString>,
    /// `CONSUL_SERVICE_ADDRESS`: the address this instance registers, the
    /// one other instances dial (default: the bind address if it is a
    /// specific one, else this host's name — `HOSTNAME`, a container's id
    /// under Docker — resolved, else 127.0.0.1).
    #[serde(default)]
    pub consul_service_address: Option<String>,
    /// `CONSUL_CHECK_INTERVAL_SECONDS`: how often Consul runs this
    /// instance's health check (default 2).
    #[serde(default = "default_check_interval")]
    pub consul_check_interval_seconds: u64,
    /// `CONSUL_DEREGISTER_CRITICAL_AFTER_SECONDS`: Consul removes an
    /// instance whose check has been critical this long, e.g. one that was
    /// killed and never deregistered (default 60).
    #[serde(default = "default_deregister_after")]
    pub consul_deregister_critical_after_seconds: u64,
    /// `CONSUL_WAIT_SECONDS`: how long one blocking health query may wait
    /// for a change (default 30; Consul caps it at 600).
    #[serde(default = "default_wait")]
    pub consul_wait_seconds: u64,
    /// `DISCOVERY_PROBE_INTERVAL_MS`: how often each candidate instance's
    /// gRPC health is probed (default 500).
    #[serde(default = "default_probe_interval")]
    pub discovery_probe_interval_ms: u64,
    /// `DISCOVERY_DNS_INTERVAL_MS`: how often a `dns://host:port`
    /// downstream's name is resolved again (default 2,000).
    #[serde(default = "default_dns_interval")]
    pub discovery_dns_interval_ms: u64,
}

fn default_check_interval() -> u64 {
    2
}
fn default_deregister_after() -> u64 {
    60
}
fn default_wait() -> u64 {
    30
}
fn default_probe_interval() -> u64 {
    500
}
fn default_dns_interval() -> u64 {
    2_000
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            consul_http_addr: None,
            consul_http_token: None,
            consul_service_address: None,
            consul_check_interval_seconds: default_check_interval(),
            consul_deregister_critical_after_seconds: default_deregister_after(),
            consul_wait_seconds: default_wait(),
            discovery_probe_interval_ms: default_probe_interval(),
            discovery_dns_interval_ms: default_dns_interval(),
        }
    }
}

/// How each endpoint of a downstream is configured (timeouts, keep-alive).
pub type ConfigureEndpoint = Arc<dyn Fn(Endpoint) -> Endpoint + Send + Sync>;

/// Every downstream connection sends an HTTP/2 ping after this long
/// without traffic, idle or not.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A connection whose ping is not answered within this long is closed, and
/// the next call dials again (issue 20: a revenue replica cut off the
/// network and reconnected under a new address kept its dead connections,
/// and every pull timed out, for as long as the kernel retransmitted).
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `endpoint` with the keep-alive every downstream connection uses
/// ([`KEEP_ALIVE_INTERVAL`], [`KEEP_ALIVE_TIMEOUT`]); a caller's
/// [`ConfigureEndpoint`] may set its own after it.
pub fn with_keep_alive(endpoint: Endpoint) -> Endpoint {
    endpoint
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
}

/// One downstream service: where its instances are and how to dial them.
#[derive(Clone)]
pub struct Downstream {
    target: Target,
    configure: ConfigureEndpoint,
}

#[derive(Clone)]
enum Target {
    One(Box<Endpoint>),
    Many(Instances),
}

impl Downstream {
    /// The downstream `service` (a [`names`] constant): its passing Consul
    /// instances when `settings` name a Consul agent, else the
    /// comma-separated `urls`. Spawns the discovery tasks on the current
    /// Tokio runtime when there can be more than one instance.
    ///
    /// # Errors
    /// An empty list or a malformed URL; a malformed Consul address.
    pub fn new(
        service: &str,
        urls: &str,
        settings: &DiscoverySettings,
        configure: ConfigureEndpoint,
    ) -> anyhow::Result<Self> {
        let probe_every = Duration::from_millis(settings.discovery_probe_interval_ms.max(50));
        let target = if let Some(address) = &settings.consul_http_addr {
            let watch = consul::HealthWatch::new(
                address,
                settings.consul_http_token.as_ref(),
                service,
                Duration::from_secs(settings.consul_wait_seconds.clamp(1, 600)),
            );
            Target::Many(Instances::spawn(Source::Consul(watch), probe_every))
        } else if let Some(name) = urls.trim().strip_prefix("dns://") {
            let every = Duration::from_millis(settings.discovery_dns_interval_ms.max(100));
            let dns = DnsName::parse(name, every)?;
            Target::Many(Instances::spawn(Source::Dns(dns), probe_every))
        } else {
            let list = parse_urls(urls)?;
            match (list.len(), list.first()) {
                (1, Some(url)) => Target::One(Box::new(Endpoint::from_shared(url.clone())?)),
                _ => Target::Many(Instances::spawn(Source::Static(list), probe_every)),
            }
        };
        Ok(Self { target, configure })
    }

    /// A channel to the service, connecting lazily on the current runtime:
    /// a plain channel for one static URL, a balanced channel over the
    /// serving instances otherwise.
    pub fn channel(&self) -> Channel {
        match &self.target {
            Target::One(endpoint) => {
                (self.configure)(with_keep_alive((**endpoint).clone())).connect_lazy()
            }
            Target::Many(instances) => instances.balanced_channel(self.configure.clone()),
        }
    }
}

/// Parses `http://a:1, http://b:2` into a set of URLs.
///
/// # Errors
/// No URL at all, or one that is not a valid URI.
pub fn parse_urls(urls: &str) -> anyhow::Result<BTreeSet<String>> {
    let list: BTreeSet<String> = urls
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_owned())
        .collect();
    anyhow::ensure!(!list.is_empty(), "no service URL given");
    for url in &list {
        Endpoint::from_shared(url.clone()).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    }
    Ok(list)
}

/// Where the candidate instances come from.
pub enum Source {
    /// A fixed set of URLs.
    Static(BTreeSet<String>),
    /// Consul's passing instances of one service.
    Consul(consul::HealthWatch),
    /// Every address of a DNS name.
    Dns(DnsName),
}

/// A `host:port` whose every address is an instance, resolved again
/// periodically.
pub struct DnsName {
    host: String,
    port: u16,
    every: Duration,
}

impl DnsName {
    /// Parses `host:port` (the part after `dns://`; a leading `/`, as in
    /// `dns:///host:port`, is allowed).
    ///
    /// # Errors
    /// No host, or no numeric port.
    pub fn parse(name: &str, every: Duration) -> anyhow::Result<Self> {
        let name = name.trim_start_matches('/').trim_end_matches('/');
        let (host, port) = name
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("dns://{name}: expected dns://host:port"))?;
        anyhow::ensure!(!host.is_empty(), "dns://{name}: no host");
        let port = port
            .parse()
            .map_err(|_| anyhow::anyhow!("dns://{name}: the port is not a number"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            every,
        })
    }

    /// The instances' URLs (`http://ip:port`) the name resolves to now.
    ///
    /// # Errors
    /// The name does not resolve.
    pub async fn resolve(&self) -> std::io::Result<BTreeSet<String>> {
        Ok(tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .map(|addr| format!("http://{addr}"))
            .collect())
    }

    /// Publishes the resolved set into `out` now and every `every`, until
    /// nobody listens. A failed resolution keeps the last set.
    pub async fn run(self, out: watch::Sender<BTreeSet<String>>) {
        loop {
            match self.resolve().await {
                Ok(found) => {
                    out.send_if_modified(|current| {
                        if *current == found {
                            return false;
                        }
                        tracing::info!(name = %self.host, instances = ?found, "DNS instances changed");
                        *current = found;
                        true
                    });
                }
                Err(e) => tracing::warn!(name = %self.host, error = %e, "resolving a downstream"),
            }
            if out.is_closed() {
                return;
            }
            tokio::time::sleep(self.every).await;
        }
    }
}

/// The serving instances of one service (URLs), kept current by a
/// background task; cheap to clone.
#[derive(Clone)]
pub struct Instances {
    serving: watch::Receiver<BTreeSet<String>>,
}

impl Instances {
    /// Starts following `source` and probing its candidates every
    /// `probe_every`, on the current Tokio runtime. The tasks end when the
    /// last clone of the returned set is dropped.
    pub fn spawn(source: Source, probe_every: Duration) -> Self {
        let (candidates_tx, candidates) = watch::channel(BTreeSet::new());
        match source {
            Source::Static(list) => {
                candidates_tx.send_replace(list);
                // Keep the sender alive with the prober: the list never changes.
                let (serving_tx, serving) = watch::channel(candidates.borrow().clone());
                tokio::spawn(async move {
                    let _keep = candidates_tx;
                    probe_loop(candidates, serving_tx, probe_every).await;
                });
                return Self { serving };
            }
            Source::Consul(watch) => {
                tokio::spawn(watch.run(candidates_tx));
            }
            Source::Dns(name) => {
                tokio::spawn(name.run(candidates_tx));
            }
        }
        let (serving_tx, serving) = watch::channel(BTreeSet::new());
        tokio::spawn(probe_loop(candidates, serving_tx, probe_every));
        Self { serving }
    }

    /// The instances that take calls now.
    pub fn current(&self) -> BTreeSet<String> {
        self.serving.borrow().clone()
    }

    /// A tonic balanced channel over the set, kept in step with it by a
    /// task on the current runtime: an instance that leaves the set is
    /// removed from the channel and gets no further calls.
    pub fn balanced_channel(&self, configure: ConfigureEndpoint) -> Channel {
        let (channel, changes) = Channel::balance_channel::<String>(64);
        let mut serving = self.serving.clone();
        tokio::spawn(async move {
            let mut inserted = BTreeSet::<String>::new();
            loop {
                let next = serving.borrow_and_update().clone();
                for gone in inserted.difference(&next) {
                    if changes.send(Change::Remove(gone.clone())).await.is_err() {
                        return;
                    }
                }
                for new in next.difference(&inserted) {
                    let Ok(endpoint) = Endpoint::from_shared(new.clone()) else {
                        tracing::warn!(url = %new, "discovered instance has a malformed URL");
                        continue;
                    };
                    let change = Change::Insert(new.clone(), configure(with_keep_alive(endpoint)));
                    if changes.send(change).await.is_err() {
                        return;
                    }
                }
                inserted = next;
                if serving.changed().await.is_err() {
                    return;
                }
            }
        });
        channel
    }
}

/// Probes every candidate and publishes the serving ones (all candidates
/// when none serves), until every receiver is gone.
async fn probe_loop(
    mut candidates: watch::Receiver<BTreeSet<String>>,
    serving: watch::Sender<BTreeSet<String>>,
    every: Duration,
) {
    let timeout = every.min(Duration::from_secs(1));
    let mut probes: HashMap<String, Channel> = HashMap::new();
    loop {
        let list = candidates.borrow_and_update().clone();
        probes.retain(|url, _| list.contains(url));
        let checks = list.iter().filter_map(|url| {
            let channel = match probes.get(url) {
                Some(c) => c.clone(),
                None => {
                    let endpoint = Endpoint::from_shared(url.clone())
                        .ok()?
                        .connect_timeout(timeout)
                        .timeout(timeout);
                    let c = endpoint.connect_lazy();
                    probes.insert(url.clone(), c.clone());
                    c
                }
            };
            let url = url.clone();
            Some(async move { (is_serving(channel).await, url) })
        });
        let mut up = BTreeSet::new();
        for (serving, url) in futures::future::join_all(checks).await {
            if serving {
                up.insert(url);
            } else {
                // Its connection may be dead without knowing it (a cut
                // network): the next probe dials again.
                probes.remove(&url);
            }
        }
        let next = if up.is_empty() { list } else { up };
        serving.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            tracing::info!(instances = ?next, "serving instances changed");
            *current = next;
            true
        });
        if serving.is_closed() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = candidates.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether the instance behind `channel` answers `grpc.health.v1` Check
/// for the whole server with SERVING.
async fn is_serving(channel: Channel) -> bool {
    let mut client = HealthClient::new(channel);
    matches!(
        client
            .check(HealthCheckRequest {
                service: String::new()
            })
            .await,
        Ok(response) if response.get_ref().status == ServingStatus::Serving as i32
    )
}
