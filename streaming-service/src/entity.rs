//! The streaming service's tables, as sea-orm entities.

/// `videos`: one uploaded video; `duration_seconds` 1 to 86,400 (SPEC §4).
pub mod video {
    use sea_orm::entity::prelude::*;

    /// One video.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "videos")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub creator_id: i64,
        pub title: String,
        pub description: String,
        pub duration_seconds: i32,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `ads`: the ad inventory; a contract from `start_date` to `end_date`
/// inclusive, in the platform time zone.
pub mod ad {
    use sea_orm::entity::prelude::*;

    /// One ad.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ads")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub title: String,
        pub duration_seconds: i32,
        pub start_date: Date,
        pub end_date: Date,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `ad_slots`: the ad assigned to each slot of a video at upload (`None`
/// when the inventory had no active ad).
pub mod ad_slot {
    use sea_orm::entity::prelude::*;

    /// One slot.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ad_slots")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub video_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position_seconds: i32,
        pub ad_id: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `daily_counts`: a video's counts of one platform day (SPEC §5).
/// `last_batch` and `last_batch_seq` are the token and the sequence number
/// of the last write-back batch applied to the row: a batch is applied only
/// when its sequence is greater, which makes applying it idempotent (see
/// [`crate::counting`]). `views_before` and
/// `ad_views_before` are the video's sums over every earlier day, kept up
/// to date by each write that changes a day (see [`crate::daily_counts::refresh_cumulative`]),
/// so the settlement's stream is a plain range scan.
pub mod daily_count {
    use sea_orm::entity::prelude::*;

    /// One (video, day).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "daily_counts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub video_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub day: Date,
        pub views: i64,
        pub watch_seconds: i64,
        pub ad_views: i64,
        pub last_batch: Option<String>,
        pub last_batch_seq: Option<i64>,
        pub views_before: i64,
        pub ad_views_before: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `watermarks`: one row (`id` 1): every event before `written_back_until`
/// is in `daily_counts`.
pub mod watermark {
    use sea_orm::entity::prelude::*;

    /// The watermark.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "watermarks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub written_back_until: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
