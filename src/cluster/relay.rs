//! The relay: what an owner commits, out to every replica, without gaps.
//!
//! The owner publishes each of its commits on the Redis channel `rail:relay` as a versioned
//! message holding the events in their storage format (`rail_actors::stored`), so a replica of
//! another version reads them as recovery does. Every replica subscribes on one dedicated
//! connection and hands what it receives to the branch, which applies events in position
//! order and reads a gap back from the journal first; a duplicate is dropped by its position.
//!
//! Redis pub/sub is at most once and this Redis keeps nothing, so the journal is read as well:
//! every tick, each replica reads every branch's head and a branch behind it catches up.
//! Every replica also says it is alive on the channel each tick; a subscription that hears
//! nothing for three ticks is taken for dead and made again (the watchdog), and each new
//! subscription starts by reading the heads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rail_actors::ids::{BranchId, StationId, TicketId};
use rail_actors::journal::{Committed, Decoded, StoredEvent};
use rail_actors::Acknowledged;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::members::VERSION;
use super::Cluster;
use crate::metrics;

const CHANNEL: &str = "rail:relay";

/// A message between replicas.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The message format; a replica skips messages newer than it reads (the journal has
    /// their events).
    v: u32,
    from: String,
    #[serde(flatten)]
    note: Note,
}

/// What a message says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Note {
    /// Events the sender committed, one append's, in position order.
    Events { events: Vec<RelayedEvent> },
    /// The sender is alive (and the channel works).
    Beat,
    /// The sender let a branch's lease go: its next owner may take it now.
    Released { branch: String },
    /// The sender is leaving the chain.
    Left,
    /// Tickets screens on the sender acknowledged, for the watch of the replica that writes
    /// their branch.
    Seen { acks: Vec<SeenAck> },
}

/// A screen's acknowledgement of tickets of one station, as replicas pass it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SeenAck {
    branch: BranchId,
    station: StationId,
    tickets: Vec<TicketId>,
}

/// An event as replicas pass it: the journal's columns, the body in its storage format.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RelayedEvent {
    stream: String,
    seq: u64,
    branch: String,
    position: u64,
    kind: String,
    body: Value,
    at: DateTime<Utc>,
}

impl From<&StoredEvent> for RelayedEvent {
    fn from(e: &StoredEvent) -> Self {
        Self {
            stream: e.stream.clone(),
            seq: e.seq,
            branch: e.branch.clone(),
            position: e.position,
            kind: e.kind.clone(),
            body: e.body.clone(),
            at: e.at,
        }
    }
}

impl From<RelayedEvent> for StoredEvent {
    fn from(e: RelayedEvent) -> Self {
        Self {
            stream: e.stream,
            seq: e.seq,
            branch: e.branch,
            position: e.position,
            kind: e.kind,
            body: e.body,
            at: e.at,
            decoded: Decoded::default(),
        }
    }
}

fn encode(cluster: &Cluster, note: Note) -> String {
    let message = Message {
        v: VERSION,
        from: cluster.id().to_owned(),
        note,
    };
    serde_json::to_string(&message).expect("relay messages serialize")
}

/// Publishes one note (a beat, a lease let go), best effort.
pub(super) async fn announce(cluster: &Cluster, note: Note) {
    let text = encode(cluster, note);
    let work = async {
        let mut conn = cluster.0.redis.get().await.ok()?;
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(text)
            .query_async::<()>(&mut *conn)
            .await
            .ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), work).await;
}

/// Publishes this replica's commits as they come, those waiting together in one pipeline.
/// A commit that cannot be published is left to the journal: the others read it from there.
pub(super) async fn publish(cluster: Cluster, mut commits: mpsc::UnboundedReceiver<Committed>) {
    while let Some(first) = commits.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match commits.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        for committed in &batch {
            let events = committed.iter().map(RelayedEvent::from).collect();
            let text = encode(&cluster, Note::Events { events });
            pipe.cmd("PUBLISH").arg(CHANNEL).arg(text).ignore();
        }
        let work = async {
            let mut conn = cluster.0.redis.get().await.ok()?;
            pipe.query_async::<()>(&mut *conn).await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(1), work).await {
            Ok(Some(())) => metrics::relay_published(batch.len()),
            _ => metrics::relay_publish_failed(batch.len()),
        }
    }
}

/// How long acknowledgements wait to go out together: screens acknowledge each fire as it
/// reaches them, so a busy kitchen's come in bursts.
const ACKS_EVERY: Duration = Duration::from_millis(50);

