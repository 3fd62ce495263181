//! Replicas: one chain on several engines, bridged by Redis, each branch written by one.
//!
//! With `REDIS_URL` (and the Postgres journal) every replica runs every branch's actors and
//! serves any client. Each branch is written by the replica holding its lease (a row in
//! Postgres whose epoch the journal checks in every commit, `rail_actors::journal::Fences`);
//! the others follow its commits, relayed over Redis and read back from the journal where the
//! relay missed any, so their own screens are served from memory; commands reaching them are
//! forwarded to the owner.
//!
//! - `members`: who is alive (Redis keys with a time to live, refreshed every tick);
//! - `placement`: which replica should own each branch (rendezvous hashing over the members),
//!   and taking, renewing, handing off and losing leases;
//! - `relay`: the owner's commits out on Redis, everyone's in, and the journal's heads read
//!   every tick so that a gap, a lost message or a Redis outage is filled from the journal;
//! - `forward`: REST commands and websocket ticket commands sent on to the owner.
//!
//! Why the lease lives in Postgres: `docs/decisions/0002-leases-in-the-journal.md`.

mod forward;
mod members;
mod placement;
mod relay;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;
use rail_actors::journal::{Committed, Fences, Lease, PostgresJournal};
use rail_actors::{Acknowledged, Engine};
use tokio::sync::{mpsc, Notify};

pub use forward::forward_to_owner;
pub use members::Member;

use crate::settings::Settings;

/// How this replica takes part: its name, where others reach it, and its timings.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    pub id: String,
    pub address: String,
    pub redis_url: String,
    /// How long a lease runs without renewal (a dead owner's branches wait this long).
    pub lease_ttl: Duration,
    /// How long a forwarded command may take before `503 owner_unavailable`.
    pub forward_timeout: Duration,
}

impl ReplicaSettings {
    /// The replica's settings, when `REDIS_URL` is set.
    pub fn of(settings: &Settings) -> Option<Self> {
        let redis_url = settings.redis_url.clone()?;
        let id = settings.replica_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "rail".into());
            format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
        });
        let address = settings
            .advertise_address
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", settings.port));
        Some(Self {
            id,
            address,
            redis_url,
            lease_ttl: Duration::from_millis(settings.lease_ttl_ms.max(1000)),
            forward_timeout: Duration::from_millis(settings.forward_timeout_ms.max(100)),
        })
    }
}

/// A branch this replica owns: its epoch, and until when (by this replica's clock, a safety
/// margin before the lease runs out) it may go on writing without a renewal.
#[derive(Debug, Clone, Copy)]
struct Owned {
    epoch: u64,
    until: Instant,
}

#[derive(Default)]
struct State {
    /// Every branch's lease, as last read.
    leases: HashMap<String, Lease>,
    /// The live replicas as last read from Redis; none while Redis cannot be read.
    members: Option<Vec<Member>>,
    owned: HashMap<String, Owned>,
    /// Branches being taken or handed over right now: served by nobody for a moment.
    moving: HashSet<String>,
}

/// Where a branch's commands go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This replica writes the branch.
    Here,
    /// Another replica does (or is about to), at this address.
    There(String),
    /// Nobody can take it right now.
    Nobody,
}

struct Inner {
    settings: ReplicaSettings,
    journal: Arc<PostgresJournal>,
    fences: Arc<Fences>,
    engine: Engine,
    redis: bb8::Pool<RedisConnectionManager>,
    client: redis::Client,
    state: Mutex<State>,
    /// Wakes placement before its tick (a lease let go, a replica leaving).
    nudge: Notify,
    /// Placement has run once: this replica knows what it owns.
    placed: AtomicBool,
    /// The relay's subscription is live.
    relay_up: AtomicBool,
    /// The replica is stopping: it takes nothing more.
    leaving: AtomicBool,
}

/// This replica's part in the chain. Cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

