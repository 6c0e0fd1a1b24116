//! Videos and ads (SPEC §4) in the streaming database: uploads with their
//! ad slots, the inventory, and the caches play and pause read (a video's
//! owner and length, the ads active today). The rules themselves are in
//! [`domain`].

mod domain;

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use common::{paging::fetch_page, time::PlatformTime};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::RwLock;

pub use domain::{
    AD_SLOT_INTERVAL_SECONDS, AdStatus, MAX_DURATION_SECONDS, NewAd, NewVideo, ad_slot_positions,
    served_ad,
};

use crate::{
    clock::Clock,
    entity::{ad, ad_slot, video},
    error::StreamingError,
};

/// How long the list of active ads is reused before it is read again.
const ACTIVE_ADS_TTL: Duration = Duration::from_secs(5);

/// What play and pause need to know about a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoInfo {
    /// The owner.
    pub creator_id: i64,
    /// Seconds.
    pub duration_seconds: i32,
}

/// A video with its slots as served now.
#[derive(Debug, Clone)]
pub struct VideoView {
    /// The row.
    pub video: video::Model,
    /// `(position_seconds, served ad id)`.
    pub ad_slots: Vec<(i32, Option<i64>)>,
}

/// Ids of the ads active on `day`, read at `read_at`.
type ActiveAds = (std::time::Instant, NaiveDate, Arc<Vec<i64>>);

/// Videos and ads in the streaming database.
#[derive(Clone)]
pub struct Catalog {
    db: DatabaseConnection,
    time: PlatformTime,
    clock: Clock,
    infos: Arc<quick_cache::sync::Cache<i64, VideoInfo>>,
    active_ads: Arc<RwLock<Option<ActiveAds>>>,
}

impl Catalog {
    /// A catalog over `db`, with days in `time`'s zone and today by `clock`.
    pub fn new(db: DatabaseConnection, time: PlatformTime, clock: Clock) -> Self {
        Self {
            db,
            time,
            clock,
            infos: Arc::new(quick_cache::sync::Cache::new(100_000)),
            active_ads: Arc::new(RwLock::new(None)),
        }
    }

