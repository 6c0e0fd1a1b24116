//! One tracing subscriber for every binary (SPEC §10): `RUST_LOG` filters
//! (default `info`), `LOG_FORMAT=json` switches to one JSON object a line.
//!
//! Distributed tracing is off by default. With `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set (an OTLP/HTTP collector, e.g. `http://collector:4318`), spans are
//! exported there in batches and the W3C trace context (`traceparent`)
//! crosses every hop: the gateway continues an incoming `traceparent`
//! (tracing-actix-web), every gRPC client call carries the current one
//! ([`inject_trace_context`], in the outbound tower layer) and every gRPC
//! server call continues it ([`grpc_span`]). `OTEL_SERVICE_NAME` names the
//! process in the traces (default: the binary's name).

use opentelemetry::{propagation::Injector, trace::TracerProvider as _};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use tonic::codegen::http::{self, HeaderMap, HeaderName, HeaderValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, prelude::*};

/// Flushes and stops trace export when dropped: keep it until the end of
/// `main`, so the spans still in the batch are sent. Holds nothing when
/// export is off, or when a subscriber was installed before.
#[must_use = "dropping it stops trace export"]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Calling it twice is harmless: the second
/// call changes nothing.
pub fn init() -> Telemetry {
    init_with_default("info")
}

/// [`init`], with `default` as the filter when `RUST_LOG` is unset (a
/// command that prints its own output, such as the demo, uses `warn`).
pub fn init_with_default(default: &str) -> Telemetry {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty());
    let provider = endpoint.and_then(|endpoint| {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build();
        match exporter {
            Ok(exporter) => Some(provider_with(exporter)),
            Err(e) => {
                eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}: no trace export: {e}");
                None
            }
        }
    });
    install(default, provider)
}

/// [`init_with_default`] exporting every span to `exporter` at once (no
/// batching): for tests that look at the spans.
pub fn init_with_exporter(default: &str, exporter: impl SpanExporter + 'static) -> Telemetry {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build();
    install(default, Some(provider))
}

fn provider_with(exporter: impl SpanExporter + 'static) -> SdkTracerProvider {
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "streaming-settlement-platform".to_owned())
    });
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build()
}

fn install(default: &str, provider: Option<SdkTracerProvider>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let output: Box<dyn Layer<Registry> + Send + Sync> = if json {
        fmt::layer().json().with_current_span(true).boxed()
    } else {
        fmt::layer().compact().boxed()
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("streaming-settlement-platform"))
    });
    let installed = tracing_subscriber::registry()
        .with(output)
        .with(otel)
        .with(filter)
        .try_init()
        .is_ok();
    match provider {
        Some(provider) if installed => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            opentelemetry::global::set_tracer_provider(provider.clone());
            Telemetry(Some(provider))
        }
        _ => Telemetry(None),
    }
}

/// Writes the current span's trace context into `headers` (`traceparent`,
/// `tracestate`); nothing when tracing export is off.
pub fn inject_trace_context(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Headers(headers));
    });
}

/// The span of one gRPC call a server received: `grpc` with the method's
/// path and the request id, continuing the caller's trace when the call
/// carries a `traceparent`. Tonic's `Server::trace_fn` takes it.
pub fn grpc_span(request: &http::Request<()>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(crate::grpc::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "grpc",
        method = %request.uri().path(),
        request_id = %request_id,
    );
    continue_trace(&span, |name| {
        request.headers().get(name).and_then(|v| v.to_str().ok())
    });
    span
}

/// Makes `span` a child of the trace context the caller sent, read with
/// `header` (a header's value by its lowercase name); nothing when there is
/// none, or when tracing export is off. The gateway's root span calls it
/// with the HTTP request's headers.
pub fn continue_trace<'a>(span: &tracing::Span, header: impl Fn(&str) -> Option<&'a str>) {
    let carrier: std::collections::HashMap<String, String> = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), header(name)?.to_owned())))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    let _ = span.set_parent(parent);
}

/// `headers` as an OpenTelemetry carrier to write into.
struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
