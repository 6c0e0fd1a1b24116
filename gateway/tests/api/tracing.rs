//! Distributed tracing (W3C trace context) across the gateway and the gRPC
//! hops, with spans exported to an in-memory exporter in place of OTLP.

use std::time::Duration;

use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

use crate::helpers::spawn_app;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn a_traceparent_crosses_the_gateway_and_every_grpc_hop() {
    // One process per test (nextest): this subscriber is the process's.
    let exporter = InMemorySpanExporter::default();
    let _telemetry = common::telemetry::init_with_exporter("info", exporter.clone());
    let app = spawn_app().await;
    let creator = app.signed_in("ada@example.com", "creator").await.access;
    let video = app.video(&creator, 600).await;

    let r = app
        .client
        .get(app.url(&format!("/api/v1/videos/{video}")))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The server span of the gRPC call ends just after the response.
    let mut in_trace = Vec::new();
    for _ in 0..50 {
        in_trace = exporter
            .get_finished_spans()
            .unwrap()
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == TRACE_ID)
            .collect();
        let grpc = in_trace.iter().any(|s| s.name == "grpc");
        if grpc && in_trace.iter().any(|s| s.name == "HTTP request") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root = in_trace
        .iter()
        .find(|s| s.name == "HTTP request")
        .expect("the gateway's span continues the client's trace");
    assert_eq!(root.parent_span_id.to_string(), "00f067aa0ba902b7");
    let call = in_trace
        .iter()
        .find(|s| {
            s.name == "grpc"
                && attribute(s, "method").as_deref()
                    == Some("/streaming.v1.StreamingService/GetVideo")
        })
        .expect("the streaming service's span is in the same trace");
    assert_eq!(
        call.parent_span_id,
        root.span_context.span_id(),
        "the gRPC call is a child of the gateway's request"
    );
    // A request without a traceparent starts a trace of its own.
    let spans_before = exporter.get_finished_spans().unwrap().len();
    app.client
        .get(app.url(&format!("/api/v1/videos/{video}")))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = exporter.get_finished_spans().unwrap();
    assert!(later.len() > spans_before);
    assert!(
        later[spans_before..]
            .iter()
            .all(|s| s.span_context.trace_id().to_string() != TRACE_ID)
    );
}