    /// Ids of the ads active today, ascending (read at most every 5 s).
    ///
    /// # Errors
    /// Database failures.
    pub async fn active_ads(&self) -> Result<Arc<Vec<i64>>, StreamingError> {
        let today = self.time.day_of(self.clock.now());
        if let Some((at, day, ids)) = self.active_ads.read().await.as_ref()
            && at.elapsed() < ACTIVE_ADS_TTL
            && *day == today
        {
            return Ok(ids.clone());
        }
        let ids: Vec<i64> = ad::Entity::find()
            .select_only()
            .column(ad::Column::Id)
            .filter(ad::Column::StartDate.lte(today))
            .filter(ad::Column::EndDate.gte(today))
            .order_by_asc(ad::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let ids = Arc::new(ids);
        *self.active_ads.write().await = Some((std::time::Instant::now(), today, ids.clone()));
        Ok(ids)
    }

    /// Stores a video and assigns each of its slots an active ad.
    ///
    /// # Errors
    /// Database failures.
    pub async fn create_video(
        &self,
        creator_id: i64,
        new: NewVideo,
    ) -> Result<VideoView, StreamingError> {
        let active = self.active_ads().await?;
        let txn = self.db.begin().await?;
        let row = video::Entity::insert(video::ActiveModel {
            creator_id: Set(creator_id),
            title: Set(new.title),
            description: Set(new.description),
            duration_seconds: Set(new.duration_seconds),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec_with_returning(&txn)
        .await?;
        let slots: Vec<(i32, Option<i64>)> = ad_slot_positions(row.duration_seconds)
            .into_iter()
            .enumerate()
            .map(|(i, pos)| (pos, served_ad(row.id, i, None, &active)))
            .collect();
        if !slots.is_empty() {
            ad_slot::Entity::insert_many(slots.iter().map(|&(pos, ad_id)| ad_slot::ActiveModel {
                video_id: Set(row.id),
                position_seconds: Set(pos),
                ad_id: Set(ad_id),
            }))
            .exec(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(VideoView {
            video: row,
            ad_slots: slots,
        })
    }

    /// One video with its slots as served today.
    ///
    /// # Errors
    /// [`StreamingError::VideoNotFound`]; database failures.
    pub async fn video(&self, video_id: i64) -> Result<VideoView, StreamingError> {
        let row = video::Entity::find_by_id(video_id)
            .one(&self.db)
            .await?
            .ok_or(StreamingError::VideoNotFound)?;
        let mut views = self.with_slots(vec![row]).await?;
        views.pop().ok_or(StreamingError::VideoNotFound)
    }

    /// Videos after id `after`, ascending, at most `limit`, optionally of
    /// one creator; and whether more follow.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list_videos(
        &self,
        after: i64,
        limit: u32,
        creator_id: Option<i64>,
    ) -> Result<(Vec<VideoView>, bool), StreamingError> {
        let mut query = video::Entity::find().filter(video::Column::Id.gt(after));
        if let Some(creator) = creator_id {
            query = query.filter(video::Column::CreatorId.eq(creator));
        }
        let (rows, more) =
            fetch_page(query.order_by_asc(video::Column::Id), limit, &self.db).await?;
        Ok((self.with_slots(rows).await?, more))
    }

    async fn with_slots(&self, rows: Vec<video::Model>) -> Result<Vec<VideoView>, StreamingError> {
        let active = self.active_ads().await?;
        let ids: Vec<i64> = rows.iter().map(|v| v.id).collect();
        let slots = ad_slot::Entity::find()
            .filter(ad_slot::Column::VideoId.is_in(ids))
            .order_by_asc(ad_slot::Column::VideoId)
            .order_by_asc(ad_slot::Column::PositionSeconds)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|video| {
                let ad_slots = slots
                    .iter()
                    .filter(|s| s.video_id == video.id)
                    .enumerate()
                    .map(|(i, s)| (s.position_seconds, served_ad(video.id, i, s.ad_id, &active)))
                    .collect();
                VideoView { video, ad_slots }
            })
            .collect())
    }

    /// Owner and duration of a video (cached; videos never change them).
    ///
    /// # Errors
    /// [`StreamingError::VideoNotFound`]; database failures.
    pub async fn info(&self, video_id: i64) -> Result<VideoInfo, StreamingError> {
        if let Some(info) = self.infos.get(&video_id) {
            return Ok(info);
        }
        let row: Option<(i64, i32)> = video::Entity::find_by_id(video_id)
            .select_only()
            .column(video::Column::CreatorId)
            .column(video::Column::DurationSeconds)
            .into_tuple()
            .one(&self.db)
            .await?;
        let (creator_id, duration_seconds) = row.ok_or(StreamingError::VideoNotFound)?;
        let info = VideoInfo {
            creator_id,
            duration_seconds,
        };
        self.infos.insert(video_id, info);
        Ok(info)
    }

    /// Adds an ad to the inventory.
    ///
    /// # Errors
    /// Database failures.
    pub async fn create_ad(&self, new: NewAd) -> Result<ad::Model, StreamingError> {
        let row = ad::Entity::insert(ad::ActiveModel {
            title: Set(new.title),
            duration_seconds: Set(new.duration_seconds),
            start_date: Set(new.start_date),
            end_date: Set(new.end_date),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .exec_with_returning(&self.db)
        .await?;
        *self.active_ads.write().await = None;
        Ok(row)
    }

    /// Ads after id `after`, ascending, at most `limit`; and whether more
    /// follow.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list_ads(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<(Vec<ad::Model>, bool), StreamingError> {
        let query = ad::Entity::find()
            .filter(ad::Column::Id.gt(after))
            .order_by_asc(ad::Column::Id);
        Ok(fetch_page(query, limit, &self.db).await?)
    }

    /// The status of `ad` today.
    pub fn status(&self, ad: &ad::Model) -> AdStatus {
        AdStatus::on(
            self.time.day_of(self.clock.now()),
            ad.start_date,
            ad.end_date,
        )
    }
}
