//! Videos and ads (SPEC §4): validation, ad slots, the inventory's status,
//! and which ad each slot is served.

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use common::{error::FieldViolation, time::PlatformTime};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::RwLock;

use crate::{
    clock::Clock,
    entity::{ad, ad_slot, video},
    error::StreamingError,
};

/// Seconds of content between ad slots (SPEC §4).
pub const AD_SLOT_INTERVAL_SECONDS: i32 = 300;
/// The longest video, in seconds (SPEC §4: 86,400).
pub const MAX_DURATION_SECONDS: i32 = 86_400;
/// How long the list of active ads is reused before it is read again.
const ACTIVE_ADS_TTL: Duration = Duration::from_secs(5);

/// The ad slot positions of a video of `duration_seconds`: 300·k for
/// 1 ≤ k ≤ ⌊duration / 300⌋ (SPEC §4).
pub fn ad_slot_positions(duration_seconds: i32) -> Vec<i32> {
    (1..=duration_seconds / AD_SLOT_INTERVAL_SECONDS)
        .map(|k| k * AD_SLOT_INTERVAL_SECONDS)
        .collect()
}

/// A validated upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVideo {
    /// 1 to 200 characters, trimmed.
    pub title: String,
    /// At most 5,000 characters.
    pub description: String,
    /// 1 to 86,400 seconds.
    pub duration_seconds: i32,
}

impl NewVideo {
    /// Checks an upload against SPEC §4.
    ///
    /// # Errors
    /// [`StreamingError::InvalidFields`] naming every bad field.
    pub fn parse(
        title: &str,
        description: &str,
        duration_seconds: i32,
    ) -> Result<Self, StreamingError> {
        let mut bad = Vec::new();
        let title = title.trim();
        let title_len = title.chars().count();
        if !(1..=200).contains(&title_len) {
            bad.push(FieldViolation::new("title", "must be 1 to 200 characters"));
        } else if title.chars().any(char::is_control) {
            bad.push(FieldViolation::new(
                "title",
                "must not contain control characters",
            ));
        }
        if description.chars().count() > 5_000 {
            bad.push(FieldViolation::new(
                "description",
                "must be at most 5,000 characters",
            ));
        } else if description
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            // PostgreSQL text cannot hold NUL; other control characters are
            // refused alike (line breaks and tabs are fine).
            bad.push(FieldViolation::new(
                "description",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        if !(1..=MAX_DURATION_SECONDS).contains(&duration_seconds) {
            bad.push(FieldViolation::new(
                "duration_seconds",
                "must be a whole number of seconds from 1 to 86,400",
            ));
        }
        if !bad.is_empty() {
            return Err(StreamingError::InvalidFields(bad));
        }
        Ok(Self {
            title: title.to_owned(),
            description: description.to_owned(),
            duration_seconds,
        })
    }
}

/// An ad's contract status on a day (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdStatus {
    /// Before its start date.
    Scheduled,
    /// From start to end date inclusive.
    Active,
    /// After its end date.
    Expired,
}

impl AdStatus {
    /// The status on `today` of a contract from `start` to `end`.
    pub fn on(today: NaiveDate, start: NaiveDate, end: NaiveDate) -> Self {
        if today < start {
            AdStatus::Scheduled
        } else if today <= end {
            AdStatus::Active
        } else {
            AdStatus::Expired
        }
    }

    /// `scheduled`, `active` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdStatus::Scheduled => "scheduled",
            AdStatus::Active => "active",
            AdStatus::Expired => "expired",
        }
    }
}

/// A validated ad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAd {
    /// 1 to 200 characters.
    pub title: String,
    /// 1 to 600 seconds.
    pub duration_seconds: i32,
    /// First day of the contract.
    pub start_date: NaiveDate,
    /// Last day of the contract, not before `start_date`.
    pub end_date: NaiveDate,
}

