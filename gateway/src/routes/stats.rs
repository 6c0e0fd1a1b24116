//! Statistics, rankings and earnings over the settled days (SPEC §7).

use actix_web::{HttpRequest, HttpResponse, get, web};
use common::domain::{DayState, Metric, Period, Tally, Won};
use proto::revenue::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Authenticated, MaybeAuthenticated},
    error::ApiError,
    routes::{csv_bytes, csv_error, csv_response, optional_id, unspecified},
    startup::AppState,
};

/// `GET /api/v1/stats/top` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct TopQuery {
    /// `views` or `watch_time`.
    pub metric: String,
    /// `day`, `week` or `month`.
    pub period: String,
    /// Any day of the period, `YYYY-MM-DD`.
    pub date: String,
    /// 1 to 100 (default 5).
    pub limit: Option<String>,
    /// Only this creator's videos.
    pub creator_id: Option<String>,
}

/// One ranked video.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopItem {
    /// 1-based.
    pub rank: u32,
    /// The video.
    pub video_id: i64,
    /// Its title.
    pub title: String,
    /// Its creator.
    pub creator_id: i64,
    /// Views, or watch seconds.
    pub value: i64,
}

/// `GET /api/v1/stats/top` response (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopResponse {
    /// `views` or `watch_time`.
    pub metric: Metric,
    /// `day`, `week` or `month`.
    pub period: Period,
    /// First day of the period.
    pub start: String,
    /// Last day of the period.
    pub end: String,
    /// Ranked, ties by smaller `video_id`.
    pub items: Vec<TopItem>,
}

/// `period` as a protobuf enum, or 400 naming the field.
fn period_field(raw: &str) -> Result<i32, ApiError> {
    let period = Period::parse(raw).map_err(|e| ApiError::bad_field("period", e))?;
    Ok(pb::Period::from(period).into())
}

/// The top videos of a day, week or month by views or watch time.
#[utoipa::path(
    tag = "stats",
    params(TopQuery),
    responses((status = 200, body = TopResponse), (status = 400, body = common::error::ErrorEnvelope))
)]
#[get("/api/v1/stats/top")]
pub async fn top(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    query: web::Query<TopQuery>,
) -> Result<web::Json<TopResponse>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => 5,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::bad_field("limit", "must be an integer from 1 to 100"))?,
    };
    let metric = Metric::parse(&query.metric).map_err(|e| ApiError::bad_field("metric", e))?;
    let message = pb::TopVideosRequest {
        metric: pb::Metric::from(metric).into(),
        period: period_field(&query.period)?,
        date: query.date.clone(),
        limit,
        creator_id: optional_id("creator_id", query.creator_id.as_deref())?,
    };
    let r = state
        .downstreams
        .revenue()
        .top_videos(state.downstreams.request(message, caller.ctx()))
        .await?
        .into_inner();
    Ok(web::Json(TopResponse {
        metric: Metric::try_from(r.metric()).map_err(unspecified)?,
        period: Period::try_from(r.period()).map_err(unspecified)?,
        start: r.start,
        end: r.end,
        items: r
            .items
            .into_iter()
            .map(|i| TopItem {
                rank: i.rank,
                video_id: i.video_id,
                title: i.title,
                creator_id: i.creator_id,
                value: i.value,
            })
            .collect(),
    }))
}

/// `period` and `date` of a report.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct PeriodQuery {
    /// `day`, `week` or `month`.
    pub period: String,
    /// Any day of the period, `YYYY-MM-DD`.
    pub date: String,
    /// `/revenues` only: the creator (admins must name one).
    pub creator_id: Option<String>,
}

/// One day of a video: its counts and amounts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoDay {
    /// The day.
    pub day: String,
    /// Views, watch seconds, ad views (after invalid-traffic adjustments,
    /// SPEC §11.3) and their amounts in won.
    #[serde(flatten)]
    pub tally: Tally,
    /// Views before adjustments.
    pub original_views: i64,
    /// Ad views before adjustments.
    pub original_ad_views: i64,
    /// `estimated`, `final` or `restated` (SPEC §11.2).
    pub state: Option<DayState>,
}