impl Cluster {
    /// Joins the chain: starts membership, placement and the relay. `relayed` are this
    /// replica's commits and what its screens acknowledged of branches written elsewhere (the
    /// engine's relay and acks), published for the others.
    pub async fn start(
        settings: ReplicaSettings,
        journal: Arc<PostgresJournal>,
        fences: Arc<Fences>,
        engine: Engine,
        relayed: (
            mpsc::UnboundedReceiver<Committed>,
            mpsc::UnboundedReceiver<Acknowledged>,
        ),
    ) -> anyhow::Result<Self> {
        let (commits, acks) = relayed;
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let manager = RedisConnectionManager::new(settings.redis_url.as_str())?;
        // Built without waiting for Redis: a replica starts (and serves what it owns) while
        // Redis is down, and the pool connects once it is back.
        let redis = bb8::Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_secs(1))
            .build_unchecked(manager);
        tracing::info!(replica = %settings.id, address = %settings.address, "joining the chain");
        let cluster = Self(Arc::new(Inner {
            settings,
            journal,
            fences,
            engine,
            redis,
            client,
            state: Mutex::new(State::default()),
            nudge: Notify::new(),
            placed: AtomicBool::new(false),
            relay_up: AtomicBool::new(false),
            leaving: AtomicBool::new(false),
        }));
        actix_web::rt::spawn(relay::publish(cluster.clone(), commits));
        actix_web::rt::spawn(relay::publish_acks(cluster.clone(), acks));
        actix_web::rt::spawn(relay::subscribe(cluster.clone()));
        actix_web::rt::spawn(relay::poll_heads(cluster.clone()));
        actix_web::rt::spawn(placement::run(cluster.clone()));
        Ok(cluster)
    }

    pub fn id(&self) -> &str {
        &self.0.settings.id
    }

    fn tick(&self) -> Duration {
        self.0.settings.lease_ttl / 5
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready once placement has run: the replica knows which branches it writes.
    pub fn ready(&self) -> bool {
        self.0.placed.load(Ordering::Acquire) && !self.0.leaving.load(Ordering::Acquire)
    }

    /// The branches this replica writes.
    pub fn owned(&self) -> Vec<String> {
        let mut owned: Vec<String> = self.state().owned.keys().cloned().collect();
        owned.sort();
        owned
    }

    /// Whether the relay's subscription is live.
    pub fn relay_up(&self) -> bool {
        self.0.relay_up.load(Ordering::Acquire)
    }

    /// Where a branch's commands go now, taking the branch here when it is free and this
    /// replica is the one placement picks.
    pub async fn route(&self, branch: &str) -> Route {
        let pick = {
            let state = self.state();
            if state.moving.contains(branch) {
                return Route::Nobody;
            }
            if state.owned.contains_key(branch) {
                return Route::Here;
            }
            if let Some(lease) = state.leases.get(branch) {
                if lease.live && lease.owner != self.id() {
                    return Route::There(lease.address.clone());
                }
            }
            placement::pick(branch, state.members.as_deref()).cloned()
        };
        match pick {
            Some(member) if member.id != self.id() => Route::There(member.address),
            _ if self.0.leaving.load(Ordering::Acquire) => Route::Nobody,
            _ => {
                self.take(branch).await;
                if self.state().owned.contains_key(branch) {
                    Route::Here
                } else {
                    self.refresh_leases().await;
                    Route::Nobody
                }
            }
        }
    }

    /// Reads every lease again (after an owner could not be reached).
    async fn refresh_leases(&self) {
        if let Ok(leases) = self.0.journal.leases().await {
            self.state().leases = leases.into_iter().map(|l| (l.branch.clone(), l)).collect();
        }
    }

    /// Leaves the chain: takes nothing more, and hands every branch it owns to the replicas
    /// that stay (each lease let go once the branch's commands in flight are done and its
    /// snapshot saved), instead of letting the leases run out.
    pub async fn leave(&self) {
        self.0.leaving.store(true, Ordering::Release);
        members::leave(self).await;
        let owned = self.owned();
        tracing::info!(
            branches = owned.len(),
            "handing branches over before stopping"
        );
        for branch in owned {
            placement::step_down(self, &branch, placement::StepDown::HandOff).await;
        }
    }
}
