//! The catalogue's rules (SPEC §4), without I/O: what an upload or an ad
//! must be (parsed at the edge into [`NewVideo`] and [`NewAd`]), where a
//! video's ad slots are, an ad's status on a day, and which ad a slot is
//! served.

use chrono::NaiveDate;
use common::error::FieldViolation;

use crate::error::StreamingError;

/// Seconds of content between ad slots (SPEC §4).
pub const AD_SLOT_INTERVAL_SECONDS: i32 = 300;
/// The longest video, in seconds (SPEC §4: 86,400).
pub const MAX_DURATION_SECONDS: i32 = 86_400;

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
