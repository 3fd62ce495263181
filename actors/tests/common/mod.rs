//! What the journal's Postgres tests share.

/// A fresh, empty database on the Postgres at `TEST_DATABASE_URL` (by default the local one);
/// its URL. `scripts/test` drops these databases after the run.
pub async fn fresh_database() -> String {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("Postgres at {admin} is not reachable ({e}); scripts/test starts it")
        });
    tokio::spawn(conn);
    let name = format!("rail_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}
