//! The `user.v1.UserService` gRPC handlers: parse, call the core, map errors.

use common::{
    auth::{AccessClaims, Role},
    paging::{decode_cursor, encode_cursor, page_size},
};
use proto::user::v1::{
    CompleteOAuthRequest, GetJwksRequest, GetJwksResponse, GetMeRequest, ListOAuthProvidersRequest,
    ListOAuthProvidersResponse, ListUsersRequest, ListUsersResponse, LoginRequest, LogoutRequest,
    LogoutResponse, RefreshRequest, SignUpRequest, StartOAuthRequest, StartOAuthResponse,
    TokenPair, User, user_service_server::UserService,
};
use secrecy::SecretString;
use tonic::{Request, Response, Status, metadata::MetadataMap};
use tracing::instrument;

use crate::{
    accounts::{Account, AccountStore, domain::NewAccount},
    error::UserError,
    oauth::SocialLogin,
    tokens::{access::AccessTokens, refresh::RefreshTokens},
};

/// The gRPC face of the user service.
#[derive(Clone)]
pub struct UserApi {
    accounts: AccountStore,
    access: AccessTokens,
    refresh: RefreshTokens,
    social: SocialLogin,
    metrics: crate::metrics::UserMetrics,
}

impl UserApi {
    /// Handlers over these stores.
    pub fn new(
        accounts: AccountStore,
        access: AccessTokens,
        refresh: RefreshTokens,
        social: SocialLogin,
    ) -> Self {
        Self {
            accounts,
            access,
            refresh,
            social,
            metrics: crate::metrics::UserMetrics::new(),
        }
    }

    /// The same handlers, counting logins and refreshes in `metrics`.
    pub fn observed_by(mut self, metrics: crate::metrics::UserMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The caller's verified claims (SPEC §9: services verify the forwarded
    /// token themselves).
    fn caller(&self, metadata: &MetadataMap) -> Result<AccessClaims, UserError> {
        let token = common::grpc::bearer_token(metadata).ok_or(UserError::InvalidAccessToken)?;
        self.access
            .verifier()
            .verify(token)
            .map_err(|_| UserError::InvalidAccessToken)
    }

    async fn token_pair(
        &self,
        account: &Account,
        refresh_token: String,
    ) -> Result<TokenPair, UserError> {
        let role = Role::from_name(&account.role).ok_or_else(|| {
            anyhow::anyhow!("user {} has unknown role {:?}", account.id, account.role)
        })?;
        let (access_token, expires_in) = self.access.issue(account.id, role)?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token,
        })
    }
}

fn to_proto(a: Account) -> User {
    User {
        user_id: a.id,
        email: a.email,
        display_name: a.display_name,
        role: a.role,
        created_at: Some(common::grpc::timestamp(a.created_at)),
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn sign_up(&self, request: Request<SignUpRequest>) -> Result<Response<User>, Status> {
        let r = request.into_inner();
        let new = NewAccount::parse(&r.email, &r.password, &r.display_name, &r.role)?;
        let account = self.accounts.sign_up(new).await?;
        tracing::info!(user_id = account.id, role = %account.role, "signed up");
        Ok(Response::new(to_proto(account)))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<TokenPair>, Status> {
        let r = request.into_inner();
        let pair = async {
            let account = self
                .accounts
                .authenticate(&r.email, SecretString::from(r.password))
                .await?;
            let refresh_token = self.refresh.issue(account.id).await?;
            self.token_pair(&account, refresh_token).await
        }
        .await;
        crate::metrics::UserMetrics::count(&self.metrics.logins, &pair);
        Ok(Response::new(pair?))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn refresh(
        &self,
        request: Request<RefreshRequest>,
    ) -> Result<Response<TokenPair>, Status> {
        let presented = request.into_inner().refresh_token;
        if presented.is_empty() {
            return Err(UserError::field("refresh_token", "is required").into());
        }
        let pair = async {
            let rotated = self.refresh.rotate(&presented).await?;
            let account = self
                .accounts
                .get(rotated.user_id)
                .await
                .map_err(|_| UserError::InvalidRefreshToken)?;
            self.token_pair(&account, rotated.token).await
        }
        .await;
        crate::metrics::UserMetrics::count(&self.metrics.refreshes, &pair);
        Ok(Response::new(pair?))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let claims = self.caller(request.metadata())?;
        let presented = request.into_inner().refresh_token;
        if presented.is_empty() {
            return Err(UserError::field("refresh_token", "is required").into());
        }
        self.refresh
            .revoke(
                &presented,
                claims
                    .user_id()
                    .map_err(|_| UserError::InvalidAccessToken)?,
            )
            .await?;
        Ok(Response::new(LogoutResponse {}))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn get_me(&self, request: Request<GetMeRequest>) -> Result<Response<User>, Status> {
        let claims = self.caller(request.metadata())?;
        let user_id = claims
            .user_id()
            .map_err(|_| UserError::InvalidAccessToken)?;
        Ok(Response::new(to_proto(self.accounts.get(user_id).await?)))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let claims = self.caller(request.metadata())?;
        if claims.role != Role::Admin {
            return Err(UserError::Forbidden("only admins may list users").into());
        }
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| UserError::field("limit", e))?;
        let after = decode_cursor("user", &r.cursor).map_err(|e| UserError::field("cursor", e))?;
        let (rows, more) = self.accounts.list(after, limit).await?;
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => encode_cursor("user", last.id),
            _ => String::new(),
        };
        Ok(Response::new(ListUsersResponse {
            users: rows.into_iter().map(to_proto).collect(),
            next_cursor,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let jwks_json = serde_json::to_string(&self.access.jwks())
            .map_err(|e| Status::from(UserError::Internal(e.into())))?;
        Ok(Response::new(GetJwksResponse { jwks_json }))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn start_o_auth(
        &self,
        request: Request<StartOAuthRequest>,
    ) -> Result<Response<StartOAuthResponse>, Status> {
        let r = request.into_inner();
        let authorization_url = self.social.start(&r.provider, &r.role).await?;
        Ok(Response::new(StartOAuthResponse { authorization_url }))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn complete_o_auth(
        &self,
        request: Request<CompleteOAuthRequest>,
    ) -> Result<Response<TokenPair>, Status> {
        let r = request.into_inner();
        let account = self
            .social
            .complete(&r.provider, &r.code, &r.state, &r.error)
            .await?;
        tracing::info!(user_id = account.id, provider = %r.provider, "signed in with a provider");
        let refresh_token = self.refresh.issue(account.id).await?;
        Ok(Response::new(
            self.token_pair(&account, refresh_token).await?,
        ))
    }

    async fn list_o_auth_providers(
        &self,
        _request: Request<ListOAuthProvidersRequest>,
    ) -> Result<Response<ListOAuthProvidersResponse>, Status> {
        let mut providers = self.social.provider_names();
        providers.sort();
        Ok(Response::new(ListOAuthProvidersResponse { providers }))
    }
}
