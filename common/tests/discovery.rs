//! Consul registration and discovery (SPEC §10) against a local HTTP server
//! that answers as Consul's documented agent and health APIs do, and real
//! gRPC instances behind the balanced channel.

// Test scaffolding: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::discovery::{
    DiscoverySettings, DnsName, Downstream, Instances, Source,
    consul::{Agent, CheckKind, HealthWatch, Registration, ServiceRegistration},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Notify, oneshot},
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

// ---------------------------------------------------------------- fake Consul

/// One HTTP request as the fake received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Default)]
struct State {
    index: u64,
    /// Instance id → (registration body, check status).
    services: BTreeMap<String, (Value, String)>,
    received: Vec<Received>,
}

/// A local HTTP server that follows Consul's documented agent API
/// (`PUT /v1/agent/service/register`, `PUT /v1/agent/service/deregister/:id`)
/// and health API (`GET /v1/health/service/:name` with `passing`, `index`
/// and `wait`, answering `X-Consul-Index`). A registered instance's check
/// starts `critical`, as Consul's do until the first check passes; the test
/// plays the agent's checker with [`FakeConsul::set_status`].
#[derive(Clone)]
struct FakeConsul {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl FakeConsul {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State {
                index: 1,
                ..State::default()
            })),
            changed: Arc::new(Notify::new()),
        };
        let serving = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let fake = serving.clone();
                tokio::spawn(async move { fake.serve(stream).await });
            }
        });
        fake
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn bump(&self, state: &mut State) {
        state.index += 1;
        self.changed.notify_waiters();
    }

    fn set_status(&self, id: &str, status: &str) {
        let mut state = self.state.lock().unwrap();
        state.services.get_mut(id).unwrap().1 = status.to_owned();
        self.bump(&mut state);
    }

    /// Registers an instance directly, as another agent would have.
    fn add(&self, name: &str, port: u16, status: &str) -> String {
        let id = format!("{name}-{port}");
        let mut state = self.state.lock().unwrap();
        state.services.insert(
            id.clone(),
            (
                json!({"ID": id, "Name": name, "Address": "127.0.0.1", "Port": port, "Tags": ["grpc"]}),
                status.to_owned(),
            ),
        );
        self.bump(&mut state);
        id
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn registered(&self) -> BTreeMap<String, (Value, String)> {
        self.state.lock().unwrap().services.clone()
    }

    async fn serve(&self, mut stream: TcpStream) {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        self.state.lock().unwrap().received.push(request.clone());
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target.as_str(), ""));
        let params: BTreeMap<&str, &str> = query
            .split('&')
            .filter_map(|p| p.split_once('=').or(Some((p, ""))))
            .collect();
        let (status, index, body) = match (request.method.as_str(), path) {
            ("PUT", "/v1/agent/service/register") => {
                let registration: Value = serde_json::from_str(&request.body).unwrap();
                let id = registration["ID"].as_str().unwrap().to_owned();
                let mut state = self.state.lock().unwrap();
                state
                    .services
                    .insert(id, (registration, "critical".to_owned()));
                self.bump(&mut state);
                (200, None, String::new())
            }
            ("PUT", p) if p.starts_with("/v1/agent/service/deregister/") => {
                let id = &p["/v1/agent/service/deregister/".len()..];
                let mut state = self.state.lock().unwrap();
                if state.services.remove(id).is_some() {
                    self.bump(&mut state);
                    (200, None, String::new())
                } else {
                    (404, None, format!("Unknown service ID {id:?}"))
                }
            }
            ("GET", p) if p.starts_with("/v1/health/service/") => {
                let name = &p["/v1/health/service/".len()..];
                let wanted: Option<u64> = params.get("index").and_then(|i| i.parse().ok());
                let wait = params
                    .get("wait")
                    .and_then(|w| w.trim_end_matches('s').parse().ok())
                    .map_or(Duration::from_secs(300), Duration::from_secs);
                let passing_only = params.get("passing").is_some_and(|v| *v != "false");
                if let Some(wanted) = wanted {
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        let notified = self.changed.notified();
                        if self.state.lock().unwrap().index > wanted {
                            break;
                        }
                        if tokio::time::timeout_at(deadline, notified).await.is_err() {
                            break;
                        }
                    }
                }
                let state = self.state.lock().unwrap();
                let entries: Vec<Value> = state
                    .services
                    .values()
                    .filter(|(r, status)| {
                        r["Name"] == name && (!passing_only || status == "passing")
                    })
                    .map(|(r, status)| {
                        json!({
                            "Node": {"ID": "node-1", "Node": "node-1", "Address": "127.0.0.9", "Datacenter": "dc1"},
                            "Service": {"ID": r["ID"], "Service": r["Name"], "Address": r["Address"], "Port": r["Port"], "Tags": r["Tags"]},
                            "Checks": [{"CheckID": format!("service:{}", r["ID"].as_str().unwrap_or_default()), "Status": status}],
                        })
                    })
                    .collect();
                (200, Some(state.index), Value::Array(entries).to_string())
            }
            _ => (404, None, String::new()),
        };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        if let Some(index) = index {
            head.push_str(&format!("x-consul-index: {index}\r\n"));
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

// ---------------------------------------------------------- gRPC instances

/// A gRPC server with the standard health service that counts the calls
/// carrying `x-test-call` (the test's own calls, not the probes).
struct Instance {
    port: u16,
    calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
}

impl Instance {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let service = tonic::service::interceptor::InterceptedService::new(
            health,
            move |request: tonic::Request<()>| {
                if request.metadata().contains_key("x-test-call") {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                Ok(request)
            },
        );
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
        });
        Self {
            port,
            calls,
            stop: Some(stop),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One counted call through `channel`.
async fn call(channel: &Channel) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("x-test-call", "1".parse().unwrap());
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|_| ())
}

