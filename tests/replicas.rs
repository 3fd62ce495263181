//! Replicas: three engine processes on loopback share one Postgres journal and a Redis server
//! this test starts itself; one order flows from a waiter on one replica to a grill screen on
//! another and expo on the third, and any replica answers as the branch's owner does.

mod common;

use std::time::Duration;

use common::replicas::{
    assert_positions_increase, database_url, lease_of, owner_of, shared_journal, RedisServer,
    Replica, LEASE_TTL,
};
use common::{read, ws_connect_as, Ws, WAIT};
use rail::auth::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn kitchen(station: &str) -> String {
    common::token_for("demo", Role::Kitchen, Some(station), None)
}

async fn screen(replica: &Replica, token: &str, subscribe: Value) -> (Ws, Value) {
    let mut ws = Ws {
        stream: ws_connect_as(&replica.ws_url(), token).await,
    };
    ws.send(subscribe).await;
    let snapshot = ws.next_of("snapshot").await;
    (ws, snapshot)
}

/// Events until one of `kind`, all of them kept.
async fn until_event(ws: &mut Ws, kind: &str, seen: &mut Vec<Value>) -> Value {
    loop {
        let frame = ws.next_of("event").await;
        seen.push(frame.clone());
        if frame["event"]["type"] == kind {
            return frame;
        }
    }
}

/// A manager's client that gives up after a while (a replica that hangs fails the test).
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", common::manager("demo"));
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn post(base: &str, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let res = client()
        .post(format!("{base}/api/v1/branches/demo{path}"))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(res).await
}

