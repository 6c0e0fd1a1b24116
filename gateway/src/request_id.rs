//! Request ids (SPEC §8): every response carries `x-request-id`, taken from
//! the request when it is a sane token, else a new UUID. While a request is
//! handled the id is in a task-local, so that any error rendered for it can
//! name it.

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};

/// The header, in both directions.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// A request's id, in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id of the request being handled on this task, or `"-"` outside one.
pub fn current() -> String {
    CURRENT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

fn acceptable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_owned())
}

/// The access log's root span, named by our request id (the one echoed in
/// `x-request-id` and forwarded downstream), not by an id of its own, and
/// continuing the caller's trace (W3C `traceparent`) when tracing export
/// is on.
/// [`middleware`] must wrap `TracingLogger`, so that the id is assigned
/// before the span starts.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %request.path(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = %id,
        );
        // A `traceparent` the client sent: this request continues its trace.
        common::telemetry::continue_trace(&span, |name| {
            request.headers().get(name).and_then(|v| v.to_str().ok())
        });
        span
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The middleware: assigns the id, scopes it, echoes it on the response.
///
/// # Errors
/// None of its own; an inner service's error passes through.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    // Inside it run the access log (which names this id), the metrics, the
    // HTTP-layer error envelope and the router.
    let mut res = CURRENT.scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID, value);
    }
    Ok(res)
}