/// Calls until both instances have had one (at most 400 calls).
async fn calls_reach_both(channel: &Channel, one: &Instance, two: &Instance) {
    for _ in 0..400 {
        call(channel).await.unwrap();
        if one.calls() > 0 && two.calls() > 0 {
            return;
        }
    }
    panic!("calls did not reach both instances");
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

fn set(urls: &[String]) -> BTreeSet<String> {
    urls.iter().cloned().collect()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn registration_payload_is_consuls_agent_format_field_by_field() {
    let fake = FakeConsul::start().await;
    let settings = DiscoverySettings {
        consul_http_addr: Some(fake.url()),
        consul_http_token: Some("acl-token".to_owned().into()),
        consul_service_address: Some("10.1.2.3".to_owned()),
        consul_check_interval_seconds: 3,
        consul_deregister_critical_after_seconds: 45,
        ..DiscoverySettings::default()
    };
    let bound: SocketAddr = "0.0.0.0:50052".parse().unwrap();
    let registration = Registration::start(&settings, "streaming-service", bound, CheckKind::Grpc)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registration.id(), "streaming-service-10.1.2.3-50052");
    until("the agent has the registration", || {
        fake.registered()
            .contains_key("streaming-service-10.1.2.3-50052")
    })
    .await;

    let put = fake
        .received()
        .into_iter()
        .find(|r| r.target == "/v1/agent/service/register")
        .unwrap();
    assert_eq!(put.method, "PUT");
    assert_eq!(put.headers["x-consul-token"], "acl-token");
    assert_eq!(put.headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["ID"], "streaming-service-10.1.2.3-50052");
    assert_eq!(body["Name"], "streaming-service");
    assert_eq!(body["Address"], "10.1.2.3");
    assert_eq!(body["Port"], 50052);
    assert_eq!(body["Tags"], json!(["grpc"]));
    let check = &body["Check"];
    assert_eq!(check["Name"], "streaming-service health");
    assert_eq!(check["GRPC"], "10.1.2.3:50052");
    assert_eq!(check["GRPCUseTLS"], false);
    assert_eq!(check["Interval"], "3s");
    assert_eq!(check["Timeout"], "3s");
    assert_eq!(check["DeregisterCriticalServiceAfter"], "45s");
    assert!(check.get("HTTP").is_none(), "a gRPC check has no HTTP URL");
    assert_eq!(
        body.as_object().unwrap().len(),
        6,
        "no other fields: {body}"
    );
    assert_eq!(
        check.as_object().unwrap().len(),
        6,
        "no other check fields: {check}"
    );

    registration.deregister().await;
    let deregister = fake
        .received()
        .into_iter()
        .find(|r| r.target.starts_with("/v1/agent/service/deregister/"))
        .unwrap();
    assert_eq!(deregister.method, "PUT");
    assert_eq!(
        deregister.target,
        "/v1/agent/service/deregister/streaming-service-10.1.2.3-50052"
    );
    assert_eq!(deregister.headers["x-consul-token"], "acl-token");
    assert!(fake.registered().is_empty());
}

#[tokio::test]
async fn the_gateway_registers_an_http_check_and_the_bind_address_is_advertised() {
    let settings = DiscoverySettings {
        consul_deregister_critical_after_seconds: 60,
        ..DiscoverySettings::default()
    };
    let r = ServiceRegistration::new(
        "gateway",
        "172.18.0.7",
        8080,
        CheckKind::Http("/healthz"),
        &settings,
    );
    let body = serde_json::to_value(&r).unwrap();
    assert_eq!(body["ID"], "gateway-172.18.0.7-8080");
    assert_eq!(body["Tags"], json!(["http"]));
    assert_eq!(body["Check"]["HTTP"], "http://172.18.0.7:8080/healthz");
    assert_eq!(body["Check"]["Interval"], "2s");
    assert_eq!(body["Check"]["DeregisterCriticalServiceAfter"], "60s");
    assert!(body["Check"].get("GRPC").is_none());
    assert!(body["Check"].get("GRPCUseTLS").is_none());

    // Without CONSUL_SERVICE_ADDRESS a specific bind address is registered.
    let fake = FakeConsul::start().await;
    let settings = DiscoverySettings {
        consul_http_addr: Some(fake.url()),
        ..DiscoverySettings::default()
    };
    let registration = Registration::start(
        &settings,
        "user-service",
        "127.0.0.1:50051".parse().unwrap(),
        CheckKind::Grpc,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(registration.id(), "user-service-127.0.0.1-50051");
    until("registered", || !fake.registered().is_empty()).await;
    assert!(
        !fake.received()[0].headers.contains_key("x-consul-token"),
        "no token configured, none sent"
    );
    // No Consul configured: nothing registers.
    let none = Registration::start(
        &DiscoverySettings::default(),
        "user-service",
        "127.0.0.1:50051".parse().unwrap(),
        CheckKind::Grpc,
    )
    .await
    .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn deregistering_an_unknown_instance_is_an_error() {
    let fake = FakeConsul::start().await;
    let agent = Agent::new(&fake.url(), None).unwrap();
    assert!(agent.deregister("nobody-1").await.is_err());
}

#[tokio::test]
async fn blocking_health_query_waits_for_a_change_and_returns_passing_instances_only() {
    let fake = FakeConsul::start().await;
    let a = fake.add("streaming-service", 7001, "passing");
    fake.add("streaming-service", 7002, "critical");
    fake.add("revenue-service", 7003, "passing");
    let watch = HealthWatch::new(
        &fake.url(),
        None,
        "streaming-service",
        Duration::from_secs(10),
    );

    let (urls, index) = watch.query(None).await.unwrap();
    assert_eq!(urls, set(&["http://127.0.0.1:7001".to_owned()]));
    let first = fake.received().last().cloned().unwrap();
    assert_eq!(first.method, "GET");
    assert_eq!(
        first.target,
        "/v1/health/service/streaming-service?passing=true"
    );

    // The next query blocks on the index until something changes.
    let mut blocked = Box::pin(watch.query(Some(index)));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut blocked)
            .await
            .is_err(),
        "a blocking query with the current index waits"
    );
    let sent = fake.received().last().cloned().unwrap();
    assert_eq!(
        sent.target,
        format!("/v1/health/service/streaming-service?passing=true&index={index}&wait=10s")
    );
    fake.set_status("streaming-service-7002", "passing");
    let (urls, next) = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(next > index, "X-Consul-Index moved on: {index} → {next}");
    assert_eq!(
        urls,
        set(&[
            "http://127.0.0.1:7001".to_owned(),
            "http://127.0.0.1:7002".to_owned()
        ])
    );
    fake.set_status(&a, "critical");
    let (urls, _) = watch.query(Some(next)).await.unwrap();
    assert_eq!(urls, set(&["http://127.0.0.1:7002".to_owned()]));
}

#[tokio::test]
async fn discovery_follows_consul_and_a_dropped_instance_gets_no_further_calls() {
    let fake = FakeConsul::start().await;
    let one = Instance::start().await;
    let two = Instance::start().await;
    fake.add("streaming-service", one.port, "passing");
    let two_id = fake.add("streaming-service", two.port, "passing");
    let watch = HealthWatch::new(
        &fake.url(),
        None,
        "streaming-service",
        Duration::from_secs(5),
    );
    let instances = Instances::spawn(Source::Consul(watch), Duration::from_millis(100));
    until("both instances are discovered", || {
        instances.current().len() == 2
    })
    .await;
    assert_eq!(instances.current(), set(&[one.url(), two.url()]));
    let channel = instances.balanced_channel(Arc::new(|e| e));

    calls_reach_both(&channel, &one, &two).await;

    // Consul's check of the second instance fails: it leaves the set…
    fake.set_status(&two_id, "critical");
    until("the second instance is dropped", || {
        instances.current() == set(&[one.url()])
    })
    .await;
    // …and, once the channel has applied the change, gets no further calls.
    let mut settled = false;
    for _ in 0..50 {
        let before = two.calls();
        for _ in 0..20 {
            call(&channel).await.unwrap();
        }
        if two.calls() == before {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(settled, "the dropped instance kept getting calls");
    let (dropped_before, kept_before) = (two.calls(), one.calls());
    for _ in 0..200 {
        call(&channel).await.unwrap();
    }
    assert_eq!(
        two.calls(),
        dropped_before,
        "a dropped instance gets no calls"
    );
    assert_eq!(one.calls(), kept_before + 200);

    // It passes again: it is added back and takes calls again.
    fake.set_status(&two_id, "passing");
    until("the second instance is back", || {
        instances.current().len() == 2
    })
    .await;
    for _ in 0..400 {
        call(&channel).await.unwrap();
        if two.calls() > dropped_before {
            break;
        }
    }
    assert!(
        two.calls() > dropped_before,
        "an added instance takes calls"
    );
}

#[tokio::test]
async fn a_static_list_drops_an_instance_that_dies_and_keeps_serving() {
    let one = Instance::start().await;
    let mut two = Instance::start().await;
    let instances = Instances::spawn(
        Source::Static(set(&[one.url(), two.url()])),
        Duration::from_millis(100),
    );
    let channel = instances.balanced_channel(Arc::new(|e| e));
    calls_reach_both(&channel, &one, &two).await;

    two.kill();
    until("the dead instance is dropped", || {
        instances.current() == set(&[one.url()])
    })
    .await;
    // Calls made before the channel applied the change may fail; after it,
    // every call succeeds on the survivor.
    let mut clean_run = 0;
    for _ in 0..2000 {
        if call(&channel).await.is_ok() {
            clean_run += 1;
            if clean_run == 200 {
                break;
            }
        } else {
            clean_run = 0;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(clean_run, 200, "the survivor serves every call");
}

#[tokio::test]
async fn with_no_serving_instance_every_candidate_is_kept() {
    let mut only = Instance::start().await;
    let url = only.url();
    only.kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let instances = Instances::spawn(
        Source::Static(set(&[url.clone(), "http://127.0.0.1:9".to_owned()])),
        Duration::from_millis(50),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        instances.current(),
        set(&[url, "http://127.0.0.1:9".to_owned()]),
        "calls fail fast instead of waiting on an empty set"
    );
    let channel = instances.balanced_channel(Arc::new(|e| e));
    let failed = tokio::time::timeout(Duration::from_secs(5), call(&channel)).await;
    assert!(
        matches!(failed, Ok(Err(_))),
        "an error, not a hang: {failed:?}"
    );
}

#[tokio::test]
async fn a_dns_name_follows_its_addresses_and_balances_over_the_serving_ones() {
    let one = Instance::start().await;
    let every = Duration::from_millis(100);
    for bad in ["localhost", ":50052", "localhost:port"] {
        assert!(DnsName::parse(bad, every).is_err(), "{bad} accepted");
    }
    let name = DnsName::parse(&format!("/localhost:{}", one.port), every).unwrap();
    let resolved = name.resolve().await.unwrap();
    assert!(resolved.contains(&one.url()), "{resolved:?}");

    let instances = Instances::spawn(Source::Dns(name), every);
    until("the name's serving address is found", || {
        instances.current() == set(&[one.url()])
    })
    .await;
    let channel = instances.balanced_channel(Arc::new(|e| e));
    for _ in 0..20 {
        call(&channel).await.unwrap();
    }
    assert_eq!(one.calls(), 20);

    // The same through a downstream named `dns://host:port`.
    let downstream = common::discovery::Downstream::new(
        common::discovery::names::STREAMING,
        &format!("dns://localhost:{}", one.port),
        &DiscoverySettings {
            discovery_probe_interval_ms: 100,
            discovery_dns_interval_ms: 100,
            ..Default::default()
        },
        Arc::new(|e| e),
    )
    .unwrap();
    let channel = downstream.channel();
    let mut answered = false;
    for _ in 0..100 {
        if call(&channel).await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(answered, "a dns:// downstream reaches its instance");
}

/// A TCP proxy to `target` whose connections can all go silent at once:
/// they stay open but forward nothing more, as after a network cut that
/// changed the caller's address. Connections made afterwards forward.
struct SilencingProxy {
    addr: SocketAddr,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl SilencingProxy {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let current = generation.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let current = current.clone();
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let pump = |mut from: tokio::net::tcp::OwnedReadHalf,
                            mut to: tokio::net::tcp::OwnedWriteHalf,
                            current: Arc<std::sync::atomic::AtomicU64>| async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        if current.load(Ordering::SeqCst) != born {
                            // Silent: swallow everything, keep the socket.
                            continue;
                        }
                        if to.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    // Held open until the other end gives up.
                    std::future::pending::<()>().await;
                };
                tokio::spawn(pump(client_read, server_write, current.clone()));
                tokio::spawn(pump(server_read, client_write, current));
            }
        });
        Self { addr, generation }
    }

    /// Every connection open now goes silent.
    fn silence(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_connection_gone_silent_is_closed_and_the_next_call_dials_again() {
    let server = Instance::start().await;
    let proxy = SilencingProxy::to(SocketAddr::from(([127, 0, 0, 1], server.port))).await;
    let downstream = Downstream::new(
        "test",
        &format!("http://{}", proxy.addr),
        &DiscoverySettings::default(),
        Arc::new(|e| e.timeout(Duration::from_secs(1))),
    )
    .unwrap();
    let channel = downstream.channel();
    call(&channel).await.unwrap();
    proxy.silence();
    assert!(
        call(&channel).await.is_err(),
        "the silent connection answers nothing"
    );
    // The keep-alive ping goes unanswered: within its interval and timeout
    // (10 s) the connection is closed, and a call dials a new one.
    let started = std::time::Instant::now();
    while call(&channel).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still no answer after 30 s: the dead connection was kept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
