//! One list of error codes: `rail::error::ErrorCode`. The README's table of refusals, the
//! OpenAPI document the server serves and docs/PROTOCOL.md's websocket codes say the same codes
//! with the same statuses, and every domain refusal has its code there.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use rail::error::ErrorCode;
use rail_actors::ids::{ItemId, OrderId, StationId, TableId, TicketId};
use rail_actors::CommandError;

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Backticked snake_case words of a text: the codes it names.
fn codes_in(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect()
}

/// The codes a response's description names: backticked, in its parentheses ("The branch is
/// not configured (`unknown_branch`).").
fn codes_in_parentheses(text: &str) -> BTreeSet<String> {
    text.split('(')
        .skip(1)
        .filter_map(|part| part.split_once(')'))
        .flat_map(|(inside, _)| codes_in(inside))
        .collect()
}

/// The README's table of refusals: each code with its status.
fn readme_codes() -> BTreeMap<String, u16> {
    let readme = read("README.md");
    let table = readme
        .split("| status | codes |")
        .nth(1)
        .expect("the README has a table of refusals");
    let mut codes = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        let status: u16 = cells[1].trim().parse().expect("a status");
        // A cell's words in backticks are codes, except what a code's note quotes
        // (`Allow`, `Retry-After: 1`, settings): those are not snake_case codes of the list.
        for code in codes_in(cells[2]) {
            if ErrorCode::ALL.iter().any(|c| c.as_str() == code) || !code.contains('_') {
                codes.insert(code, status);
            }
        }
    }
    codes
}

#[test]
fn the_readme_lists_every_rest_code_with_its_status() {
    let readme = readme_codes();
    let listed: BTreeMap<String, u16> = ErrorCode::ALL
        .iter()
        .filter_map(|c| Some((c.as_str().to_owned(), c.status()?.as_u16())))
        .collect();
    assert_eq!(readme, listed, "README table vs ErrorCode");
}

#[test]
fn the_protocol_lists_the_websocket_only_codes() {
    let protocol = read("docs/PROTOCOL.md");
    let section = protocol
        .split("Error\ncodes are those of the REST API")
        .nth(1)
        .or_else(|| protocol.split("codes are those of the REST API").nth(1))
        .expect("docs/PROTOCOL.md says which codes the websocket adds");
    let sentence = section.split("\n\n").next().unwrap();
    let named = codes_in(sentence);
    for code in ErrorCode::ALL.iter().filter(|c| c.status().is_none()) {
        assert!(
            named.contains(code.as_str()),
            "PROTOCOL.md does not name {}",
            code.as_str()
        );
    }
    for code in &named {
        assert!(
            ErrorCode::ALL.iter().any(|c| c.as_str() == code),
            "PROTOCOL.md names {code}, which is no code"
        );
    }
}

#[actix_web::test]
async fn the_openapi_document_names_only_listed_codes_with_their_statuses() {
    let app = common::TestApp::spawn().await;
    let doc = common::served_openapi(&app.base).await;
    let mut seen = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let status: u16 = status.parse().unwrap();
                if status < 400 {
                    continue;
                }
                let description = response["description"].as_str().unwrap_or_default();
                for code in codes_in_parentheses(description) {
                    let known = ErrorCode::ALL.iter().find(|c| c.as_str() == code);
                    let known = known.unwrap_or_else(|| {
                        panic!("{method} {path} {status} names `{code}`, which is no code")
                    });
                    assert_eq!(
                        known.status().map(|s| s.as_u16()),
                        Some(status),
                        "{method} {path}: `{code}` documented under {status}"
                    );
                    seen.insert(code);
                }
            }
        }
    }
    // What operations can refuse with: every code but those of unknown routes, the
    // websocket's own, the handshake's, and a failure of the server itself.
    let elsewhere = [
        "not_found",
        "method_not_allowed",
        "origin_not_allowed",
        "too_many_connections",
        "internal",
    ];
    for code in ErrorCode::ALL.iter().filter(|c| c.status().is_some()) {
        if !elsewhere.contains(&code.as_str()) {
            assert!(
                seen.contains(code.as_str()),
                "no operation documents `{}`",
                code.as_str()
            );
        }
    }
}

#[test]
fn every_domain_refusal_has_a_listed_code_and_status() {
    let ticket = TicketId::new();
    let refusals = [
        CommandError::UnknownBranch("x".into()),
        CommandError::UnknownTable(TableId::parse("t1").unwrap()),
        CommandError::UnknownItem(ItemId::parse("fries").unwrap()),
        CommandError::UnknownStation(StationId::parse("wok").unwrap()),
        CommandError::UnknownOrder(OrderId::new()),
        CommandError::UnknownLine(3),
        CommandError::UnknownTicket(ticket),
        CommandError::EightySixed(ItemId::parse("fries").unwrap()),
        CommandError::Invalid("x".into()),
        CommandError::NothingToFire("x".into()),
        CommandError::NothingToServe,
        CommandError::InvalidTransition("x".into()),
        CommandError::PartsPending(1),
        CommandError::OrderClosed,
        CommandError::OrderNotFinished(1),
        CommandError::JournalUnavailable,
        CommandError::Conflict,
        CommandError::IdempotencyKeyReused,
    ];
    for e in &refusals {
        let code = ErrorCode::of(e);
        let api = rail::error::ApiError::from(e.clone());
        assert_eq!(api.code, code, "{e:?}");
        assert_eq!(Some(api.status), code.status(), "{e:?}");
    }
}