/// `GET /api/v1/videos/{id}/stats` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoStatsResponse {
    /// The video.
    pub video_id: i64,
    /// `day`, `week` or `month`.
    pub period: Period,
    /// First day.
    pub start: String,
    /// Last day.
    pub end: String,
    /// `KRW`.
    pub currency: String,
    /// Settled days of the period.
    pub days: Vec<VideoDay>,
}

/// A video's counts and amounts per settled day of a period. Its owner and
/// admins only.
#[utoipa::path(
    tag = "stats",
    params(("id" = i64, Path, description = "video id"), PeriodQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = VideoStatsResponse),
        (status = 403, description = "not the owner", body = common::error::ErrorEnvelope),
        (status = 404, body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/videos/{id}/stats")]
pub async fn video_stats(
    caller: Authenticated,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PeriodQuery>,
) -> Result<web::Json<VideoStatsResponse>, ApiError> {
    let message = pb::VideoStatsRequest {
        video_id: id.into_inner(),
        period: period_field(&query.period)?,
        date: query.date.clone(),
    };
    let r = state
        .downstreams
        .revenue()
        .video_stats(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    Ok(web::Json(VideoStatsResponse {
        video_id: r.video_id,
        period: Period::try_from(r.period()).map_err(unspecified)?,
        start: r.start,
        end: r.end,
        currency: "KRW".to_owned(),
        days: r
            .days
            .into_iter()
            .map(|d| VideoDay {
                state: DayState::try_from(d.state()).ok(),
                day: d.day,
                tally: d.tally.unwrap_or_default().into(),
                original_views: d.original_views,
                original_ad_views: d.original_ad_views,
            })
            .collect(),
    }))
}

/// One video's earnings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VideoRevenue {
    /// The video.
    pub video_id: i64,
    /// Its title.
    pub title: String,
    /// Views, watch seconds, ad views and their amounts in won, summed
    /// over the period.
    #[serde(flatten)]
    pub tally: Tally,
}

/// `GET /api/v1/revenues` response (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevenuesResponse {
    /// The creator.
    pub creator_id: i64,
    /// `day`, `week` or `month`.
    pub period: Period,
    /// First day.
    pub start: String,
    /// Last day.
    pub end: String,
    /// `KRW`.
    pub currency: String,
    /// Won.
    pub total_amount: Won,
    /// Won.
    pub video_amount: Won,
    /// Won.
    pub ad_amount: Won,
    /// Per video, by id.
    pub videos: Vec<VideoRevenue>,
}