impl NewAd {
    /// Checks an ad.
    ///
    /// # Errors
    /// [`StreamingError::InvalidFields`] naming every bad field.
    pub fn parse(
        title: &str,
        duration_seconds: i32,
        start_date: &str,
        end_date: &str,
    ) -> Result<Self, StreamingError> {
        let mut bad = Vec::new();
        let title = title.trim();
        if !(1..=200).contains(&title.chars().count()) {
            bad.push(FieldViolation::new("title", "must be 1 to 200 characters"));
        } else if title.chars().any(char::is_control) {
            bad.push(FieldViolation::new(
                "title",
                "must not contain control characters",
            ));
        }
        if !(1..=600).contains(&duration_seconds) {
            bad.push(FieldViolation::new(
                "duration_seconds",
                "must be a whole number of seconds from 1 to 600",
            ));
        }
        let start = common::time::parse_day(start_date)
            .map_err(|e| bad.push(FieldViolation::new("start_date", e)))
            .ok();
        let end = common::time::parse_day(end_date)
            .map_err(|e| bad.push(FieldViolation::new("end_date", e)))
            .ok();
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            bad.push(FieldViolation::new(
                "end_date",
                "must not be before start_date",
            ));
        }
        match (start, end) {
            (Some(start_date), Some(end_date)) if bad.is_empty() => Ok(Self {
                title: title.to_owned(),
                duration_seconds,
                start_date,
                end_date,
            }),
            _ => Err(StreamingError::InvalidFields(bad)),
        }
    }
}

/// The ad served in the `index`-th slot of video `video_id`: the assigned
/// ad while it is active, else another active ad, spread evenly by slot and
/// video (SPEC §4). `None` when no ad is active.
pub fn served_ad(
    video_id: i64,
    index: usize,
    assigned: Option<i64>,
    active: &[i64],
) -> Option<i64> {
    if let Some(id) = assigned
        && active.binary_search(&id).is_ok()
    {
        return Some(id);
    }
    if active.is_empty() {
        return None;
    }
    let offset = usize::try_from(video_id.rem_euclid(active.len() as i64)).unwrap_or(0);
    active.get((offset + index) % active.len()).copied()
}

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
        let mut rows = query
            .order_by_asc(video::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
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
        let mut rows = ad::Entity::find()
            .filter(ad::Column::Id.gt(after))
            .order_by_asc(ad::Column::Id)
            .limit(u64::from(limit) + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_slots_follow_the_spec() {
        assert!(ad_slot_positions(299).is_empty());
        assert_eq!(ad_slot_positions(300), vec![300]);
        assert_eq!(ad_slot_positions(600), vec![300, 600]);
        assert_eq!(ad_slot_positions(601), vec![300, 600]);
        assert_eq!(ad_slot_positions(3_600).len(), 12);
        assert_eq!(ad_slot_positions(3_600).last(), Some(&3_600));
    }

    #[test]
    fn upload_validation_names_fields() {
        let Err(StreamingError::InvalidFields(f)) = NewVideo::parse(" ", "", 0) else {
            panic!("accepted a bad upload");
        };
        let names: Vec<&str> = f.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(names, ["title", "duration_seconds"]);
        assert!(NewVideo::parse(&"x".repeat(201), "", 10).is_err());
        assert!(NewVideo::parse("ok", "", 86_401).is_err());
        assert!(NewVideo::parse("ok", &"d".repeat(5_001), 10).is_err());
        assert!(NewVideo::parse(&"x".repeat(200), "", 86_400).is_ok());
        // PostgreSQL cannot store NUL: found by schemathesis as a 500.
        let Err(StreamingError::InvalidFields(f)) = NewVideo::parse("a\u{0}b", "x\u{0}", 10) else {
            panic!("NUL accepted");
        };
        let names: Vec<_> = f.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(names, ["title", "description"]);
        assert!(NewVideo::parse("ok", "line one\nline two\tend\r\n", 10).is_ok());
    }

    #[test]
    fn status_follows_contract_dates() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        let (start, end) = (d("2026-11-10"), d("2026-11-20"));
        assert_eq!(
            AdStatus::on(d("2026-11-09"), start, end),
            AdStatus::Scheduled
        );
        assert_eq!(AdStatus::on(d("2026-11-10"), start, end), AdStatus::Active);
        assert_eq!(AdStatus::on(d("2026-11-20"), start, end), AdStatus::Active);
        assert_eq!(AdStatus::on(d("2026-11-21"), start, end), AdStatus::Expired);
        assert!(NewAd::parse("a", 30, "2026-11-20", "2026-11-10").is_err());
    }

    #[test]
    fn slots_spread_over_active_ads_and_expired_ones_are_replaced() {
        let active = [3, 5, 8];
        let served: Vec<_> = (0..6).map(|i| served_ad(0, i, None, &active)).collect();
        assert_eq!(
            served,
            [Some(3), Some(5), Some(8), Some(3), Some(5), Some(8)]
        );
        assert_eq!(served_ad(1, 0, Some(5), &active), Some(5));
        assert_eq!(served_ad(1, 0, Some(4), &active), Some(5));
        assert_eq!(served_ad(1, 0, Some(4), &[]), None);
    }
}
