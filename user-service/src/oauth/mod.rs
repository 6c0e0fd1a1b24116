//! Social login (SPEC §3): the OAuth 2.0 authorization code flow with PKCE
//! (S256), a single-use `state` that expires, and OpenID Connect ID tokens,
//! for Google, Kakao and one operator-configured OpenID Connect provider.
//!
//! [`SocialLogin::start`] stores a state (its SHA-256), the PKCE verifier,
//! a nonce and the role asked for, and returns the provider's authorization
//! URL. [`SocialLogin::complete`] takes the state exactly once, exchanges the
//! code with the verifier (the `oauth2` crate), validates the ID token
//! ([`provider::Provider::validate`]) and maps the identity to one account:
//! an identity seen before signs into its account; an email the provider
//! asserts as verified links to the account with that email; otherwise a new
//! viewer (or creator, if asked for) is created. An email that belongs to an
//! account but is not verified by the provider takes nothing over.

pub mod entity;
pub mod provider;

use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use common::auth::Role;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    },
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::{
    accounts::{Account, AccountStore, domain},
    error::UserError,
};
use provider::{IdClaims, Provider, ProviderConfig};

/// The token endpoint's answer carries the ID token beside the access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    /// The ID token (a JWT).
    pub id_token: String,
}

impl ExtraTokenFields for IdTokenField {}

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenField, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The social login of the user service.
#[derive(Clone)]
pub struct SocialLogin {
    providers: Arc<HashMap<String, Provider>>,
    db: DatabaseConnection,
    accounts: AccountStore,
    http: reqwest::Client,
    state_ttl: Duration,
}

