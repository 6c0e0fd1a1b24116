//! The gRPC health status tells the truth (issue 20, item 4): NOT_SERVING
//! while the database or Redis is unreachable, SERVING again once they
//! answer, and NOT_SERVING from the moment the service is asked to stop,
//! while it still answers during its drain. The database and Redis are the
//! machine's own, reached through a TCP proxy the test can cut.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{net::SocketAddr, time::Duration};

use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const POSTGRES: &str = "127.0.0.1:5432";
const REDIS: &str = "127.0.0.1:6379";

/// A TCP proxy to `target` that can be cut (every connection dropped, new
/// ones refused) and restored.
struct Proxy {
    addr: SocketAddr,
    open: watch::Sender<bool>,
}

impl Proxy {
    async fn to(target: &str) -> Self {
        let target: SocketAddr = target.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, watching) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut open = watching.clone();
                if !*open.borrow() {
                    continue; // dropped: refused
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {},
                        _ = open.wait_for(|open| !*open) => {},
                    }
                });
            }
        });
        Self { addr, open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

/// The server-wide status (`""`, what the platform's balancers ask), or
/// `None` when the server does not answer.
async fn status(grpc: SocketAddr) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .ok()?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(answer.get_ref().status).ok()
}

/// Waits up to 15 s for `expected`; panics naming `why` otherwise.
async fn until(grpc: SocketAddr, expected: ServingStatus, why: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = status(grpc).await;
        if now == Some(expected) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{why}: still {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_and_redis_and_turns_not_serving_on_stop() {
    let name = format!("health_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(format!("postgres://postgres@{POSTGRES}/postgres"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let postgres = Proxy::to(POSTGRES).await;
    let redis = Proxy::to(REDIS).await;

    let mut settings = streaming_service::Settings::with_defaults(
        SecretString::from("health-test-credential"),
        "http://127.0.0.1:9".to_owned(),
    );
    settings.data_dir = std::env::temp_dir().join(&name);
    settings.streaming_grpc_addr = "127.0.0.1:0".parse().unwrap();
    settings.streaming_database_url = Some(SecretString::from(format!(
        "postgres://postgres@{}/{name}",
        postgres.addr
    )));
    settings.streaming_database_max_connections = 2;
    settings.streaming_redis_url = Some(SecretString::from(format!("redis://{}", redis.addr)));
    settings.streaming_redis_prefix = name.clone();
    settings.writeback_interval_seconds = 3_600;
    settings.grpc.grpc_health_interval_ms = 100;
    settings.grpc.grpc_drain_seconds = 3;
    let app = streaming_service::Application::build(settings)
        .await
        .unwrap();
    let grpc = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    until(grpc, ServingStatus::Serving, "at start").await;

    redis.cut();
    until(grpc, ServingStatus::NotServing, "Redis cut").await;
    redis.restore();
    until(grpc, ServingStatus::Serving, "Redis back").await;

    postgres.cut();
    until(grpc, ServingStatus::NotServing, "PostgreSQL cut").await;
    postgres.restore();
    until(grpc, ServingStatus::Serving, "PostgreSQL back").await;

    // Asked to stop: NOT_SERVING at once, and still answering while it
    // drains, so that balancers see it leave.
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(grpc).await, Some(ServingStatus::NotServing));
    assert!(!running.is_finished(), "still draining");
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stopped after the drain")
        .unwrap()
        .unwrap();
    assert_eq!(status(grpc).await, None, "the listener is closed");

    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&name));
}
