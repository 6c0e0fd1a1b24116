//! The revenue service's tables, as sea-orm entities.

/// `rate_cards`: versioned tier prices (SPEC §6); tiers as JSON
/// `[{"after": 0, "price": "1.0"}, …]`.
pub mod rate_card {
    use sea_orm::entity::prelude::*;

    /// One rate card.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rate_cards")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub effective_from: Date,
        pub video_tiers: String,
        pub ad_tiers: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `daily_stats`: one video's settled day (SPEC §6); amounts in whole won.
/// `views` and `ad_views` are the counts after adjustments (SPEC §11.3),
/// the ones priced; `original_*` are the counts as pulled.
pub mod daily_stat {
    use common::domain::{CreatorId, VideoId, Won};
    use sea_orm::entity::prelude::*;

    /// One (day, video).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "daily_stats")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: Date,
        #[sea_orm(primary_key, auto_increment = false)]
        pub video_id: VideoId,
        pub creator_id: CreatorId,
        pub title: String,
        pub views: i64,
        pub watch_seconds: i64,
        pub ad_views: i64,
        pub video_amount: Won,
        pub ad_amount: Won,
        pub total_amount: Won,
        pub rate_card_version: i32,
        /// The views before adjustments; NULL (PostgreSQL): equal to `views`.
        pub original_views: Option<i64>,
        /// The ad views before adjustments; NULL (PostgreSQL): equal to
        /// `ad_views`.
        pub original_ad_views: Option<i64>,
        /// When its amounts last changed after the day was final.
        pub restated_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `settlement_runs`: one run of one day (SPEC §6), its status and totals.
pub mod settlement_run {
    use common::domain::{RunErrorCode, RunStatus, Won};
    use sea_orm::entity::prelude::*;

    /// One run.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settlement_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub day: Date,
        pub status: RunStatus,
        pub created_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        pub finished_at: Option<DateTimeUtc>,
        pub heartbeat_at: Option<DateTimeUtc>,
        pub rows: i64,
        pub rate_card_version: Option<i32>,
        pub total_amount: Option<Won>,
        pub previous_total_amount: Option<Won>,
        pub error: Option<String>,
        pub error_code: Option<RunErrorCode>,
        /// Later (video, day) rows this run re-priced (SPEC §11.2).
        pub restated_rows: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `settlement_leases`: who may settle a day right now; a lease expires
/// unless its holder renews it (SPEC §6: two runs of a day never
/// interleave, across replicas).
pub mod settlement_lease {
    use sea_orm::entity::prelude::*;

    /// One day's lease.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settlement_leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: Date,
        pub holder: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `settled_days`: each day settled at least once, and when its amounts
/// last changed after it was final (SPEC §11.2).
pub mod settled_day {
    use sea_orm::entity::prelude::*;

