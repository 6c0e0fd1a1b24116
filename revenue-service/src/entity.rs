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