/// A creator's earnings over a period: their own, or any creator's for an
/// admin (`creator_id`). `Accept: text/csv` answers the per-video rows as
/// CSV.
#[utoipa::path(
    tag = "stats",
    params(PeriodQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The totals and the videos; `Accept: text/csv`: the videos as CSV", content(
            (RevenuesResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 403, description = "another creator's revenue", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/revenues")]
pub async fn revenues(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut message = pb::RevenuesRequest {
        creator_id: optional_id("creator_id", query.creator_id.as_deref())?,
        period: period_field(&query.period)?,
        date: query.date.clone(),
        if_version: String::new(),
    };
    if crate::routes::wants_csv(&req) {
        return revenues_csv_stream(&state, &caller, message).await;
    }
    // A copy rendered for this caller and query, sent again while the
    // revenue service says its version is current (issue 19).
    let request_key = format!(
        "{}:{}:{}:{}",
        caller.claims.sub, message.creator_id, message.period, message.date
    );
    let kept = state.report_bodies.get(&request_key);
    if let Some(kept) = &kept {
        message.if_version.clone_from(&kept.version);
    }
    let r = state
        .downstreams
        .revenue()
        .revenues(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    if r.unchanged {
        return match kept {
            Some(kept) if kept.version == r.version => Ok(json_response(kept.body)),
            _ => Err(ApiError::from(tonic::Status::internal(
                "the revenue service answered 'unchanged' to another version",
            ))),
        };
    }
    let totals = Tally::from(r.totals.unwrap_or_default());
    let body = RevenuesResponse {
        creator_id: r.creator_id,
        period: Period::try_from(r.period()).map_err(unspecified)?,
        start: r.start,
        end: r.end,
        currency: "KRW".to_owned(),
        total_amount: totals.total_amount,
        video_amount: totals.video_amount,
        ad_amount: totals.ad_amount,
        videos: r
            .videos
            .into_iter()
            .map(|v| VideoRevenue {
                video_id: v.video_id,
                title: v.title,
                tally: v.tally.unwrap_or_default().into(),
            })
            .collect(),
    };
    let body = actix_web::web::Bytes::from(serde_json::to_vec(&body).map_err(|e| {
        ApiError::from(tonic::Status::internal(format!("rendering revenues: {e}")))
    })?);
    if !r.version.is_empty() {
        state
            .report_bodies
            .keep(request_key, r.version, body.clone());
    }
    Ok(json_response(body))
}

/// A 200 answer of rendered JSON.
fn json_response(body: actix_web::web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// The per-video rows of `GET /api/v1/revenues` as CSV, streamed: the
/// revenue service's `StreamRevenues` pages become CSV chunks as they
/// arrive, so the gateway holds one page (5,000 videos) whatever the
/// creator's number of videos (issue 19). Errors before the first page
/// answer as any report's; a failure after it ends the body early (the
/// status line is sent), logged.
async fn revenues_csv_stream(
    state: &AppState,
    caller: &Authenticated,
    message: pb::RevenuesRequest,
) -> Result<HttpResponse, ApiError> {
    use futures::StreamExt;
    let mut pages = state
        .downstreams
        .revenue()
        .stream_revenues(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    let first = pages
        .message()
        .await?
        .ok_or_else(|| ApiError::from(tonic::Status::internal("no page of revenues")))?;
    let period = Period::try_from(first.period()).map_err(unspecified)?;
    let name = format!("revenues-{}-{period}-{}.csv", first.creator_id, first.start);
    let head = futures::stream::once(async move {
        let mut chunk = tally_csv_header(["video_id", "title"])?;
        chunk.extend(revenues_csv_rows(&first.videos)?);
        Ok::<_, ApiError>(chunk)
    });
    let rest = pages.map(|page| revenues_csv_rows(&page?.videos));
    let body = head.chain(rest).map(|chunk| {
        chunk.map(actix_web::web::Bytes::from).map_err(|e| {
            tracing::warn!(error = %e, "the revenues CSV stopped early");
            std::io::Error::other(e.to_string())
        })
    });
    Ok(crate::routes::csv_attachment(&name).streaming(body))
}

/// The [`Tally`] columns of a CSV, in order.
const TALLY_HEADER: [&str; 6] = [
    "views",
    "watch_seconds",
    "ad_views",
    "video_amount",
    "ad_amount",
    "total_amount",
];

/// `t`'s cells, in [`TALLY_HEADER`]'s order.
fn tally_cells(t: &Tally) -> [String; 6] {
    [
        t.views,
        t.watch_seconds,
        t.ad_views,
        t.video_amount.0,
        t.ad_amount.0,
        t.total_amount.0,
    ]
    .map(|n| n.to_string())
}

/// CSV of `rows`: one header line (`leading` then [`TALLY_HEADER`]), then
/// each row's leading cells and tally.
fn tally_csv<'a, const N: usize>(
    leading: [&str; N],
    rows: impl Iterator<Item = ([std::borrow::Cow<'a, str>; N], &'a Tally)>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = tally_csv_header(leading)?;
    out.extend(tally_csv_rows(rows)?);
    Ok(out)
}

/// The header line of a [`tally_csv`].
fn tally_csv_header<const N: usize>(leading: [&str; N]) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(leading.iter().chain(TALLY_HEADER.iter()))
        .map_err(csv_error)?;
    csv_bytes(out)
}

/// The lines of `rows` in a [`tally_csv`], without its header.
fn tally_csv_rows<'a, const N: usize>(
    rows: impl Iterator<Item = ([std::borrow::Cow<'a, str>; N], &'a Tally)>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    for (cells, tally) in rows {
        let numbers = tally_cells(tally);
        out.write_record(
            cells
                .iter()
                .map(|c| c.as_ref())
                .chain(numbers.iter().map(String::as_str)),
        )
        .map_err(csv_error)?;
    }
    csv_bytes(out)
}

/// Per-video rows as CSV lines (no header), titles neutralised against
/// spreadsheet formulas (SPEC §8).
fn revenues_csv_rows(videos: &[pb::VideoRevenue]) -> Result<Vec<u8>, ApiError> {
    let tallies: Vec<Tally> = videos
        .iter()
        .map(|v| v.tally.unwrap_or_default().into())
        .collect();
    tally_csv_rows(videos.iter().zip(&tallies).map(|(v, tally)| {
        (
            [
                v.video_id.to_string().into(),
                crate::csv_cell::neutralize(&v.title),
            ],
            tally,
        )
    }))
}

/// `GET /api/v1/revenues/daily` parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct SeriesQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD`, at most 365 days after `from` (366 days in
    /// all).
    pub to: String,
    /// The creator (admins must name one; a creator may name only
    /// themselves).
    pub creator_id: Option<String>,
}

/// One day of a creator's series.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeriesDay {
    /// The day.
    pub day: String,
    /// The creator's videos summed over the day: views, watch seconds, ad
    /// views (after adjustments, SPEC §11.3) and their amounts in won;
    /// zeros when nothing was settled.
    #[serde(flatten)]
    pub tally: Tally,
    /// `estimated`, `final` or `restated` (SPEC §11.2); `null` while the
    /// day is not settled.
    pub state: Option<DayState>,
}

/// `GET /api/v1/revenues/daily` response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevenueSeriesResponse {
    /// The creator.
    pub creator_id: i64,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// `KRW`.
    pub currency: String,
    /// The sum of `days`.
    pub totals: Tally,
    /// Every day from `from` to `to`, ascending.
    pub days: Vec<SeriesDay>,
}

/// A creator's views, watch time and earnings per day over up to 366 days:
/// one call per chart. Their own, or any creator's for an admin
/// (`creator_id`). `Accept: text/csv` answers the days as CSV.
#[utoipa::path(
    tag = "stats",
    params(SeriesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every day of the range; `Accept: text/csv`: the days as CSV", content(
            (RevenueSeriesResponse = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "`from` or `to` not a day, `to` before `from` or more than 365 days after it, or an admin naming no `creator_id`", body = common::error::ErrorEnvelope),
        (status = 401, description = "no or a bad access token", body = common::error::ErrorEnvelope),
        (status = 403, description = "another creator's series, or a viewer", body = common::error::ErrorEnvelope),
    )
)]
#[get("/api/v1/revenues/daily")]
pub async fn revenue_series(
    req: HttpRequest,
    caller: Authenticated,
    state: web::Data<AppState>,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let message = pb::RevenueSeriesRequest {
        creator_id: optional_id("creator_id", query.creator_id.as_deref())?,
        from: query.from.clone(),
        to: query.to.clone(),
    };
    let r = state
        .downstreams
        .revenue()
        .revenue_series(state.downstreams.request(message, &caller.ctx))
        .await?
        .into_inner();
    let body = RevenueSeriesResponse {
        creator_id: r.creator_id,
        from: r.from,
        to: r.to,
        currency: "KRW".to_owned(),
        totals: r.totals.unwrap_or_default().into(),
        days: r
            .days
            .into_iter()
            .map(|d| SeriesDay {
                state: DayState::try_from(d.state()).ok(),
                day: d.day,
                tally: d.tally.unwrap_or_default().into(),
            })
            .collect(),
    };
    if !crate::routes::wants_csv(&req) {
        return Ok(HttpResponse::Ok().json(body));
    }
    Ok(csv_response(
        &format!(
            "revenues-daily-{}-{}-{}.csv",
            body.creator_id, body.from, body.to
        ),
        series_csv(&body.days)?,
        None,
    ))
}

/// The days as CSV, one header line; a day not settled has an empty state.
fn series_csv(days: &[SeriesDay]) -> Result<Vec<u8>, ApiError> {
    tally_csv(
        ["day", "state"],
        days.iter().map(|d| {
            let state = d.state.map(|s| s.to_string()).unwrap_or_default();
            ([d.day.as_str().into(), state.into()], &d.tally)
        }),
    )
}
