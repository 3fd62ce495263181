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
    let urls = [db.to_owned(), db.to_owned(), db.to_owned()];
    three_through(db, &urls, redis).await
}

/// Three replicas, each reaching the journal at its own URL (a proxy in front of `db`).
async fn three_through(db: &str, urls: &[String; 3], redis: &RedisServer) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for (id, url) in ["r1", "r2", "r3"].into_iter().zip(urls) {
        replicas.push(Replica::start(id, url, &redis.url(), &[]).await);
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
        let (ws, snapshot) = screen(
            replica,
            &kitchen("grill"),
            json!({"type": "subscribe", "station": "grill"}),
        )
        .await;
        Self::gather(ws, vec![snapshot])
    }

    /// A grill screen that resumes after the last position it saw (on another replica).
    async fn grill_after(replica: &Replica, after: u64) -> Self {
        let mut ws = Ws {
            stream: ws_connect_as(&replica.ws_url(), &kitchen("grill")).await,
        };
        ws.send(json!({"type": "subscribe", "station": "grill", "after": after}))
            .await;
        Self::gather(ws, Vec::new())
    }

    fn gather(mut ws: Ws, first: Vec<Value>) -> Self {
        let frames = std::sync::Arc::new(std::sync::Mutex::new(first));
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

    /// The last event position it was sent (its snapshot's, before any event).
    fn last_position(&self) -> u64 {
        self.frames()
            .iter()
            .filter_map(|f| match f["type"].as_str() {
                Some("event") => f["position"].as_u64(),
                Some("snapshot") => f["snapshot"]["position"].as_u64(),
                _ => None,
            })
            .max()
            .unwrap_or(0)
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

fn replica_named<'a>(replicas: &'a [Replica], id: &str) -> &'a Replica {
    replicas.iter().find(|r| r.id == id).unwrap()
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

/// Places a rush through `through` with screens on `screens`; returns the rush's progress and
/// its task.
fn start_rush(
    through: &[&Replica],
    orders: usize,
    tag: &'static str,
) -> (Targets, Progress, tokio::task::JoinHandle<()>) {
    let targets: Targets = std::sync::Arc::new(std::sync::Mutex::new(
        through.iter().map(|r| r.base().to_owned()).collect(),
    ));
    let progress = Progress::default();
    let task = tokio::spawn(rush(targets.clone(), progress.clone(), orders, tag));
    (targets, progress, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_past_its_lease_steps_down_and_writes_nothing() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let (_, first_epoch, _) = lease_of(&db, "demo").await.unwrap();
    let paused = replica_named(&replicas, &owner);
    let others: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();
    let screens = [
        Screen::grill(others[0]).await,
        Screen::grill(others[1]).await,
    ];
    let (_, progress, placing) = start_rush(&others, 30, "pause");

    until_placed(&progress, 8).await;
    paused.signal("STOP");
    let stopped_at = std::time::Instant::now();
    // A command sent straight to the paused owner waits in its socket until it wakes.
    let paused_base = paused.base().to_owned();
    let stale = tokio::spawn(async move {
        post(
            &paused_base,
            "/orders",
            "stale-open",
            json!({"table": "t2"}),
        )
        .await
    });
    let taker = new_owner(&db, &owner).await;
    let taken_after = stopped_at.elapsed();
    let (_, epoch, _) = lease_of(&db, "demo").await.unwrap();
    assert!(epoch > first_epoch, "the new owner's epoch moved on");
    until_placed(&progress, 16).await;

    // The old owner wakes believing it still owns the branch: the journal refuses it by the
    // epoch, or it has stepped down first and forwards; either way it writes nothing itself.
    paused.signal("CONT");
    let (status, answer) = stale.await.unwrap();
    assert!(
        status == StatusCode::CREATED
            || (status == StatusCode::SERVICE_UNAVAILABLE
                && answer["error"]["code"] == "owner_unavailable"),
        "the woken owner answered {status} {answer}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while paused.owns("demo").await {
        assert!(
            std::time::Instant::now() < deadline,
            "the woken owner never stepped down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    placing.await.unwrap();
    println!(
        "pause: {taker} took the branch {} ms after the owner stopped",
        taken_after.as_millis()
    );
    // The woken replica may be handed the branch back (placement still picks it): only ever
    // under a newer epoch.
    let (_, last_epoch, _) = lease_of(&db, "demo").await.unwrap();
    assert!(last_epoch >= epoch);

    let tickets = progress.lock().unwrap().tickets.clone();
    for (n, screen) in screens.iter().enumerate() {
        screen
            .assert_has_exactly(&tickets, &format!("screen {n}"))
            .await;
    }
    assert_eq!(journal_tickets(others[0].base()).await, tickets);
    // The stale open, if it was carried out at all, was carried out once.
    let (_, events) = get(others[0].base(), "/events?after=0&limit=1000").await;
    let positions: Vec<u64> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_rush_misses_and_repeats_nothing() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let mut redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    // Screens on the replicas that follow the branch over the relay.
    let others: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();
    let screens = [
        Screen::grill(others[0]).await,
        Screen::grill(others[1]).await,
    ];
    let all: Vec<&Replica> = replicas.iter().collect();
    let (_, progress, placing) = start_rush(&all, 40, "redis");

    until_placed(&progress, 10).await;
    redis.kill();
    // Without Redis, every replica goes on serving: the owner keeps its lease (Postgres),
    // the others forward to it and read its commits from the journal.
    until_placed(&progress, 20).await;
    redis.restart().await;
    placing.await.unwrap();

    let tickets = progress.lock().unwrap().tickets.clone();
    assert_eq!(tickets.len(), 40);
    for (n, screen) in screens.iter().enumerate() {
        screen
            .assert_has_exactly(&tickets, &format!("screen {n}"))
            .await;
    }
    assert_eq!(
        lease_of(&db, "demo").await.unwrap().0,
        owner,
        "the owner kept the branch"
    );
    // The relay and the members come back.
    for r in &replicas {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while r.server.metric("rail_relay_up").await != Some(1.0)
            || r.server.metric("rail_replica_members").await != Some(3.0)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never rejoined Redis",
                r.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // What comes after the restart is relayed again.
    let screen_before = screens[0].fired_tickets().len();
    let (_, progress, placing) = start_rush(&all, 3, "after");
    placing.await.unwrap();
    let more = progress.lock().unwrap().tickets.clone();
    screens[0]
        .assert_has_exactly(&more, "screen 0 after the restart")
        .await;
    assert_eq!(screens[0].fired_tickets().len(), screen_before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_cut_off_from_the_journal_gives_way_and_never_shares_it() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let upstream = db
        .strip_prefix("postgres://")
        .and_then(|rest| rest.split_once('@'))
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(host, _)| host.to_owned())
        .expect("postgres://user@host:port/db");
    let (user_part, db_name) = {
        let (head, name) = db.rsplit_once('/').unwrap();
        let user = head
            .strip_prefix("postgres://")
            .unwrap()
            .split_once('@')
            .unwrap()
            .0
            .to_owned();
        (user, name.to_owned())
    };
    let mut proxies = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..3 {
        let proxy = common::proxy::FaultProxy::start(upstream.clone()).await;
        urls.push(format!(
            "postgres://{user_part}@127.0.0.1:{}/{db_name}",
            proxy.port
        ));
        proxies.push(proxy);
    }
    let urls: [String; 3] = urls.try_into().unwrap();
    let replicas = three_through(&db, &urls, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let cut = replicas.iter().position(|r| r.id == owner).unwrap();
    let others: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();
    let screen = Screen::grill(others[0]).await;
    let (_, progress, placing) = start_rush(&others, 20, "cut");

    until_placed(&progress, 5).await;
    proxies[cut].set_refuse(true);
    proxies[cut].cut();
    // At most one replica believes it writes the branch, at every moment, until another has it.
    let cut_at = std::time::Instant::now();
    let deadline = cut_at + Duration::from_secs(20);
    loop {
        let mut owners = Vec::new();
        for r in &replicas {
            if r.owns("demo").await {
                owners.push(r.id.clone());
            }
        }
        assert!(owners.len() <= 1, "two owners at once: {owners:?}");
        if owners.len() == 1 && owners[0] != owner {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the branch was never served again"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!(
        "cut: the branch had a new owner {} ms after its owner lost the journal",
        cut_at.elapsed().as_millis()
    );
    placing.await.unwrap();
    proxies[cut].heal();
    let tickets = progress.lock().unwrap().tickets.clone();
    screen.assert_has_exactly(&tickets, "screen").await;
    assert_eq!(journal_tickets(others[0].base()).await, tickets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_owner_hands_its_branch_over_without_waiting_for_the_lease() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let mut replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let others: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();
    let screens = [
        Screen::grill(others[0]).await,
        Screen::grill(others[1]).await,
    ];
    // A screen on the replica that stops: it is closed, and resumes on another replica.
    let leaving = Screen::grill(replica_named(&replicas, &owner)).await;
    let (_, progress, placing) = start_rush(&others, 30, "term");
    let survivor = others[0].base().to_owned();
    let survivor_index = replicas.iter().position(|r| r.id == others[0].id).unwrap();

    until_placed(&progress, 10).await;
    let stopping = replicas.iter().position(|r| r.id == owner).unwrap();
    replicas[stopping].signal("TERM");
    let stopped_at = std::time::Instant::now();
    let taker = new_owner(&db, &owner).await;
    let handed_after = stopped_at.elapsed();
    println!(
        "handoff: {taker} owned the branch {} ms after SIGTERM",
        handed_after.as_millis()
    );
    // Handed over, not waited out: well inside the lease's time to live.
    assert!(handed_after < LEASE_TTL, "handoff took {handed_after:?}");
    let status = replicas[stopping].server.child.wait().unwrap();
    assert!(
        status.success(),
        "the stopping replica exited cleanly: {status}"
    );
    assert!(
        leaving.task.is_finished(),
        "the stopping replica closed its sockets"
    );
    let resumed = Screen::grill_after(&replicas[survivor_index], leaving.last_position()).await;
    placing.await.unwrap();
    let tickets = progress.lock().unwrap().tickets.clone();
    for (n, screen) in screens.iter().enumerate() {
        screen
            .assert_has_exactly(&tickets, &format!("screen {n}"))
            .await;
    }
    assert_eq!(journal_tickets(&survivor).await, tickets);
    // The screen that moved saw every ticket once across its two sockets, without a reset.
    let moved = Screen {
        frames: std::sync::Arc::new(std::sync::Mutex::new(
            leaving
                .frames()
                .into_iter()
                .chain(resumed.frames())
                .collect(),
        )),
        task: resumed.task,
    };
    moved
        .assert_has_exactly(&tickets, "the screen that moved")
        .await;
    let frames = moved.frames();
    assert!(
        frames
            .iter()
            .all(|f| f["type"] != "snapshot" || f["reset"] == false),
        "a screen that moved was reset"
    );
}

/// Screens acknowledge tickets on whichever replica they are connected to; the replica that
/// writes the branch watches them, so it hears the others' acknowledgements over the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_on_other_replicas_acknowledge_tickets_for_the_owners_watch() {
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let follower = replicas.iter().find(|r| r.id != owner).unwrap();

    let (_, branch) = get(follower.base(), "").await;
    let mut config = branch["config"].clone();
    config["unseen_after_seconds"] = json!(2);
    let res = client()
        .put(format!("{}/api/v1/branches/demo", follower.base()))
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let subscribe = |station: &str| json!({"type": "subscribe", "station": station});
    let (mut grill, _) = screen(follower, &kitchen("grill"), subscribe("grill")).await;
    let (mut expo, _) = screen(follower, &kitchen("expo"), subscribe("expo")).await;
    let fire = |key: &'static str, table: &'static str| {
        let body = json!({"table": table, "lines": [{"item": "steak"}], "fire": {}});
        post(follower.base(), "/orders", key, body)
    };
    let ticket_of = |order: &Value, station: &str| {
        order["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["station"] == station)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut ignored = Vec::new();

    // Both screens show the first order's tickets and say so: the owner escalates nothing.
    let (status, first) = fire("ack-1", "t1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    until_event(&mut grill, "course_fired", &mut ignored).await;
    let seen = |station: &str, ticket: String| json!({"type": "seen", "station": station, "tickets": [ticket]});
    grill.send(seen("grill", ticket_of(&first, "grill"))).await;
    until_event(&mut expo, "course_fired", &mut ignored).await;
    expo.send(seen("expo", ticket_of(&first, "expo"))).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let unseen = |events: &Value| -> Vec<String> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "ticket_unseen")
            .map(|e| e["body"]["ticket_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let owner_base = replicas.iter().find(|r| r.id == owner).unwrap().base();
    let (_, events) = get(owner_base, "/events?limit=1000").await;
    assert_eq!(
        unseen(&events),
        Vec::<String>::new(),
        "acknowledged elsewhere"
    );

    // The grill's screen stops acknowledging: the owner escalates that ticket alone.
    let (status, second) = fire("ack-2", "t2").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    until_event(&mut expo, "course_fired", &mut ignored).await;
    expo.send(seen("expo", ticket_of(&second, "expo"))).await;
    let escalated = until_event(&mut expo, "ticket_unseen", &mut ignored).await;
    assert_eq!(escalated["event"]["ticket_id"], ticket_of(&second, "grill"));
    let (_, events) = get(owner_base, "/events?limit=1000").await;
    assert_eq!(unseen(&events), [ticket_of(&second, "grill")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_on_one_replica_is_refused_and_closed_on_every_other() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let replicas = three(&db, &redis).await;
    let owner = owner_of(&db, "demo", WAIT).await;
    let followers: Vec<&Replica> = replicas.iter().filter(|r| r.id != owner).collect();

    // Issued through one follower (the owner records it), paired through the other.
    let (status, issued) = post(
        followers[0].base(),
        "/tokens",
        "dev-1",
        json!({"role": "kitchen", "station": "grill", "device": "grill by the pass"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let (status, pairing) = post(
        followers[1].base(),
        "/pairings",
        "dev-2",
        json!({"role": "waiter", "device": "tablet 2"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{pairing}");
    let pair = |base: &str| {
        let url = format!("{base}/api/v1/branches/demo/pair");
        let code = pairing["code"].clone();
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .json(&json!({"code": code}))
                .send()
                .await
                .unwrap();
            read(res).await
        }
    };
    let (status, paired) = pair(followers[0].base()).await;
    assert_eq!(status, StatusCode::CREATED, "{paired}");
    // Used once, it pairs nothing through any replica.
    for r in &replicas {
        let (status, _) = pair(r.base()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", r.id);
    }

    // A screen on each replica; the device is revoked through one follower.
    let mut screens = Vec::new();
    for r in &replicas {
        let (ws, _) = screen(r, &token, json!({"type": "subscribe", "station": "grill"})).await;
        screens.push(ws);
    }
    let id = issued["device_id"].as_str().unwrap();
    let (status, revoked) = post(
        followers[1].base(),
        &format!("/devices/{id}/revoke"),
        "dev-3",
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    for (ws, r) in screens.iter_mut().zip(&replicas) {
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match ws.stream.next().await {
                    Some(Ok(Message::Close(frame))) => break frame,
                    Some(Ok(_)) => continue,
                    other => panic!("{}: {other:?}", r.id),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{}'s screen stays open", r.id))
        .expect("a close frame");
        assert_eq!(closed.reason.as_str(), "token_revoked", "{}", r.id);
    }
    for r in &replicas {
        let res = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/branches/demo/stations/grill/tickets",
                r.base()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = read(res).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {body}", r.id);
        assert_eq!(body["error"]["code"], "token_revoked");
    }
    // The paired tablet still works everywhere.
    for r in &replicas {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/branches/demo/orders", r.base()))
            .bearer_auth(paired["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{}", r.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_forwarded_to_the_owner_stays_in_the_callers_trace() {
    let receiver = common::otlp::Receiver::start().await;
    let journal = shared_journal().await;
    let db = database_url(&journal);
    let redis = RedisServer::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut replicas = Vec::new();
    for id in ["r1", "r2"] {
        replicas.push(Replica::start(id, &db, &redis.url(), &env).await);
    }
    let owner = owner_of(&db, "demo", Duration::from_secs(20)).await;
    let follower = replicas.iter().find(|r| r.id != owner).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get(follower.base(), "").await.0 != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "demo never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let caller = "b7ad6b7169203331";
    let res = client()
        .post(format!("{}/api/v1/branches/demo/orders", follower.base()))
        .header("traceparent", format!("00-{trace_id}-{caller}-01"))
        .json(&json!({"table": "t1", "lines": [{"item": "steak"}], "fire": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let http = "POST /api/v1/branches/{branch}/orders";
    let spans = receiver
        .trace(
            &common::otlp::hex(trace_id),
            &[http, "table.open_order", "journal.append"],
        )
        .await;
    // Two request spans: the follower's under the caller, the owner's under the follower's.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let requests = loop {
        let requests = receiver.spans_named(&common::otlp::hex(trace_id), http);
        if requests.len() >= 2 {
            break requests;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "request spans: {requests:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = requests
        .iter()
        .find(|s| s.parent_span_id == common::otlp::hex(caller))
        .expect("the follower's request span, under the caller's");
    let second = requests
        .iter()
        .find(|s| s.parent_span_id == first.span_id)
        .expect("the owner's request span, under the follower's");
    let command = common::otlp::named(&spans, "table.open_order");
    assert_eq!(
        command.parent_span_id, second.span_id,
        "the owner decided it"
    );
}
