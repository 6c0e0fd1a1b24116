//! The tables of social login: pending authorization states and the
//! provider identities linked to accounts.

/// `oauth_states`: one authorization request in flight (SPEC §3). Only the
/// SHA-256 of the state is stored; `used_at` makes it single-use.
pub mod state {
    use sea_orm::entity::prelude::*;

    /// One pending state.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_states")]
    pub struct Model {
        /// SHA-256 of the state, hex.
        #[sea_orm(primary_key, auto_increment = false)]
        pub state_hash: String,
        /// Provider name.
        pub provider: String,
        /// The PKCE code verifier (RFC 7636).
        pub pkce_verifier: String,
        /// The OpenID Connect nonce the ID token must carry.
        pub nonce: String,
        /// Role of an account this login creates.
        pub role: String,
        /// After this the state is refused.
        pub expires_at: DateTimeUtc,
        /// When the callback used it.
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `oauth_identities`: a provider identity (provider, subject) belongs to
/// exactly one account.
pub mod identity {
    use sea_orm::entity::prelude::*;

    /// One linked identity.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "oauth_identities")]
    pub struct Model {
        /// Provider name.
        #[sea_orm(primary_key, auto_increment = false)]
        pub provider: String,
        /// The provider's `sub`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub subject: String,
        /// The account.
        pub user_id: i64,
        /// When it was linked.
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
