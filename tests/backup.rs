//! Backups of the embedded journal: `rail backup` copies it while the engine takes a rush, the
//! copy restores (`rail restore`) into an engine that holds exactly what the source held at
//! the copy's position, a running engine's journal is never overwritten, and a damaged copy is
//! refused before anything is touched. Real engine processes over real HTTP.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Server, Store, TestJournal};
use serde_json::{json, Value};

fn path_of(journal: &TestJournal) -> &Path {
    match &journal.store {
        Store::File(path) => path,
        Store::Postgres(_) => unreachable!("an embedded journal"),
    }
}

async fn rail(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rail"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RAIL_JOURNAL_PATH")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("rail runs")
}

/// Every event of the demo branch, by position.
async fn events(server: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let after = all
            .last()
            .map_or(0, |e: &Value| e["position"].as_u64().unwrap());
        let page = server
            .get(&format!("/events?after={after}&limit=1000"))
            .await;
        let page = page["events"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| page.as_array().cloned().expect("a list of events"));
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[actix_web::test]
async fn a_backup_taken_during_a_rush_restores_what_the_journal_held_at_its_position() {
    let source = TestJournal::embedded();
    let server = Arc::new(Server::start(&source).await);
    // A rush: complete orders, four at a time, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicUsize::new(0));
    let mut rush = Vec::new();
    for n in 0..4 {
        let (server, stop, taken) = (server.clone(), stop.clone(), taken.clone());
        rush.push(tokio::spawn(async move {
            let table = ["t1", "t2", "t3", "t4"][n];
            while !stop.load(Ordering::Relaxed) {
                server
                    .post(
                        "/orders",
                        json!({"table": table, "lines": [{"item": "steak"}, {"item": "fries"}],
                               "fire": {}}),
                    )
                    .await;
                taken.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while taken.load(Ordering::Relaxed) < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let journal = path_of(&source).display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db").display().to_string();
    let out = rail(
        &["backup", "--to", &copy],
        &[("RAIL_JOURNAL_PATH", &journal)],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at: u64 = said
        .split("branch demo at position ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the backup says where it is: {said}"));
    let before = taken.load(Ordering::Relaxed);
    while taken.load(Ordering::Relaxed) < before + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in rush {
        task.await.unwrap();
    }
    // A second backup to the same file is refused, and the file stays as it was.
    let out = rail(
        &["backup", "--to", &copy],
        &[("RAIL_JOURNAL_PATH", &journal)],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));

    // The running engine's journal is not overwritten.
    let out = rail(&["restore", "--from", &copy, "--journal", &journal], &[]).await;
    assert!(
        !out.status.success(),
        "a running engine's journal was replaced"
    );
    let refusal = String::from_utf8_lossy(&out.stderr);
    assert!(refusal.contains("held by a running engine"), "{refusal}");
    // Nor does a second engine open it.
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        rail(
            &["serve"],
            &[
                ("RAIL_JOURNAL_PATH", &journal),
                ("PORT", "0"),
                ("JWT_SECRET", common::SECRET),
            ],
        ),
    )
    .await
    .expect("a second engine on the same journal stops at once");
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("held by a running engine"), "{said}");
    let source_events = events(&server).await;
    let head = source_events.last().unwrap()["position"].as_u64().unwrap();
    assert!(
        head > at,
        "the rush went on after the backup ({head} > {at})"
    );

    // Restored into a journal of its own, an engine holds the source's events up to the
    // backup's position, and the orders as they were then.
    let restored = TestJournal::embedded();
    let target = path_of(&restored).display().to_string();
    let out = rail(&["restore", "--from", &copy, "--journal", &target], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = Server::start(&restored).await;
    let restored_events = events(&other).await;
    let expected: Vec<&Value> = source_events
        .iter()
        .filter(|e| e["position"].as_u64().unwrap() <= at)
        .collect();
    assert_eq!(restored_events.len(), expected.len());
    assert!(
        restored_events.iter().zip(&expected).all(|(a, b)| a == *b),
        "the same events at the same positions"
    );
    let orders = other.get("/orders").await;
    let orders = orders.as_array().unwrap();
    let opened = expected
        .iter()
        .filter(|e| e["kind"] == "order_opened")
        .count();
    assert_eq!(orders.len(), opened, "every order opened before the backup");
    let changed_later = |id: &str| {
        source_events.iter().any(|e| {
            e["position"].as_u64().unwrap() > at && e["stream"] == format!("order/{id}").as_str()
        })
    };
    let mut compared = 0;
    for order in orders {
        let id = order["id"].as_str().unwrap();
        if !changed_later(id) {
            assert_eq!(server.get(&format!("/orders/{id}")).await, *order);
            compared += 1;
        }
    }
    assert!(compared > 0);
    // It takes orders on from there.
    let next = other
        .post(
            "/orders",
            json!({"table": "t1", "lines": [{"item": "caesar"}], "fire": {}}),
        )
        .await;
    assert_eq!(next["lines"][0]["status"], "fired", "{next}");
    other.kill();
    Arc::try_unwrap(server)
        .ok()
        .expect("the rush is over")
        .kill();
}

#[actix_web::test]
async fn a_damaged_or_foreign_copy_is_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("journal.db");
    let target_s = target.display().to_string();
    let schema = include_str!("../migrations/sqlite/0001_journal.sql");
    // Not SQLite at all.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a journal at all").unwrap();
    // Another program's database.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    // A journal holding an event no version of the engine wrote.
    let unknown = dir.path().join("unknown.db");
    let db = rusqlite::Connection::open(&unknown).unwrap();
    db.execute_batch(schema).unwrap();
    db.execute(
        "INSERT INTO events (branch, position, stream, seq, kind, body, at) \
         VALUES ('demo', 1, 'branch/demo', 1, 'dinner_teleported', '{}', 0)",
        [],
    )
    .unwrap();
    drop(db);
    // A journal cut short (a copy that did not finish).
    let cut = dir.path().join("cut.db");
    let db = rusqlite::Connection::open(&cut).unwrap();
    db.execute_batch(schema).unwrap();
    for n in 1..2000 {
        db.execute(
            "INSERT INTO idempotency_keys (branch, key, fingerprint, stream, seq, at) \
             VALUES ('demo', ?1, 'f', 'branch/demo', 1, 0)",
            [format!("key-{n:05}-{}", "x".repeat(100))],
        )
        .unwrap();
    }
    drop(db);
    let len = std::fs::metadata(&cut).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let missing = dir.path().join("missing.db");
    for bad in [&garbage, &foreign, &unknown, &cut, &missing] {
        let from = bad.display().to_string();
        let out = rail(&["restore", "--from", &from, "--journal", &target_s], &[]).await;
        assert!(!out.status.success(), "{from} was restored");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("not a usable journal copy"), "{from}: {said}");
        assert!(!target.exists(), "nothing is written for {from}");
    }
    // No journal to copy: nothing is written.
    let copy = dir.path().join("copy.db").display().to_string();
    let absent = dir.path().join("absent.db").display().to_string();
    let out = rail(&["backup", "--to", &copy, "--journal", &absent], &[]).await;
    assert!(!out.status.success());
    assert!(!dir.path().join("copy.db").exists());
    // A Postgres journal is backed up with Postgres's own tools.
    let out = rail(
        &["backup", "--to", &copy],
        &[("DATABASE_URL", "postgres://localhost/rail")],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}
