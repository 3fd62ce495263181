//! Traces across processes: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one REST command's spans,
//! from the HTTP request through the table actor to the journal append, reach a real OTLP/HTTP
//! receiver (this test's, decoding the protobuf with opentelemetry-proto) under the trace the
//! caller's `traceparent` named. Without the setting nothing is exported.

mod common;

use std::time::{Duration, Instant};

use common::otlp::{hex, named, Receiver};
use common::{Server, TestJournal};
use serde_json::json;

#[actix_web::test]
async fn one_commands_spans_from_http_to_the_journal_arrive_under_the_callers_trace() {
    let receiver = Receiver::start().await;
    let journal = TestJournal::fresh().await;
    let server = Server::start_with(
        &journal,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let res = server
        .client
        .post(format!("{}/api/v1/branches/demo/orders", server.base))
        .header("traceparent", format!("00-{trace_id}-{caller}-01"))
        .json(&json!({"table": "t1", "lines": [{"item": "steak"}], "fire": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);

    let http = "POST /api/v1/branches/{branch}/orders";
    let spans = receiver
        .trace(
            &hex(trace_id),
            &[http, "table.open_order", "journal.append"],
        )
        .await;
    let (request, command, append) = (
        named(&spans, http),
        named(&spans, "table.open_order"),
        named(&spans, "journal.append"),
    );
    assert_eq!(
        request.parent_span_id,
        hex(caller),
        "under the caller's span"
    );
    assert_eq!(
        command.parent_span_id, request.span_id,
        "the actor's command under the request"
    );
    assert_eq!(
        append.parent_span_id, command.span_id,
        "the append under the command"
    );
    assert!(append.end_time_unix_nano >= append.start_time_unix_nano);

    // A request without a trace starts its own; still one trace from HTTP to the journal.
    let res = server
        .client
        .post(format!("{}/api/v1/branches/demo/orders", server.base))
        .json(&json!({"table": "t2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let own = {
            let spans = receiver.spans.lock().unwrap();
            spans
                .iter()
                .filter(|s| s.name == http && s.trace_id != hex(trace_id))
                .find_map(|r| {
                    let appends = spans
                        .iter()
                        .any(|s| s.name == "journal.append" && s.trace_id == r.trace_id);
                    appends.then_some(r.parent_span_id.is_empty())
                })
        };
        if let Some(root) = own {
            assert!(root, "a trace of its own starts at the request");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second command's trace never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();
}

#[actix_web::test]
async fn without_an_endpoint_nothing_is_exported() {
    let receiver = Receiver::start().await;
    let journal = TestJournal::fresh().await;
    // The receiver runs, but the engine is not told of it.
    let server = Server::start_with(&journal, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let res = server
        .client
        .post(format!("{}/api/v1/branches/demo/orders", server.base))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({"table": "t1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(receiver.spans.lock().unwrap().is_empty());
    server.kill();
}
