//! What the screens lean on beyond the kitchen features: an item's modifier groups (a required
//! choice is enforced by the engine, not only by a tablet), ticket colour times per branch and
//! per source, a guest's phone opening its own table's order in one call, the screens' `ping`,
//! menu changes and 86s reaching every screen, expo hearing of every part, a station's recall
//! list, and the pages themselves as the engine serves them with their catalogues. Real HTTP
//! and websockets, on the journal `RAIL_TEST_JOURNAL` names.

mod common;

use std::time::Duration;

use common::{Server, TestApp};
use rail::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ORDERS: &str = "/api/v1/branches/demo/orders";

async fn events(app: &TestApp) -> usize {
    app.journal().await.len()
}

#[actix_web::test]
async fn a_required_choice_is_refused_when_left_out_and_nothing_is_added() {
    let app = TestApp::spawn().await;
    let order = app.open_order("t1").await;
    let before = events(&app).await;
    let lines = format!("{ORDERS}/{order}/lines");
    // The kebab needs a spice and a side.
    let (status, body) = app
        .post(
            &lines,
            json!({"lines": [{"item": "caesar"}, {"item": "adana", "modifiers": ["Hot"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "modifier_required", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("Side"),
        "{body}"
    );
    // Two of a group of at most one.
    let (status, body) = app
        .post(
            &lines,
            json!({"lines": [{"item": "adana", "modifiers": ["Hot", "Mild", "Rice pilaf"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    // The one-call order is refused whole, too: no order is opened.
    let (status, body) = app
        .post(
            ORDERS,
            json!({"table": "t2", "lines": [{"item": "adana"}], "fire": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "modifier_required");
    assert_eq!(
        events(&app).await,
        before,
        "nothing of the refusals is journaled"
    );
    let (_, open) = app.get(ORDERS).await;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");

    // Chosen, with an allergy and a free-text modifier beside the choices.
    let (status, body) = app
        .post(
            &lines,
            json!({"lines": [{"item": "adana",
                              "modifiers": ["Hot", "Bulgur pilaf", "Nut allergy", "extra lemon"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let line = &body["lines"][0];
    assert_eq!(
        line["modifiers"],
        json!(["Hot", "Bulgur pilaf", "Nut allergy", "extra lemon"])
    );
}

#[actix_web::test]
async fn modifier_groups_and_timers_are_validated_stored_and_survive_a_restart() {
    let journal = common::TestJournal::fresh().await;
    let server = Server::start(&journal).await;
    let (status, info) = get(&server, "").await;
    assert_eq!(status, StatusCode::OK);
    let mut config = info["config"].clone();
    let adana = config["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "adana")
        .cloned()
        .expect("the demo has the kebab");
    assert_eq!(adana["modifier_groups"][0]["required"], true, "{adana}");
    assert_eq!(adana["modifier_groups"][2]["options"][0]["allergen"], true);
    assert_eq!(
        config["timers_by_source"]["delivery"]["late_after_seconds"],
        900
    );

    // Bad groups and timers are refused with the reason, and change nothing.
    let bad = [
        (
            "/items/0/modifier_groups",
            json!([{"id": "x", "name": "X", "options": []}]),
        ),
        (
            "/items/0/modifier_groups",
            json!([{"id": "x", "name": "X", "max": 0, "options": [{"name": "a"}]}]),
        ),
        (
            "/items/0/modifier_groups",
            json!([{"id": "x y", "name": "X", "options": [{"name": "a"}]}]),
        ),
        (
            "/items/0/modifier_groups",
            json!([{"id": "x", "name": "X", "options": [{"name": "a"}, {"name": "a"}]}]),
        ),
        (
            "/items/0/modifier_groups",
            json!([{"id": "x", "name": "X", "options": [{"name": "a"}]},
                                            {"id": "x", "name": "Y", "options": [{"name": "b"}]}]),
        ),
        (
            "/timers_by_source",
            json!({"delivery": {"late_after_seconds": 0}}),
        ),
        (
            "/timers_by_source",
            json!({"drive_through": {"late_after_seconds": 60}}),
        ),
        ("/warning_after_seconds", json!(0)),
    ];
    for (at, value) in bad {
        let mut changed = config.clone();
        match changed.pointer_mut(at) {
            Some(place) => *place = value.clone(),
            None => changed[&at[1..]] = value.clone(),
        }
        let (status, body) = put_config(&server, &changed).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{at} = {value}: {body}"
        );
        assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    }
    let (_, still) = get(&server, "").await;
    assert_eq!(
        still["config"], config,
        "nothing of the bad configurations is kept"
    );

    // A good change is kept, and read back the same after a restart.
    config["warning_after_seconds"] = json!(120);
    config["timers_by_source"]["takeaway"] = json!({"warning_after_seconds": 200});
    config["items"][0]["modifier_groups"] = json!([
        {"id": "size", "name": "Size", "required": true, "max": 1,
         "options": [{"name": "Small"}, {"name": "Large", "price_cents": 300}]}
    ]);
    let (status, body) = put_config(&server, &config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, set) = get(&server, "").await;
    assert_eq!(set["config"]["warning_after_seconds"], 120);
    assert_eq!(
        set["config"]["items"][0]["modifier_groups"][0]["options"][1]["price_cents"],
        300
    );
    server.kill();
    let server = Server::start(&journal).await;
    let (_, after) = get(&server, "").await;
    assert_eq!(
        after["config"], set["config"],
        "the restart reads the same configuration"
    );
    let (status, body) = post(
        &server,
        "/orders",
        json!({"table": "t1", "lines": [{"item": config["items"][0]["id"]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "modifier_required");
    server.kill();
}

#[actix_web::test]
async fn a_ticket_is_late_by_its_sources_time() {
    let app = TestApp::spawn().await;
    let (_, info) = app.get("/api/v1/branches/demo").await;
    let mut config = info["config"].clone();
    config["late_after_seconds"] = json!(1);
    config["timers_by_source"] = json!({"delivery": {"late_after_seconds": 600}});
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut tickets = Vec::new();
    for table in ["t1", "delivery"] {
        let (status, order) = app
            .post(
                ORDERS,
                json!({"table": table, "lines": [{"item": "steak"}], "fire": {}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        tickets.push(order["tickets"][0]["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for ticket in &tickets {
        let path = format!("/api/v1/branches/demo/stations/grill/tickets/{ticket}/bump");
        let (status, body) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, speed) = app
        .get("/api/v1/branches/demo/stations/grill/speed?window_minutes=5")
        .await;
    assert_eq!(speed["tickets"], 2, "{speed}");
    assert_eq!(
        speed["late"], 1,
        "the dine-in ticket is late after 1 s, the delivery one not before 10 min: {speed}"
    );
}

#[actix_web::test]
async fn a_guest_opens_an_order_at_its_own_table_only_in_one_call() {
    let app = TestApp::spawn().await;
    let guest = common::client_as(&common::token_for("demo", Role::Guest, None, Some("qr-5")));
    let send = |body: Value| {
        let guest = guest.clone();
        let url = format!("{}{ORDERS}", app.base);
        async move { common::read(guest.post(url).json(&body).send().await.unwrap()).await }
    };
    let before = events(&app).await;
    let refused = [
        json!({"table": "t1", "lines": [{"item": "caesar"}], "fire": {}}),
        json!({"table": "qr-5"}),
        json!({"table": "qr-5", "lines": [{"item": "caesar"}]}),
        json!({"table": "qr-5", "lines": [{"item": "caesar"}], "fire": {"course": 1}}),
        json!({"table": "qr-5", "lines": [{"item": "caesar"}], "fire": {}, "priority": true}),
        json!({"table": "qr-5", "lines": [{"item": "caesar"}], "fire": {}, "external_ref": "X1"}),
    ];
    for body in refused {
        let (status, answer) = send(body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    assert_eq!(
        events(&app).await,
        before,
        "nothing of the refusals is journaled"
    );
    let (status, order) =
        send(json!({"table": "qr-5", "lines": [{"item": "caesar"}], "fire": {}})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["source"], "qr");
    assert_eq!(order["tickets"][0]["station"], "cold");
    assert_eq!(order["lines"][0]["status"], "fired");
    // Past the guests' rate the phone is told how long to wait.
    let mut waited = None;
    for _ in 0..20 {
        let res = guest
            .post(format!("{}{ORDERS}", app.base))
            .json(&json!({"table": "qr-5", "lines": [{"item": "lemonade"}], "fire": {}}))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            let seconds = res.headers()["retry-after"].to_str().unwrap().to_owned();
            let (_, body) = common::read(res).await;
            assert_eq!(body["error"]["code"], "rate_limited");
            waited = Some(seconds.parse::<u64>().unwrap());
            break;
        }
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let waited = waited.expect("the guests' rate is reached");
    assert!((1..=60).contains(&waited), "Retry-After: {waited}");
}

#[actix_web::test]
async fn a_ping_is_answered_with_the_servers_clock_before_and_after_auth() {
    let app = TestApp::spawn().await;
    let (stream, _) = tokio_tungstenite::connect_async(&app.ws_url).await.unwrap();
    let mut ws = common::Ws { stream };
    ws.send(json!({"type": "ping", "id": "p1"})).await;
    let pong = ws.next_of("pong").await;
    assert_eq!(pong["id"], "p1");
    let at = chrono::DateTime::parse_from_rfc3339(pong["at"].as_str().unwrap()).unwrap();
    let skew = (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds();
    assert!(skew.abs() < 5_000, "the server's clock: {pong}");
    ws.send(json!({"type": "auth", "token": common::manager("demo")}))
        .await;
    ws.next_of("authenticated").await;
    ws.send(json!({"type": "ping"})).await;
    let pong = ws.next_of("pong").await;
    assert!(pong.get("id").is_none(), "{pong}");
}

#[actix_web::test]
async fn every_screen_is_served_with_its_assets_under_a_strict_policy() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for path in [
        "/kitchen",
        "/expo",
        "/waiter",
        "/pos",
        "/manage",
        "/menu/qr-5",
    ] {
        let res = http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let policy = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let tag = res.headers()["etag"].to_str().unwrap().to_owned();
        let page = res.text().await.unwrap();
        assert!(page.contains("<html"), "{path}");
        // Every script and stylesheet it names is served.
        for asset in page.split('"').filter(|s| s.starts_with("/static/")) {
            let res = http
                .get(format!("{}{asset}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path} names {asset}");
        }
        let again = http
            .get(format!("{}{path}", app.base))
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    for missing in [
        "/static/nothing.js",
        "/static/kitchen.html",
        "/static/../Cargo.toml",
    ] {
        let res = http
            .get(format!("{}{missing}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}

#[test]
fn every_catalogue_key_is_in_both_languages() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/i18n");
    let read = |lang: &str| -> serde_json::Map<String, Value> {
        let text = std::fs::read_to_string(dir.join(format!("{lang}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (en, tr) = (read("en"), read("tr"));
    let missing_tr: Vec<&String> = en.keys().filter(|k| !tr.contains_key(*k)).collect();
    let missing_en: Vec<&String> = tr.keys().filter(|k| !en.contains_key(*k)).collect();
    assert!(missing_tr.is_empty(), "not in tr.json: {missing_tr:?}");
    assert!(missing_en.is_empty(), "not in en.json: {missing_en:?}");
    for (key, text) in en.iter().chain(tr.iter()) {
        let text = text
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not a string"));
        assert!(!text.trim().is_empty(), "{key} is empty");
    }
    // Every key a page names is in the catalogues.
    let pages = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut named = 0;
    for entry in std::fs::read_dir(&pages).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "js" | "html") || path.file_name().unwrap() == "board.html" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let markers = [
            "t(\"",
            "data-i18n=\"",
            "data-i18n-title=\"",
            "data-i18n-aria-label=\"",
            "data-i18n-placeholder=\"",
            "data-i18n-alt=\"",
        ];
        for marker in markers {
            for (at, _) in text.match_indices(marker) {
                // `t("...")` the function, not `split("...")`.
                let before = text[..at].chars().next_back().unwrap_or(' ');
                if before.is_ascii_alphanumeric() || "_$.".contains(before) {
                    continue;
                }
                let key = text[at + marker.len()..].split('"').next().unwrap();
                let looks_like_key = key.len() > 2
                    && key.contains('.')
                    && key.starts_with(|c: char| c.is_ascii_lowercase())
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                if looks_like_key {
                    named += 1;
                    assert!(
                        en.contains_key(key),
                        "{} names '{key}', not in en.json",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(
        named > 100,
        "the pages name their strings by key ({named} found)"
    );
    // Placeholders match between the languages.
    let holes = |s: &str| -> Vec<String> {
        let mut v: Vec<String> = s
            .split('{')
            .skip(1)
            .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_owned()))
            .collect();
        v.sort();
        v
    };
    for (key, text) in &en {
        let other = tr[key].as_str().unwrap();
        assert_eq!(holes(text.as_str().unwrap()), holes(other), "{key}");
    }
}

async fn get(server: &Server, path: &str) -> (StatusCode, Value) {
    let url = format!("{}/api/v1/branches/demo{path}", server.base);
    common::read(server.client.get(url).send().await.unwrap()).await
}

async fn post(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let url = format!("{}/api/v1/branches/demo{path}", server.base);
    common::read(server.client.post(url).json(&body).send().await.unwrap()).await
}

async fn put_config(server: &Server, config: &Value) -> (StatusCode, Value) {
    let url = format!("{}/api/v1/branches/demo", server.base);
    common::read(server.client.put(url).json(config).send().await.unwrap()).await
}

#[actix_web::test]
async fn a_menu_change_or_86_reaches_every_tablet_qr_menu_and_kitchen_screen_and_on_resume() {
    let app = TestApp::spawn().await;
    let guest = common::token_for("demo", Role::Guest, None, Some("qr-5"));
    let mut phone = app.ws_as(&guest).await;
    phone
        .send(json!({"type": "subscribe", "table": "qr-5"}))
        .await;
    let snapshot = phone.next_of("snapshot").await;
    let from = snapshot["snapshot"]["position"].as_u64().unwrap();
    let mut grill = app
        .ws_as(&common::token_for(
            "demo",
            Role::Kitchen,
            Some("grill"),
            None,
        ))
        .await;
    grill
        .send(json!({"type": "subscribe", "station": "grill"}))
        .await;
    grill.next_of("snapshot").await;

    let (status, body) = app.put("/api/v1/branches/demo/86/fries", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for screen in [&mut phone, &mut grill] {
        let event = screen.next_event().await;
        assert_eq!(event["event"]["type"], "item_eighty_sixed", "{event}");
        assert_eq!(event["event"]["item"], "fries");
    }
    let (status, _) = app.delete("/api/v1/branches/demo/86/fries").await;
    assert_eq!(status, StatusCode::OK);
    let back = phone.next_event().await;
    assert_eq!(back["event"]["type"], "item_restored", "{back}");
    // A menu change reaches them too.
    let (_, info) = app.get("/api/v1/branches/demo").await;
    let mut config = info["config"].clone();
    config["items"][0]["price_cents"] = json!(990);
    let (status, body) = app.put("/api/v1/branches/demo", config).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    grill.next_event().await; // the restore
    for screen in [&mut phone, &mut grill] {
        let event = screen.next_event().await;
        assert_eq!(event["event"]["type"], "branch_configured", "{event}");
        assert_eq!(event["event"]["config"]["items"][0]["price_cents"], 990);
    }

    // A phone that was away resumes and is told both.
    let mut again = app.ws_as(&guest).await;
    again
        .send(json!({"type": "subscribe", "table": "qr-5", "after": from}))
        .await;
    let kinds = [
        again.next_event().await,
        again.next_event().await,
        again.next_event().await,
    ]
    .map(|e| e["event"]["type"].as_str().unwrap().to_owned());
    assert_eq!(
        kinds,
        ["item_eighty_sixed", "item_restored", "branch_configured"]
    );
}

#[actix_web::test]
async fn a_station_lists_its_recently_bumped_tickets_for_recall() {
    let app = TestApp::spawn().await;
    let mut bumped = Vec::new();
    for table in ["t1", "t2"] {
        let (_, order) = app
            .post(
                ORDERS,
                json!({"table": table, "lines": [{"item": "steak"}], "fire": {}}),
            )
            .await;
        let ticket = order["tickets"][0]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/branches/demo/stations/grill/tickets/{ticket}/bump");
        let (status, _) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        bumped.push(ticket);
    }
    let (status, list) = app.get("/api/v1/branches/demo/stations/grill/bumped").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [bumped[1].as_str(), bumped[0].as_str()],
        "the latest first"
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "bumped"));
    // Recalled, it is live again and off the list.
    let path = format!(
        "/api/v1/branches/demo/stations/grill/tickets/{}/recall",
        bumped[1]
    );
    let (status, _) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = app
        .get("/api/v1/branches/demo/stations/grill/bumped?minutes=5")
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    for bad in ["minutes=0", "minutes=241", "minutes=x", "since=3"] {
        let (status, body) = app
            .get(&format!(
                "/api/v1/branches/demo/stations/grill/bumped?{bad}"
            ))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = app.get("/api/v1/branches/demo/stations/nope/bumped").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn expo_hears_each_part_of_its_orders_started_and_bumped() {
    let app = TestApp::spawn().await;
    let mut expo = app
        .ws_as(&common::token_for(
            "demo",
            Role::Kitchen,
            Some("expo"),
            None,
        ))
        .await;
    expo.send(json!({"type": "subscribe", "station": "expo"}))
        .await;
    expo.next_of("snapshot").await;
    let (_, order) = app
        .post(
            ORDERS,
            json!({"table": "t3", "lines": [{"item": "steak"}, {"item": "caesar"}], "fire": {}}),
        )
        .await;
    let fired = expo.next_event().await;
    assert_eq!(fired["event"]["type"], "course_fired");
    let grill = order["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "grill")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for action in ["start", "bump"] {
        let path = format!("/api/v1/branches/demo/stations/grill/tickets/{grill}/{action}");
        let (status, _) = app.post(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let heard = expo.next_event().await;
        let kind = if action == "start" {
            "ticket_started"
        } else {
            "ticket_bumped"
        };
        assert_eq!(heard["event"]["type"], kind, "{heard}");
        assert_eq!(heard["event"]["station"], "grill");
        assert_eq!(heard["event"]["ticket_id"], grill.as_str());
    }
}
