//! Faults and forgeries: services stopped, killed and restarted mid-test,
//! and tokens signed with the user service's own key.

use std::time::Duration;

use common::auth::{AccessClaims, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::TestApp;

impl TestApp {
    /// Signs `claims` with the user service's own key under `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> String {
        sign_with(&self.signing_pem, &self.kid, claims)
    }

    /// Valid claims for `user_id` with `role`, expiring in 15 minutes.
    pub fn claims(&self, user_id: i64, role: Role) -> AccessClaims {
        let now = chrono_now();
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + 900,
            jti: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Stops the streaming service gracefully (its last write-back runs)
    /// and waits until it is gone.
    pub async fn stop_streaming_service(&mut self) {
        let stopped = self.stack.streaming.stop(Duration::from_secs(15)).await;
        assert!(
            stopped.is_ok(),
            "streaming-service stopped cleanly: {stopped:?}"
        );
    }

    /// Kills the revenue service (its task is aborted mid-whatever, as a
    /// crash would: its connections drop, its transaction rolls back), then
    /// starts a new one on the same address and database.
    pub async fn kill_and_restart_revenue_service(&mut self) {
        self.stack.revenue.kill().await;
        self.stack
            .restart_revenue()
            .await
            .expect("revenue-service builds again");
    }

    /// The revenue service's settings, to start another replica on the
    /// same database: its gRPC address is the first replica's (give the
    /// replica another), its `/metrics` on any free port.
    pub fn revenue_settings(&self) -> revenue_service::Settings {
        let mut settings = self.stack.revenue.settings.clone();
        settings.revenue_metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
        settings
    }

    /// Starts the streaming service again on the address it had.
    pub async fn restart_streaming_service(&mut self) {
        self.stack
            .restart_streaming()
            .await
            .expect("streaming-service builds again");
        self.writeback = self.stack.writeback.clone();
    }

    /// Stops the user service and waits until it is gone.
    pub async fn stop_user_service(&mut self) {
        let _ = self.stack.users.stop(Duration::from_secs(15)).await;
    }
}

pub fn sign_with(pem: &str, kid: &str, claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes()).expect("pem"),
    )
    .expect("sign")
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
