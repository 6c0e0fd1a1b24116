//! `/api/v1/videos*`: upload, get, list, play and pause (SPEC §4, §7).

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use proto::streaming::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::{Authenticated, MaybeAuthenticated},
    error::ApiError,
    extract::JsonBody,
    routes::users::PageQuery,
    startup::AppState,
};

/// `POST /api/v1/videos` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct UploadBody {
    /// 1 to 200 characters.
    #[schema(example = "Making kimchi")]
    pub title: String,
    /// At most 5,000 characters.
    pub description: String,
    /// Whole seconds, 1 to 86,400.
    #[schema(example = 3600)]
    pub duration_seconds: i32,
}

/// One ad slot (SPEC §4).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdSlotResponse {
    /// 300·k seconds into the video.
    pub position_seconds: i32,
    /// The ad served there now; `null` when no ad is active.
    pub ad_id: Option<i64>,
}

/// A video (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoResponse {
    /// Id.
    pub video_id: i64,
    /// The uploader.
    pub creator_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Seconds.
    pub duration_seconds: i32,
    /// Slots with the ad served in each.
    pub ad_slots: Vec<AdSlotResponse>,
    /// RFC 3339.
    pub created_at: DateTime<Utc>,
}

impl From<pb::Video> for VideoResponse {
    fn from(v: pb::Video) -> Self {
        Self {
            video_id: v.video_id,
            creator_id: v.creator_id,
            title: v.title,
            description: v.description,
            duration_seconds: v.duration_seconds,
            ad_slots: v
                .ad_slots
                .into_iter()
                .map(|s| AdSlotResponse {
                    position_seconds: s.position_seconds,
                    ad_id: (s.ad_id != 0).then_some(s.ad_id),
                })
                .collect(),
            created_at: crate::routes::time_of(v.created_at),
        }
    }
}

