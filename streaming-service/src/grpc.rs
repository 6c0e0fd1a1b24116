//! The `streaming.v1.StreamingService` gRPC handlers: identify the caller,
//! validate, call the core, map errors.

use std::{net::IpAddr, sync::Arc};

use common::{
    auth::{AccessClaims, Role},
    jwks::{KeyCache, VerifyError},
    paging::{decode_cursor, encode_cursor, page_size},
};
use proto::streaming::v1 as pb;
use sea_orm::DatabaseConnection;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::{
    catalog::{Catalog, NewAd, NewVideo, VideoView},
    counting::{CounterStore, PauseEvent, PlayEvent, PlayRules, writeback::Writeback},
    daily_counts,
    entity::ad,
    error::StreamingError,
};

/// The gRPC face of the streaming service.
#[derive(Clone)]
pub struct StreamingApi {
    catalog: Catalog,
    store: Arc<dyn CounterStore>,
    writeback: Writeback,
    db: DatabaseConnection,
    keys: Arc<KeyCache>,
    rules: PlayRules,
    metrics: crate::metrics::StreamingMetrics,
}

/// Who is calling: verified claims (if signed in) and the client IP.
struct Caller {
    claims: Option<AccessClaims>,
    ip: IpAddr,
}

impl Caller {
    fn user_id(&self) -> Option<i64> {
        self.claims.as_ref().and_then(|c| c.user_id().ok())
    }

    /// The viewer key (SPEC §4): the user id plus the client IP when signed
    /// in, the client IP alone otherwise.
    fn viewer_key(&self) -> String {
        match self.user_id() {
            Some(id) => format!("u{id}@{}", self.ip),
            None => format!("a@{}", self.ip),
        }
    }

    fn require(&self, role: Role, why: &'static str) -> Result<&AccessClaims, StreamingError> {
        let claims = self.claims.as_ref().ok_or(StreamingError::SignInRequired)?;
        if claims.role == role {
            Ok(claims)
        } else {
            Err(StreamingError::Forbidden(why))
        }
    }
}

fn video_to_proto(v: VideoView) -> pb::Video {
    pb::Video {
        video_id: v.video.id,
        creator_id: v.video.creator_id,
        title: v.video.title,
        description: v.video.description,
        duration_seconds: v.video.duration_seconds,
        ad_slots: v
            .ad_slots
            .into_iter()
            .map(|(position_seconds, ad_id)| pb::AdSlot {
                position_seconds,
                ad_id: ad_id.unwrap_or(0),
            })
            .collect(),
        created_at: Some(common::grpc::timestamp(v.video.created_at)),
    }
}

impl StreamingApi {
    /// Handlers over these parts.
    pub fn new(
        catalog: Catalog,
        store: Arc<dyn CounterStore>,
        writeback: Writeback,
        db: DatabaseConnection,
        keys: Arc<KeyCache>,
        rules: PlayRules,
        metrics: crate::metrics::StreamingMetrics,
    ) -> Self {
        Self {
            catalog,
            store,
            writeback,
            db,
            keys,
            rules,
            metrics,
        }
    }

