//! The gateway's HTTP API as a frontend (behind a load balancer) calls it:
//! JSON bodies, bearer tokens, and the viewer's address in
//! `X-Forwarded-For` (the gateway must trust the simulator's address as a
//! proxy, `GATEWAY_TRUSTED_PROXIES`, for anonymous viewers to be told
//! apart).

use std::{net::Ipv4Addr, time::Duration};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// A gateway at a base URL such as `http://127.0.0.1:8080`.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

/// Tokens of a signed-in account (SPEC §7 tokens).
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

/// A play's answer (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
pub struct Played {
    /// The watch session.
    pub session_id: String,
    /// Where the player starts, seconds.
    pub resume_position_seconds: i64,
    /// Whether the view counted.
    pub view_counted: bool,
    /// `owner` or `duplicate` when it did not.
    pub reason: Option<String>,
}

/// A pause's answer (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
pub struct Paused {
    /// Watched seconds the report added.
    pub watched_seconds_added: i64,
    /// Ad views the report counted.
    pub ad_views_counted: i64,
    /// The saved position, seconds.
    pub position_seconds: i64,
}

/// A settlement run (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    /// Id.
    pub run_id: i64,
    /// Day settled.
    pub day: String,
    /// Where it is.
    pub status: RunStatus,
    /// Rows written.
    pub rows: Option<i64>,
    /// Sum of the day's amounts, won.
    pub total_amount: Option<i64>,
    /// Why it failed (or waits), for people.
    pub error: Option<String>,
    /// The same, for programs.
    pub error_code: Option<RunErrorCode>,
}

/// A run's `status` (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker, or for the day's write-back.
    Queued,
    /// Being settled.
    Running,
    /// Done.
    Succeeded,
    /// Stopped with an error.
    Failed,
}

/// A run's `error_code`: the one the simulator acts on, and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorCode {
    /// The day's counts are not all written back yet.
    NotWrittenBack,
    /// Any other reason (the message says which).
    #[serde(other)]
    Other,
}

/// A non-2xx answer, with the envelope's code.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for ApiError {}

impl Gateway {
    /// A client of the gateway at `base`, with up to `connections` idle
    /// connections kept.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            // The gateway (actix-web) closes a connection idle for 5 s; a
            // client that reuses one at that instant loses the request
            // ("connection closed before message completed", seen 6 times
            // in 1.26 million plays). Drop idle connections well before.
            .pool_idle_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request and decodes a 2xx JSON answer.
    ///
    /// # Errors
    /// Transport failures, and [`ApiError`] for any other status.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        client: Option<Ipv4Addr>,
        body: Option<&Value>,
    ) -> anyhow::Result<T> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(ip) = client {
            request = request.header("x-forwarded-for", ip.to_string());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| path.to_owned())?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(ApiError { status, body: text }.into());
        }
        if text.is_empty() {
            return Ok(serde_json::from_str("null")?);
        }
        serde_json::from_str(&text).with_context(|| format!("{path}: unexpected body {text}"))
    }

    /// Signs up (SPEC §7) and returns the user id.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        name: &str,
        role: &str,
        ip: Ipv4Addr,
    ) -> anyhow::Result<i64> {
        let user: Value = self
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(ip),
                Some(&json!({"email": email, "password": password, "display_name": name, "role": role})),
            )
            .await?;
        user["user_id"]
            .as_i64()
            .context("sign-up answered no user_id")
    }

    /// Logs in.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn login(&self, email: &str, password: &str, ip: Ipv4Addr) -> anyhow::Result<Tokens> {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(ip),
            Some(&json!({"email": email, "password": password})),
        )
        .await
    }

    /// Rotates a refresh token.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn refresh(&self, refresh_token: &str, ip: Ipv4Addr) -> anyhow::Result<Tokens> {
        self.call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(ip),
            Some(&json!({"refresh_token": refresh_token})),
        )
        .await
    }

    /// Plays a video.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn play(
        &self,
        video_id: i64,
        token: Option<&str>,
        ip: Ipv4Addr,
    ) -> anyhow::Result<Played> {
        self.call(
            Method::POST,
            &format!("/api/v1/videos/{video_id}/play"),
            token,
            Some(ip),
            Some(&json!({})),
        )
        .await
    }

    /// Reports a pause.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn pause(
        &self,
        video_id: i64,
        token: Option<&str>,
        ip: Ipv4Addr,
        session_id: &str,
        position: i64,
    ) -> anyhow::Result<Paused> {
        self.call(
            Method::POST,
            &format!("/api/v1/videos/{video_id}/pause"),
            token,
            Some(ip),
            Some(&json!({"session_id": session_id, "position_seconds": position})),
        )
        .await
    }

    /// Imports daily counts (admin), returning the report.
    ///
    /// # Errors
    /// As [`Gateway::call`], and a report with rejected lines.
    pub async fn import(&self, admin: &str, csv: String) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/api/v1/admin/imports/daily-counts", self.base))
            .bearer_auth(admin)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await?;
        let status = response.status();
        let report: Value = response.json().await?;
        if !status.is_success() || report["rejected"].as_array().is_none_or(|r| !r.is_empty()) {
            bail!("import answered {status}: {report}");
        }
        Ok(())
    }

    /// Queues the settlement of `day` (admin) and returns the run id.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn settle(&self, admin: &str, day: &str) -> anyhow::Result<i64> {
        let queued: Value = self
            .call(
                Method::POST,
                "/api/v1/admin/settlements",
                Some(admin),
                None,
                Some(&json!({"from": day, "to": day})),
            )
            .await?;
        queued["run_ids"][0]
            .as_i64()
            .context("settlement answered no run id")
    }

    /// One settlement run (admin).
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn run(&self, admin: &str, run_id: i64) -> anyhow::Result<Run> {
        self.call(
            Method::GET,
            &format!("/api/v1/admin/settlements/{run_id}"),
            Some(admin),
            None,
            None,
        )
        .await
    }

    /// A GET answered with JSON.
    ///
    /// # Errors
    /// As [`Gateway::call`].
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Value> {
        self.call(Method::GET, path, token, None, None).await
    }
}