/// A page of videos.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoPage {
    /// Videos by ascending id.
    pub items: Vec<VideoResponse>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/videos` filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default)]
pub struct VideoFilter {
    /// Only this creator's videos.
    pub creator_id: Option<String>,
}

/// `POST /api/v1/videos/{id}/play` response (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlayResponse {
    /// Pass to pause.
    pub session_id: String,
    /// Where to start, seconds: the last saved position, or 0.
    pub resume_position_seconds: i32,
    /// Whether this play counted a view.
    pub view_counted: bool,
    /// `null` when counted, else `owner` or `duplicate`.
    pub reason: Option<String>,
}

/// `POST /api/v1/videos/{id}/pause` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct PauseBody {
    /// From play.
    pub session_id: String,
    /// Seconds into the video, ≥ 0.
    pub position_seconds: i32,
}

/// `POST /api/v1/videos/{id}/pause` response (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PauseResponse {
    /// Watch seconds counted by this report.
    pub watched_seconds_added: i32,
    /// Ad views counted by this report.
    pub ad_views_counted: i32,
    /// The saved position, seconds.
    pub position_seconds: i32,
}

/// Uploads a video. Creators only.
#[utoipa::path(
    tag = "videos",
    request_body = UploadBody,
    security(("bearer" = [])),
    responses(
        (status = 201, body = VideoResponse),
        (status = 400, description = "bad title, description or duration_seconds", body = common::error::ErrorEnvelope),
        (status = 401, body = common::error::ErrorEnvelope),
        (status = 403, description = "not a creator", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/videos")]
pub async fn upload(
    caller: Authenticated,
    state: web::Data<AppState>,
    body: JsonBody<UploadBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let message = pb::CreateVideoRequest {
        title: b.title,
        description: b.description,
        duration_seconds: b.duration_seconds,
    };
    let video = state
        .downstreams
        .streaming()
        .create_video(state.downstreams.request(message, &caller.ctx))
        .await?;
    Ok(HttpResponse::Created().json(VideoResponse::from(video.into_inner())))
}

/// One video.
#[utoipa::path(
    tag = "videos",
    params(("id" = i64, Path, description = "video id")),
    responses((status = 200, body = VideoResponse), (status = 404, body = common::error::ErrorEnvelope))
)]
#[get("/api/v1/videos/{id}")]
pub async fn get_video(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<VideoResponse>, ApiError> {
    let message = pb::GetVideoRequest {
        video_id: id.into_inner(),
    };
    let video = state
        .downstreams
        .streaming()
        .get_video(state.downstreams.request(message, caller.ctx()))
        .await?;
    Ok(web::Json(video.into_inner().into()))
}

/// Videos by ascending id, paged; optionally one creator's.
#[utoipa::path(
    tag = "videos",
    params(PageQuery, VideoFilter),
    responses((status = 200, body = VideoPage), (status = 400, body = common::error::ErrorEnvelope))
)]
#[get("/api/v1/videos")]
pub async fn list_videos(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
    filter: web::Query<VideoFilter>,
) -> Result<web::Json<VideoPage>, ApiError> {
    let creator_id = match filter.creator_id.as_deref() {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::bad_field("creator_id", "must be a user id"))?,
    };
    let message = pb::ListVideosRequest {
        limit: page.limit(20, 100)?,
        cursor: page.cursor.clone().unwrap_or_default(),
        creator_id,
    };
    let page = state
        .downstreams
        .streaming()
        .list_videos(state.downstreams.request(message, caller.ctx()))
        .await?
        .into_inner();
    Ok(web::Json(VideoPage {
        items: page.videos.into_iter().map(VideoResponse::from).collect(),
        next_cursor: Some(page.next_cursor).filter(|c| !c.is_empty()),
    }))
}

/// Starts a watch session; counts a view unless the viewer owns the video
/// or counted one within the dedupe window (SPEC §4). Anonymous viewers may
/// play; a play that is not counted still plays.
#[utoipa::path(
    tag = "videos",
    params(("id" = i64, Path, description = "video id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = PlayResponse),
        (status = 401, description = "a token was sent and is bad", body = common::error::ErrorEnvelope),
        (status = 404, body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/videos/{id}/play")]
pub async fn play(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    _body: JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> Result<web::Json<PlayResponse>, ApiError> {
    let message = pb::PlayRequest {
        video_id: id.into_inner(),
    };
    let r = state
        .downstreams
        .streaming()
        .play(state.downstreams.request(message, caller.ctx()))
        .await?
        .into_inner();
    Ok(web::Json(PlayResponse {
        session_id: r.session_id,
        resume_position_seconds: r.resume_position_seconds,
        view_counted: r.view_counted,
        reason: Some(r.reason).filter(|r| !r.is_empty()),
    }))
}

/// Reports a session's position: counts watched seconds (bounded by
/// wall-clock time) and ad views for slots crossed, and saves the position
/// for resume (SPEC §4).
#[utoipa::path(
    tag = "videos",
    params(("id" = i64, Path, description = "video id")),
    request_body = PauseBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = PauseResponse),
        (status = 400, description = "bad session_id or position_seconds", body = common::error::ErrorEnvelope),
        (status = 404, description = "unknown video or session", body = common::error::ErrorEnvelope),
    )
)]
#[post("/api/v1/videos/{id}/pause")]
pub async fn pause(
    caller: MaybeAuthenticated,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: JsonBody<PauseBody>,
) -> Result<web::Json<PauseResponse>, ApiError> {
    let message = pb::PauseRequest {
        video_id: id.into_inner(),
        session_id: body.0.session_id,
        position_seconds: body.0.position_seconds,
    };
    let r = state
        .downstreams
        .streaming()
        .pause(state.downstreams.request(message, caller.ctx()))
        .await?
        .into_inner();
    Ok(web::Json(PauseResponse {
        watched_seconds_added: r.watched_seconds_added,
        ad_views_counted: r.ad_views_counted,
        position_seconds: r.position_seconds,
    }))
}