    /// The caller: a forwarded token is verified here (SPEC §9); the client
    /// IP is the gateway's `x-client-ip`, else the socket peer.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, StreamingError> {
        let claims = match common::grpc::bearer_token(request.metadata()) {
            None => None,
            Some(token) => Some(self.keys.verify(token).await.map_err(|e| match e {
                VerifyError::Token(_) => StreamingError::InvalidAccessToken,
                VerifyError::KeysUnavailable(_) => StreamingError::Unavailable("the user service"),
            })?),
        };
        let ip = request
            .metadata()
            .get(common::grpc::CLIENT_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or_else(|| request.remote_addr().map(|a| a.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Caller { claims, ip })
    }

    fn ad_to_proto(&self, a: ad::Model) -> pb::Ad {
        pb::Ad {
            status: self.catalog.status(&a).as_str().to_owned(),
            ad_id: a.id,
            title: a.title,
            duration_seconds: a.duration_seconds,
            start_date: a.start_date.format("%Y-%m-%d").to_string(),
            end_date: a.end_date.format("%Y-%m-%d").to_string(),
        }
    }
}

fn counter_unavailable(e: crate::counting::CounterError) -> StreamingError {
    tracing::warn!(error = %e, "counter store failed");
    StreamingError::Unavailable("the counter store")
}

#[tonic::async_trait]
impl pb::streaming_service_server::StreamingService for StreamingApi {
    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn create_video(
        &self,
        request: Request<pb::CreateVideoRequest>,
    ) -> Result<Response<pb::Video>, Status> {
        let caller = self.caller(&request).await?;
        let creator_id = caller
            .require(Role::Creator, "only creators may upload videos")?
            .user_id()
            .map_err(|_| StreamingError::InvalidAccessToken)?;
        let r = request.into_inner();
        let new = NewVideo::parse(&r.title, &r.description, r.duration_seconds)?;
        let video = self.catalog.create_video(creator_id, new).await?;
        tracing::info!(video_id = video.video.id, creator_id, "video uploaded");
        Ok(Response::new(video_to_proto(video)))
    }

    async fn get_video(
        &self,
        request: Request<pb::GetVideoRequest>,
    ) -> Result<Response<pb::Video>, Status> {
        let video = self.catalog.video(request.into_inner().video_id).await?;
        Ok(Response::new(video_to_proto(video)))
    }

    async fn list_videos(
        &self,
        request: Request<pb::ListVideosRequest>,
    ) -> Result<Response<pb::ListVideosResponse>, Status> {
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| StreamingError::field("limit", e))?;
        let after =
            decode_cursor("video", &r.cursor).map_err(|e| StreamingError::field("cursor", e))?;
        let creator = (r.creator_id != 0).then_some(r.creator_id);
        let (videos, more) = self.catalog.list_videos(after, limit, creator).await?;
        let next_cursor = match (more, videos.last()) {
            (true, Some(last)) => encode_cursor("video", last.video.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListVideosResponse {
            videos: videos.into_iter().map(video_to_proto).collect(),
            next_cursor,
        }))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn create_ad(
        &self,
        request: Request<pb::CreateAdRequest>,
    ) -> Result<Response<pb::Ad>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(Role::Admin, "only admins may create ads")?;
        let r = request.into_inner();
        let new = NewAd::parse(&r.title, r.duration_seconds, &r.start_date, &r.end_date)?;
        let ad = self.catalog.create_ad(new).await?;
        Ok(Response::new(self.ad_to_proto(ad)))
    }

    async fn list_ads(
        &self,
        request: Request<pb::ListAdsRequest>,
    ) -> Result<Response<pb::ListAdsResponse>, Status> {
        let r = request.into_inner();
        let limit = page_size(r.limit).map_err(|e| StreamingError::field("limit", e))?;
        let after =
            decode_cursor("ad", &r.cursor).map_err(|e| StreamingError::field("cursor", e))?;
        let (ads, more) = self.catalog.list_ads(after, limit).await?;
        let next_cursor = match (more, ads.last()) {
            (true, Some(last)) => encode_cursor("ad", last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAdsResponse {
            ads: ads.into_iter().map(|a| self.ad_to_proto(a)).collect(),
            next_cursor,
        }))
    }