    /// One settled day.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settled_days")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: Date,
        pub settled_at: DateTimeUtc,
        pub restated_at: Option<DateTimeUtc>,
        /// The streaming service's change version its last run read.
        pub counts_version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `tax_policies`: versioned, effective-dated withholding rules (SPEC
/// §11.4); rates are exact decimals as text.
pub mod tax_policy {
    use sea_orm::entity::prelude::*;

    /// One policy.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tax_policies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub effective_from: Date,
        pub income_tax_rate: String,
        pub local_tax_rate: String,
        pub truncate_to: i64,
        pub small_amount: i64,
        pub minimum_payout: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `ledger_transfers`: the append-only double-entry ledger (SPEC §11.1),
/// stored narrow: a transfer moves `amount` (> 0 won) from its debit
/// account to its credit account, both as codes ([`crate::ledger::Account`];
/// code 0 is the row creator's payable), with its kind as a code
/// ([`crate::ledger::kind_code`]); what its posting's transfers share is
/// in `ledger_postings`. Never updated or deleted. The view
/// `ledger_transfers_named` shows both with the SPEC's names.
pub mod ledger_transfer {
    use sea_orm::entity::prelude::*;

    /// One transfer.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_transfers")]
    pub struct Model {
        /// The creator whose payable account one side is (0: none).
        #[sea_orm(primary_key, auto_increment = false)]
        pub creator_id: i64,
        #[sea_orm(primary_key)]
        pub transfer_id: i64,
        pub posting_id: i64,
        pub video_id: Option<i64>,
        pub amount: i64,
        pub day: Option<Date>,
        pub kind: i16,
        pub debit_account: i16,
        pub credit_account: i16,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `ledger_postings`: what every transfer of one posting shares (SPEC
/// §11.1's source, reason, actor and time).
pub mod ledger_posting {
    use sea_orm::entity::prelude::*;

    /// One posting.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ledger_postings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub posting_id: i64,
        /// `run`, `adjustment`, `statement`, `payout` or `migration`.
        pub source_kind: String,
        pub source_id: i64,
        pub reason: Option<String>,
        /// `settlement`, or the admin's user id.
        pub actor: String,
        pub posted_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `adjustments`: invalid traffic removed from a video's day (SPEC §11.3).
pub mod adjustment {
    use sea_orm::entity::prelude::*;

    /// One adjustment.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "adjustments")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub adjustment_id: i64,
        pub video_id: i64,
        pub creator_id: i64,
        pub day: Date,
        pub views: i64,
        pub ad_views: i64,
        pub watch_seconds: i64,
        pub reason: String,
        /// Won taken back over the day and the later days re-priced.
        pub amount_clawed_back: i64,
        pub created_at: DateTimeUtc,
        /// The admin's user id.
        pub actor: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `audit_log`: every admin write (SPEC §11.6).
pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    /// One admin write.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub audit_id: i64,
        /// The admin's user id.
        pub actor: i64,
        /// E.g. `POST /api/v1/admin/adjustments`.
        pub action: String,
        pub target: String,
        pub request_id: String,
        pub at: DateTimeUtc,
        /// The HTTP status answered; `None` until recorded.
        pub status: Option<i32>,
        pub replayed: bool,
        pub idempotency_key: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `closes`: one row per closed month (SPEC §11.4).
pub mod close {
    use sea_orm::entity::prelude::*;

    /// One closed month.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "closes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub close_id: i64,
        /// The month's first day.
        #[sea_orm(unique)]
        pub month: Date,
        /// Every payable transfer with an id up to this and a day up to the
        /// month's end is on this close's or an earlier close's statements.
        pub transfer_cursor: i64,
        /// The tax policy used.
        pub tax_policy_version: i32,
        /// How many statements it issued.
        pub statements: i64,
        pub closed_at: DateTimeUtc,
        /// `schedule`, or the admin's user id.
        pub actor: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `statements`: one per creator and closed month (SPEC §11.4), whole won.
pub mod statement {
    use sea_orm::entity::prelude::*;

    /// One statement.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "statements")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub statement_id: i64,
        pub creator_id: i64,
        /// The month's first day.
        pub month: Date,
        pub close_id: i64,
        pub opening_balance: i64,
        pub earnings: i64,
        pub restatements: i64,
        pub adjustments: i64,
        pub gross: i64,
        pub payout: i64,
        pub income_tax: i64,
        pub local_tax: i64,
        pub net: i64,
        pub closing_balance: i64,
        /// `below_minimum`, `negative_balance` or `hold`; `None` when paid.
        pub carried_reason: Option<String>,
        /// The hold's reason, when the creator was on hold at the close.
        pub hold_reason: Option<String>,
        pub tax_policy_version: i32,
        /// `issued` or `paid`.
        pub status: String,
        pub issued_at: DateTimeUtc,
        pub paid_at: Option<DateTimeUtc>,
        pub payout_reference: Option<String>,
        /// The admin who recorded the bank transfer.
        pub paid_by: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `creator_holds`: creators whose payouts are held (SPEC §11.4).
pub mod creator_hold {
    use sea_orm::entity::prelude::*;

    /// One hold.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "creator_holds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub creator_id: i64,
        /// Shown to the creator on their statements.
        pub reason: String,
        pub held_since: DateTimeUtc,
        /// The admin's user id.
        pub actor: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