impl SocialLogin {
    /// Social login with these providers, keeping states for `state_ttl`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        providers: Vec<ProviderConfig>,
        db: DatabaseConnection,
        accounts: AccountStore,
        state_ttl: Duration,
    ) -> anyhow::Result<Self> {
        // Following redirects from a token endpoint would open the service
        // to request forgery; a provider answers directly or not at all.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()?;
        let providers = providers
            .into_iter()
            .map(|c| (c.name.clone(), Provider::new(c, http.clone())))
            .collect();
        Ok(Self {
            providers: Arc::new(providers),
            db,
            accounts,
            http,
            state_ttl,
        })
    }

    /// Names of the configured providers.
    pub fn provider_names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    fn provider(&self, name: &str) -> Result<&Provider, UserError> {
        self.providers
            .get(name)
            .ok_or_else(|| UserError::OAuthProviderNotFound(name.to_owned()))
    }

    async fn client(&self, provider: &Provider) -> Result<OidcClient, UserError> {
        let m = provider.metadata().await?;
        let c = &provider.config;
        let url = |what: &str, e: oauth2::url::ParseError| {
            UserError::OAuthProvider(format!("{} {what}: {e}", c.name))
        };
        Ok(oauth2::Client::new(ClientId::new(c.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                c.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(
                AuthUrl::new(m.authorization_endpoint.clone())
                    .map_err(|e| url("authorization endpoint", e))?,
            )
            .set_token_uri(
                TokenUrl::new(m.token_endpoint.clone()).map_err(|e| url("token endpoint", e))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(c.redirect_uri.clone()).map_err(|e| url("redirect URI", e))?,
            ))
    }

    /// Starts a login with `provider` that, if it creates an account, makes
    /// it a `role` (`viewer` when empty, or `creator`). Returns the URL to
    /// send the browser to.
    ///
    /// # Errors
    /// Unknown provider (404), a role other than viewer or creator (400), an
    /// unreachable provider (503).
    pub async fn start(&self, provider: &str, role: &str) -> Result<String, UserError> {
        let p = self.provider(provider)?;
        let role = if role.is_empty() {
            Role::Viewer
        } else {
            domain::parse_sign_up_role(role)?
        };
        let client = self.client(p).await?;
        let state = random_token();
        let nonce = random_token();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(|| CsrfToken::new(state.clone()))
            .add_extra_param("nonce", nonce.clone())
            .set_pkce_challenge(challenge);
        for scope in &p.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _) = request.url();
        let ttl =
            chrono::Duration::from_std(self.state_ttl).unwrap_or(chrono::Duration::minutes(10));
        entity::state::ActiveModel {
            state_hash: Set(hash(&state)),
            provider: Set(provider.to_owned()),
            pkce_verifier: Set(verifier.secret().clone()),
            nonce: Set(nonce),
            role: Set(role.as_str().to_owned()),
            expires_at: Set(Utc::now() + ttl),
            used_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(url.to_string())
    }

    /// Completes a login from the provider's redirect and returns the
    /// account signed into.
    ///
    /// # Errors
    /// 400 `invalid_field` on `state` when the state is unknown (tampered),
    /// expired or used already; 400 `oauth_denied` when the provider sent an
    /// error; 400 `oauth_exchange_failed` when the provider refused the code
    /// or the PKCE verifier; 401 `invalid_id_token`; 409 `email_unverified`
    /// when the email belongs to an account and is not verified; 503 when
    /// the provider is unreachable. Nothing is created on any error.
    pub async fn complete(
        &self,
        provider: &str,
        code: &str,
        state: &str,
        error: &str,
    ) -> Result<Account, UserError> {
        let p = self.provider(provider)?;
        let pending = self.take_state(provider, state).await?;
        if !error.is_empty() {
            return Err(UserError::OAuthDenied(error.chars().take(100).collect()));
        }
        if code.is_empty() {
            return Err(UserError::field("code", "is required"));
        }
        let client = self.client(p).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| UserError::OAuthExchange(exchange_error(&e)))?;
        let claims = p
            .validate(&token.extra_fields().id_token, &pending.nonce)
            .await?;
        let role = Role::from_name(&pending.role).unwrap_or(Role::Viewer);
        self.account_for(provider, claims, role).await
    }

    /// Takes a pending state exactly once: the update that marks it used
    /// succeeds for one caller only, and only before it expires.
    async fn take_state(
        &self,
        provider: &str,
        state: &str,
    ) -> Result<entity::state::Model, UserError> {
        let refused = || UserError::field("state", "is unknown, expired or already used");
        if state.is_empty() || state.len() > 128 {
            return Err(refused());
        }
        let key = hash(state);
        let now = Utc::now();
        let taken = entity::state::Entity::update_many()
            .col_expr(entity::state::Column::UsedAt, Expr::value(now))
            .filter(entity::state::Column::StateHash.eq(&key))
            .filter(entity::state::Column::Provider.eq(provider))
            .filter(entity::state::Column::UsedAt.is_null())
            .filter(entity::state::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        if taken.rows_affected != 1 {
            return Err(refused());
        }
        entity::state::Entity::find_by_id(key)
            .one(&self.db)
            .await?
            .ok_or_else(refused)
    }

    /// The account of a validated identity (see the module docs).
    async fn account_for(
        &self,
        provider: &str,
        claims: IdClaims,
        role: Role,
    ) -> Result<Account, UserError> {
        let linked =
            entity::identity::Entity::find_by_id((provider.to_owned(), claims.sub.clone()))
                .one(&self.db)
                .await?;
        if let Some(identity) = linked {
            return self.accounts.get(identity.user_id).await;
        }
        let email = claims
            .email
            .as_deref()
            .and_then(|e| domain::Email::parse(e).ok());
        let existing = match &email {
            Some(email) => self.accounts.find_by_email(email).await?,
            None => None,
        };
        let account = match (existing, claims.email_verified) {
            (Some(account), true) => account,
            (Some(_), false) => return Err(UserError::EmailUnverified),
            (None, _) => {
                // No email (or one we cannot use): a placeholder address
                // that can never receive mail keeps `email` unique.
                let email = match email {
                    Some(email) => email,
                    None => domain::Email::parse(&format!(
                        "{provider}.{}@social.invalid",
                        hash(&claims.sub).get(..16).unwrap_or_default()
                    ))?,
                };
                let name = claims
                    .name
                    .or(claims.nickname)
                    .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or("").to_owned());
                self.accounts.create_social(email, &name, role).await?
            }
        };
        let subject = claims.sub;
        let linked = entity::identity::ActiveModel {
            provider: Set(provider.to_owned()),
            subject: Set(subject.clone()),
            user_id: Set(account.id),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await;
        match linked {
            Ok(_) => {
                tracing::info!(user_id = account.id, provider, "social identity linked");
                Ok(account)
            }
            // A concurrent first login of the same identity linked it
            // first: sign into the account it linked to.
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                let identity = entity::identity::Entity::find_by_id((provider.to_owned(), subject))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| UserError::Internal(anyhow::anyhow!("identity vanished")))?;
                self.accounts.get(identity.user_id).await
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// 256 random bits, base64url.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the provider said when it refused the code, without echoing it.
fn exchange_error<RE: std::error::Error + 'static>(
    e: &oauth2::RequestTokenError<RE, BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            format!("the provider answered {}", r.error())
        }
        oauth2::RequestTokenError::Request(_) => "the provider could not be reached".to_owned(),
        oauth2::RequestTokenError::Parse(_, _) => {
            "the provider's answer had no ID token".to_owned()
        }
        oauth2::RequestTokenError::Other(m) => m.clone(),
    }
}