/// Publishes what this replica's screens acknowledged of branches another replica writes,
/// gathered for a moment into one message. Lost ones only make a ticket escalated when it
/// was seen: the watch errs on the side of telling expo.
pub(super) async fn publish_acks(
    cluster: Cluster,
    mut acks: mpsc::UnboundedReceiver<Acknowledged>,
) {
    while let Some(first) = acks.recv().await {
        tokio::time::sleep(ACKS_EVERY).await;
        let mut batch = vec![first];
        while batch.len() < 512 {
            match acks.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let acks = batch
            .into_iter()
            .map(|a| SeenAck {
                branch: a.branch,
                station: a.station,
                tickets: a.tickets,
            })
            .collect();
        announce(&cluster, Note::Seen { acks }).await;
    }
}

/// Follows the channel on one dedicated connection, made again whenever it breaks or falls
/// silent.
pub(super) async fn subscribe(cluster: Cluster) {
    let watchdog = cluster.tick() * 3;
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(2), async {
            let mut pubsub = cluster.0.client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "relay not subscribed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        tracing::info!("relay subscribed");
        cluster.0.relay_up.store(true, Ordering::Release);
        metrics::relay_up(true);
        // What was committed while this replica was not listening is in the journal.
        sync_heads(&cluster).await;
        let mut messages = pubsub.into_on_message();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => receive(&cluster, message.get_payload_bytes()),
                    None => {
                        tracing::warn!("relay connection closed; subscribing again");
                        break;
                    }
                },
                _ = tokio::time::sleep(watchdog) => {
                    tracing::warn!("relay silent for {watchdog:?}; subscribing again");
                    break;
                }
            }
        }
        cluster.0.relay_up.store(false, Ordering::Release);
        metrics::relay_up(false);
    }
}

/// Hands a relayed message to the engine.
fn receive(cluster: &Cluster, payload: &[u8]) {
    let message: Message = match serde_json::from_slice(payload) {
        Ok(message) => message,
        Err(e) => {
            // A newer replica's message this one cannot read: the journal has its events.
            metrics::relay_unreadable();
            return tracing::debug!(error = %e, "relay message not read");
        }
    };
    if message.v > VERSION {
        metrics::relay_unreadable();
        return;
    }
    if message.from == cluster.id() {
        return;
    }
    match message.note {
        Note::Events { events } => {
            metrics::relay_received(events.len());
            let events: Vec<StoredEvent> = events.into_iter().map(StoredEvent::from).collect();
            let branch = events.first().map(|e| e.branch.clone());
            if branch.as_deref().is_some_and(|b| !known(cluster, b)) {
                // A branch created elsewhere: adopted from the journal, which has these too.
                let cluster = cluster.clone();
                actix_web::rt::spawn(async move {
                    if let Some(b) = branch.and_then(|b| BranchId::parse(b).ok()) {
                        let _ = cluster.0.engine.adopt(&b).await;
                    }
                });
                return;
            }
            cluster.0.engine.relayed(events.into());
        }
        Note::Seen { acks } => {
            for ack in acks {
                cluster.0.engine.acknowledged_elsewhere(Acknowledged {
                    branch: ack.branch,
                    station: ack.station,
                    tickets: ack.tickets,
                });
            }
        }
        Note::Released { .. } | Note::Left => cluster.0.nudge.notify_one(),
        Note::Beat => {}
    }
}

fn known(cluster: &Cluster, branch: &str) -> bool {
    BranchId::parse(branch.to_owned())
        .ok()
        .is_some_and(|b| cluster.0.engine.branch(&b).is_ok())
}

/// Reads every branch's head from the journal every tick: a branch behind it reads what it
/// missed, and a branch this replica does not run yet is adopted.
pub(super) async fn poll_heads(cluster: Cluster) {
    loop {
        tokio::time::sleep(cluster.tick()).await;
        sync_heads(&cluster).await;
    }
}

async fn sync_heads(cluster: &Cluster) {
    let Ok(heads) = cluster.0.engine.journal().heads().await else {
        return;
    };
    // The branches written here hear of their commits first hand.
    let owned: std::collections::HashSet<String> = cluster.state().owned.keys().cloned().collect();
    for (branch, head) in heads {
        if owned.contains(&branch) {
            continue;
        }
        let Ok(id) = BranchId::parse(branch) else {
            continue;
        };
        if cluster.0.engine.branch(&id).is_err() {
            if let Err(e) = cluster.0.engine.adopt(&id).await {
                tracing::warn!(branch = %id, error = %e, "branch not adopted");
            }
            continue;
        }
        cluster.0.engine.caught_up_to(&id, head);
    }
}