    async fn play(
        &self,
        request: Request<pb::PlayRequest>,
    ) -> Result<Response<pb::PlayResponse>, Status> {
        let caller = self.caller(&request).await?;
        let video_id = request.into_inner().video_id;
        let info = self.catalog.info(video_id).await?;
        let now = self.rules.clock.now();
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let event = PlayEvent {
            video_id,
            viewer: caller.viewer_key(),
            owner: caller.user_id() == Some(info.creator_id),
            session_id: session_id.clone(),
            duration_seconds: info.duration_seconds,
            now_ms: now.timestamp_millis(),
            day: self.rules.time.day_of(now),
            window_ms: self.rules.window_ms,
            session_ttl_ms: self.rules.session_ttl(info.duration_seconds),
        };
        let outcome = self.store.play(&event).await.map_err(counter_unavailable)?;
        self.metrics
            .plays
            .with_label_values(&[outcome.not_counted.map_or("counted", |r| r.as_str())])
            .inc();
        Ok(Response::new(pb::PlayResponse {
            session_id,
            resume_position_seconds: outcome.resume_position_seconds,
            view_counted: outcome.not_counted.is_none(),
            reason: outcome
                .not_counted
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
        }))
    }

    async fn pause(
        &self,
        request: Request<pb::PauseRequest>,
    ) -> Result<Response<pb::PauseResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        if r.position_seconds < 0 {
            return Err(StreamingError::field("position_seconds", "must not be negative").into());
        }
        if r.session_id.is_empty()
            || r.session_id.len() > 64
            || !r.session_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(
                StreamingError::field("session_id", "is not a session id from play").into(),
            );
        }
        let info = self.catalog.info(r.video_id).await?;
        let ads_served = !self.catalog.active_ads().await?.is_empty();
        let now = self.rules.clock.now();
        let event = PauseEvent {
            video_id: r.video_id,
            viewer: caller.viewer_key(),
            owner: caller.user_id() == Some(info.creator_id),
            session_id: r.session_id,
            position_seconds: r.position_seconds,
            duration_seconds: info.duration_seconds,
            ads_served,
            now_ms: now.timestamp_millis(),
            day: self.rules.time.day_of(now),
            window_ms: self.rules.window_ms,
            session_ttl_ms: self.rules.session_ttl(info.duration_seconds),
        };
        let outcome = self
            .store
            .pause(&event)
            .await
            .map_err(counter_unavailable)?
            .ok_or(StreamingError::SessionNotFound)?;
        self.metrics.pauses.inc();
        self.metrics
            .watch_seconds
            .inc_by(u64::try_from(outcome.watched_seconds_added).unwrap_or(0));
        self.metrics
            .ad_views
            .inc_by(u64::try_from(outcome.ad_views_counted).unwrap_or(0));
        Ok(Response::new(pb::PauseResponse {
            watched_seconds_added: outcome.watched_seconds_added,
            ad_views_counted: outcome.ad_views_counted,
            position_seconds: outcome.position_seconds,
        }))
    }

    type StreamDailyCountsStream = ReceiverStream<Result<pb::DailyCountPage, Status>>;

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn stream_daily_counts(
        &self,
        request: Request<pb::StreamDailyCountsRequest>,
    ) -> Result<Response<Self::StreamDailyCountsStream>, Status> {
        let r = request.into_inner();
        let day = common::time::parse_day(&r.day).map_err(|e| StreamingError::field("day", e))?;
        daily_counts::archive::refuse_archived(&self.db, day).await?;
        // Room for two database pages, so the next page is read while the
        // last one is encoded and sent.
        let messages_per_page = daily_counts::PAGE_ROWS.div_ceil(daily_counts::MESSAGE_ROWS);
        let (tx, rx) = tokio::sync::mpsc::channel(2 * messages_per_page);
        let db = self.db.clone();
        let mut pages = Box::pin(daily_counts::pages(
            self.db.clone(),
            day,
            r.after_video_id.max(0),
        ));
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(rows) = pages.next().await {
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                for message in daily_counts::messages(rows) {
                    if tx.send(Ok(message)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            // Each page is its own read: a month archived meanwhile would
            // end the day early, so the end is an error then, not a day.
            if let Err(e) = daily_counts::archive::refuse_archived(&db, day).await {
                let _ = tx.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type StreamVideoDaysStream = ReceiverStream<Result<pb::VideoDayCountPage, Status>>;

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn stream_video_days(
        &self,
        request: Request<pb::StreamVideoDaysRequest>,
    ) -> Result<Response<Self::StreamVideoDaysStream>, Status> {
        let r = request.into_inner();
        let from =
            common::time::parse_day(&r.from).map_err(|e| StreamingError::field("from", e))?;
        let to = common::time::parse_day(&r.to).map_err(|e| StreamingError::field("to", e))?;
        if to < from || (to - from).num_days() > daily_counts::MAX_HISTORY_DAYS {
            return Err(StreamingError::field(
                "to",
                format!(
                    "must be from `from` to {} days after it",
                    daily_counts::MAX_HISTORY_DAYS
                ),
            )
            .into());
        }
        if r.video_ids.is_empty() || r.video_ids.len() > daily_counts::MAX_HISTORY_VIDEOS {
            return Err(StreamingError::field(
                "video_ids",
                format!("must name 1 to {} videos", daily_counts::MAX_HISTORY_VIDEOS),
            )
            .into());
        }
        daily_counts::archive::refuse_archived(&self.db, from).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let db = self.db.clone();
        tokio::spawn(async move {
            // A few videos a query: a long history stays a bounded read.
            for videos in r.video_ids.chunks(50) {
                let rows = match daily_counts::video_days(&db, videos, (from, to)).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                for chunk in rows.chunks(daily_counts::MESSAGE_ROWS) {
                    let page = pb::VideoDayCountPage {
                        rows: chunk
                            .iter()
                            .map(|(day, row)| pb::VideoDayCount {
                                day: day.format("%Y-%m-%d").to_string(),
                                count: Some(row.clone().into()),
                            })
                            .collect(),
                    };
                    if tx.send(Ok(page)).await.is_err() {
                        return; // the client went away
                    }
                }
            }
            // As for a day's counts: archived meanwhile, the days are short.
            if let Err(e) = daily_counts::archive::refuse_archived(&db, from).await {
                let _ = tx.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_watermark(
        &self,
        _request: Request<pb::GetWatermarkRequest>,
    ) -> Result<Response<pb::Watermark>, Status> {
        let until = self
            .writeback
            .watermark()
            .await
            .map_err(|e| StreamingError::Internal(e.into()))?;
        let changes_version = daily_counts::changes_version(&self.db).await?;
        Ok(Response::new(pb::Watermark {
            written_back_until: Some(common::grpc::timestamp(until)),
            changes_version,
        }))
    }

    async fn list_changed_days(
        &self,
        request: Request<pb::ListChangedDaysRequest>,
    ) -> Result<Response<pb::ListChangedDaysResponse>, Status> {
        let after = request.into_inner().after_version;
        let days = daily_counts::changed_days(&self.db, after).await?;
        Ok(Response::new(pb::ListChangedDaysResponse {
            days: days
                .into_iter()
                .map(|(day, version)| pb::ChangedDay {
                    day: day.format("%Y-%m-%d").to_string(),
                    version,
                })
                .collect(),
        }))
    }

    #[instrument(skip_all, fields(request_id = %common::grpc::request_id(request.metadata())))]
    async fn import_daily_counts(
        &self,
        request: Request<pb::ImportDailyCountsRequest>,
    ) -> Result<Response<pb::ImportReport>, Status> {
        let caller = self.caller(&request).await?;
        caller.require(Role::Admin, "only admins may import counts")?;
        let report = daily_counts::import(&self.db, &request.into_inner().csv).await?;
        tracing::info!(
            accepted = report.accepted,
            rejected = report.rejected.len(),
            "daily counts imported"
        );
        Ok(Response::new(pb::ImportReport {
            accepted: report.accepted,
            rejected: report
                .rejected
                .into_iter()
                .map(|r| pb::ImportRejection {
                    line: r.line,
                    reason: r.reason,
                })
                .collect(),
        }))
    }
}