async fn get(base: &str, path: &str) -> (StatusCode, Value) {
    read(
        client()
            .get(format!("{base}/api/v1/branches/demo{path}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Starts three replicas; the demo branch is configured by whichever owns it.
async fn three(db: &str, redis: &RedisServer) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(Replica::start(id, db, &redis.url(), &[]).await);
    }
    // Placement settles: the demo branch stays with one owner for a few ticks, is configured,
    // and every replica answers it.
    let mut settled = (String::new(), std::time::Instant::now());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while settled.1.elapsed() < LEASE_TTL {
        let owner = lease_of(db, "demo").await.map(|l| l.0).unwrap_or_default();
        if owner != settled.0 {
            settled = (owner, std::time::Instant::now());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "placement never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in &replicas {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while get(r.base(), "").await.0 != StatusCode::OK {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never served demo",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_flows_across_three_replicas() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let (r1, r2, r3) = (&replicas[0], &replicas[1], &replicas[2]);
    let owner = owner_of(&db, "demo", WAIT).await;
    let mut owners = 0;
    for r in &replicas {
        owners += usize::from(r.owns("demo").await);
    }
    assert_eq!(owners, 1, "one replica writes demo ({owner} by the lease)");

    let waiter = common::token_for("demo", Role::Waiter, None, None);
    let (mut tablet, _) = screen(r1, &waiter, json!({"type": "subscribe", "table": "t1"})).await;
    let (mut grill, _) = screen(
        r2,
        &kitchen("grill"),
        json!({"type": "subscribe", "station": "grill"}),
    )
    .await;
    let (mut expo, _) = screen(
        r3,
        &kitchen("expo"),
        json!({"type": "subscribe", "station": "expo"}),
    )
    .await;

    // The waiter's tablet talks to replica 1, whoever owns the branch.
    let (status, order) = post(r1.base(), "/orders", "open-1", json!({"table": "t1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let lines = json!({"lines": [{"item": "steak", "modifiers": ["medium rare"]}]});
    let (status, body) = post(r1.base(), &format!("/orders/{id}/lines"), "lines-1", lines).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, fired) = post(
        r1.base(),
        &format!("/orders/{id}/fire"),
        "fire-1",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fired}");

    // The grill screen on replica 2 gets the ticket, and bumps it over its socket.
    let mut grill_seen = Vec::new();
    let fire = until_event(&mut grill, "course_fired", &mut grill_seen).await;
    let ticket = fire["event"]["tickets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fire["event"]["tickets"][0]["lines"][0]["item"], "steak");
    grill
        .send(json!({"type": "bump", "id": "bump-grill-1", "station": "grill", "ticket": ticket}))
        .await;
    let ack = grill.next_of("ack").await;
    assert_eq!(ack["id"], "bump-grill-1", "{ack}");
    assert_eq!(ack["ticket"]["status"], "bumped", "{ack}");
    // The same frame again is the same answer, never a second bump.
    grill
        .send(json!({"type": "bump", "id": "bump-grill-1", "station": "grill", "ticket": ticket}))
        .await;
    let again = grill.next_of("ack").await;
    assert_eq!(again, ack);

    // Expo on replica 3 sees the fire and the grill's bump, and sends the order out.
    let mut expo_seen = Vec::new();
    let fire_at_expo = until_event(&mut expo, "course_fired", &mut expo_seen).await;
    let expo_ticket = fire_at_expo["event"]["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station"] == "expo")
        .expect("expo has its ticket")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    until_event(&mut expo, "expo_ready", &mut expo_seen).await;
    expo.send(
        json!({"type": "bump", "id": "bump-expo-1", "station": "expo", "ticket": expo_ticket}),
    )
    .await;
    let ack = expo.next_of("ack").await;
    assert_eq!(ack["ticket"]["status"], "bumped", "{ack}");

    // The waiter on replica 1 hears that the food is ready.
    let mut tablet_seen = Vec::new();
    until_event(&mut tablet, "order_ready", &mut tablet_seen).await;
    for seen in [&grill_seen, &expo_seen, &tablet_seen] {
        assert_positions_increase(seen);
    }

    // Every replica answers as the owner does: reads, and a retried command.
    let (_, from_owner) = get(r1.base(), &format!("/orders/{id}")).await;
    for r in &replicas {
        let (status, order) = get(r.base(), &format!("/orders/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            order, from_owner,
            "{} answers the order as the owner does",
            r.id
        );
        let (status, again) =
            post(r.base(), &format!("/orders/{id}/fire"), "fire-1", json!({})).await;
        assert_eq!(
            (status, &again),
            (StatusCode::OK, &fired),
            "{} answers a retry alike",
            r.id
        );
    }
    // One journal, no event twice.
    let (_, events) = get(r2.base(), "/events?after=0&limit=1000").await;
    let positions: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
    let lease = lease_of(&db, "demo").await.unwrap();
    assert_eq!(lease.0, owner, "the branch stayed with its owner");
    let _ = LEASE_TTL;
}

/// Frames a socket is sent, gathered in the background.
struct Screen {
    frames: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Screen {
    async fn grill(replica: &Replica) -> Self {
        let (mut ws, _) = screen(
            replica,
            &kitchen("grill"),
            json!({"type": "subscribe", "station": "grill"}),
        )
        .await;
        let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let gathered = frames.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = futures_util::StreamExt::next(&mut ws.stream).await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    gathered.lock().unwrap().push(frame);
                }
            }
        });
        Self { frames, task }
    }

    fn frames(&self) -> Vec<Value> {
        self.frames.lock().unwrap().clone()
    }

    /// The grill tickets of every `course_fired` this screen was sent, in order.
    fn fired_tickets(&self) -> Vec<String> {
        self.frames()
            .iter()
            .filter(|f| f["type"] == "event" && f["event"]["type"] == "course_fired")
            .flat_map(|f| {
                f["event"]["tickets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|t| t["station"] == "grill")
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until the screen has every ticket, then checks it has each exactly once and its
    /// positions only ever increase.
    async fn assert_has_exactly(&self, tickets: &[String], name: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self.fired_tickets();
            if tickets.iter().all(|t| seen.contains(t)) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} has {} of {} tickets",
                tickets.iter().filter(|t| seen.contains(t)).count(),
                tickets.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seen = self.fired_tickets();
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{name} was sent a ticket twice");
        assert_positions_increase(&self.frames());
        assert!(!self.task.is_finished(), "{name}'s socket stayed open");
    }
}

/// Where a rush sends its commands: the replicas still running.
type Targets = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// What a rush did: each command's first attempt and answer, and the grill tickets of the
/// orders whose fire was answered.
#[derive(Default)]
struct Placed {
    commands: Vec<(std::time::Instant, std::time::Instant)>,
    tickets: Vec<String>,
}

type Progress = std::sync::Arc<std::sync::Mutex<Placed>>;

/// Sends one command until it is answered (any replica, in turn), with its idempotency key.
async fn until_done(
    targets: &Targets,
    progress: &Progress,
    path: &str,
    key: &str,
    body: Value,
) -> Value {
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(30);
    for attempt in 0.. {
        let base = {
            let targets = targets.lock().unwrap();
            targets[attempt % targets.len()].clone()
        };
        let sent = client()
            .post(format!("{base}/api/v1/branches/demo{path}"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await;
        if let Ok(res) = sent {
            let (status, answer) = read(res).await;
            if status.is_success() {
                let answered = std::time::Instant::now();
                progress.lock().unwrap().commands.push((started, answered));
                return answer;
            }
            assert!(
                matches!(
                    status,
                    StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT
                ),
                "{path}: {status} {answer}"
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Orders placed one after another (open, a steak, fire), each step retried until answered.
async fn rush(targets: Targets, progress: Progress, orders: usize, tag: &str) {
    for n in 0..orders {
        let table = ["t1", "t2", "t3", "t4"][n % 4];
        let open = json!({"table": table});
        let order = until_done(
            &targets,
            &progress,
            "/orders",
            &format!("{tag}-open-{n}"),
            open,
        )
        .await;
        let id = order["id"].as_str().unwrap().to_owned();
        let lines = json!({"lines": [{"item": "steak"}]});
        let path = format!("/orders/{id}/lines");
        until_done(
            &targets,
            &progress,
            &path,
            &format!("{tag}-lines-{n}"),
            lines,
        )
        .await;
        let path = format!("/orders/{id}/fire");
        let fired = until_done(
            &targets,
            &progress,
            &path,
            &format!("{tag}-fire-{n}"),
            json!({}),
        )
        .await;
        let ticket = fired["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["station"] == "grill")
            .expect("a grill ticket")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        progress.lock().unwrap().tickets.push(ticket);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a rush has had `n` orders answered.
async fn until_placed(progress: &Progress, n: usize) {
    while progress.lock().unwrap().tickets.len() < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long after `at` the first command sent after it was answered.
fn back_after(progress: &Progress, at: std::time::Instant) -> Duration {
    let placed = progress.lock().unwrap();
    let answered = placed
        .commands
        .iter()
        .filter(|(started, _)| *started > at)
        .map(|(_, answered)| *answered)
        .min()
        .expect("commands were answered after it");
    answered - at
}

/// Waits until a replica other than `old` holds the branch's lease.
async fn new_owner(db: &str, old: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((owner, _, true)) = lease_of(db, "demo").await {
            if owner != old {
                return owner;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nobody took demo from {old}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every grill ticket the journal fired, once each.
async fn journal_tickets(base: &str) -> Vec<String> {
    let (status, events) = get(base, "/events?after=0&limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{events}");
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "course_fired")
        .flat_map(|e| e["body"]["tickets"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["station"] == "grill")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_killed_mid_rush_loses_nothing() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let mut replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let survivors: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();
    let screens = [
        Screen::grill(survivors[0]).await,
        Screen::grill(survivors[1]).await,
    ];
    let survivor = survivors[0].base().to_owned();
    let targets: Targets = std::sync::Arc::new(std::sync::Mutex::new(
        replicas.iter().map(|r| r.base().to_owned()).collect(),
    ));
    let progress = Progress::default();
    let placing = tokio::spawn(rush(targets.clone(), progress.clone(), 40, "kill"));

    // Once the rush is under way, the owner dies without a word.
    until_placed(&progress, 10).await;
    let victim = replicas.iter().position(|r| r.id == owner).unwrap();
    let base = replicas[victim].base().to_owned();
    targets.lock().unwrap().retain(|b| *b != base);
    let killed_at = std::time::Instant::now();
    replicas.remove(victim).kill();
    placing.await.unwrap();

    // Service came back within a lease and 2 s of the kill.
    let outage = back_after(&progress, killed_at);
    println!(
        "failover: the first command sent after the kill was answered {} ms after it",
        outage.as_millis()
    );
    assert!(
        outage <= LEASE_TTL + Duration::from_secs(2),
        "service back after {outage:?}"
    );
    assert_ne!(new_owner(&db, &owner).await, owner);

    // Every acknowledged ticket is on both surviving screens, and in the journal, once.
    let tickets = progress.lock().unwrap().tickets.clone();
    assert_eq!(tickets.len(), 40);
    for (n, screen) in screens.iter().enumerate() {
        screen
            .assert_has_exactly(&tickets, &format!("screen {n}"))
            .await;
    }
    assert_eq!(journal_tickets(&survivor).await, tickets);
}
