//! Who is alive: each replica keeps a Redis key of its own (`rail:member:<id>`, its address
//! and message version) with a time to live of one lease, refreshed every tick, and its name in
//! the set `rail:members`. A replica that dies drops out when its key runs out; one that stops
//! removes itself at once.

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::Cluster;

const MEMBERS: &str = "rail:members";

/// The version of what replicas tell each other (membership and relay messages).
pub const VERSION: u32 = 1;

/// A live replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    /// Where it answers forwarded commands (host:port).
    pub address: String,
    /// The newest message version it speaks.
    #[serde(default = "first_version")]
    pub v: u32,
}

fn first_version() -> u32 {
    1
}

fn key(id: &str) -> String {
    format!("rail:member:{id}")
}

/// Refreshes this replica's key (when `alive`) and reads every live member; `None` when Redis
/// cannot be read.
pub(super) async fn beat_and_list(cluster: &Cluster, alive: bool) -> Option<Vec<Member>> {
    let me = Member {
        id: cluster.id().to_owned(),
        address: cluster.0.settings.address.clone(),
        v: VERSION,
    };
    let ttl = cluster.0.settings.lease_ttl;
    let work = async {
        let mut conn = cluster.0.redis.get().await.ok()?;
        let text = serde_json::to_string(&me).ok()?;
        if alive {
            redis::pipe()
                .cmd("SET")
                .arg(key(&me.id))
                .arg(text)
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .ignore()
                .cmd("SADD")
                .arg(MEMBERS)
                .arg(&me.id)
                .ignore()
                .query_async::<()>(&mut *conn)
                .await
                .ok()?;
        }
        let mut ids: Vec<String> = conn.smembers(MEMBERS).await.ok()?;
        ids.sort();
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        let found: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut *conn)
            .await
            .ok()?;
        let mut members = Vec::new();
        for (id, found) in ids.iter().zip(found) {
            match found.and_then(|text| serde_json::from_str::<Member>(&text).ok()) {
                Some(member) => members.push(member),
                None => {
                    let _: Result<(), _> = conn.srem(MEMBERS, id).await;
                }
            }
        }
        Some(members)
    };
    tokio::time::timeout(Duration::from_secs(1), work)
        .await
        .ok()
        .flatten()
}

/// Removes this replica from the members at once (a graceful stop).
pub(super) async fn leave(cluster: &Cluster) {
    let work = async {
        let mut conn = cluster.0.redis.get().await.ok()?;
        redis::pipe()
            .cmd("DEL")
            .arg(key(cluster.id()))
            .ignore()
            .cmd("SREM")
            .arg(MEMBERS)
            .arg(cluster.id())
            .ignore()
            .query_async::<()>(&mut *conn)
            .await
            .ok()
    };
    if tokio::time::timeout(Duration::from_secs(1), work)
        .await
        .is_err()
    {
        tracing::warn!(
            "could not leave the members list; this replica drops out when its key runs out"
        );
    }
    super::relay::announce(cluster, super::relay::Note::Left).await;
}
