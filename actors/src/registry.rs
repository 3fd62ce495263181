//! BranchRegistry and the Engine: where branches live, and how the edge reaches them.
//!
//! The registry runs one branch actor per configured branch, recovered from the journal before
//! the engine reports ready, and passes the journal's commit feed to each branch in order.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::branch::{
    recover, BranchActor, BranchCommitted, BranchInfo, Configure, RecoveredBranch, SNAPSHOT_EVERY,
};
use crate::error::CommandError;
use crate::ids::BranchId;
use crate::journal::{CommitFeed, Committed, Journal};
use crate::menu::BranchConfig;

/// Finds the actor of a configured branch.
#[derive(Message)]
#[rtype(result = "Result<Addr<BranchActor>, CommandError>")]
pub struct LocateBranch(pub BranchId);

/// Configures a branch, creating it when it is new.
#[derive(Message)]
#[rtype(result = "Result<BranchInfo, CommandError>")]
pub struct ConfigureBranch {
    pub branch: BranchId,
    pub config: BranchConfig,
}

/// Takes over a branch recovered from the journal.
#[derive(Message)]
#[rtype(result = "()")]
struct AdoptBranch(BranchId, RecoveredBranch);

/// Events the journal committed, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
struct FeedCommitted(Committed);

/// How the engine runs its branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Events a branch commits between two snapshots of itself: recovery reads the latest
    /// snapshot and at most about this many events after it.
    pub snapshot_every: u64,
    /// Threads the branches are spread over, each branch with all its table and station
    /// actors on one of them; 0 runs them on the thread that starts the engine.
    pub threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            snapshot_every: SNAPSHOT_EVERY,
            threads: 0,
        }
    }
}

/// The branches this process runs.
pub struct BranchRegistry {
    journal: Arc<dyn Journal>,
    branches: HashMap<BranchId, Addr<BranchActor>>,
    options: EngineOptions,
    /// The threads branches run on (none: the registry's own).
    arbiters: Vec<Arbiter>,
    /// Branches started so far, which picks the next branch's thread.
    started: usize,
}

impl Drop for BranchRegistry {
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl Actor for BranchRegistry {
    type Context = Context<Self>;
}

impl BranchRegistry {
    fn start_branch(&mut self, id: BranchId, recovered: RecoveredBranch) -> Addr<BranchActor> {
        let (journal, every) = (self.journal.clone(), self.options.snapshot_every);
        let branch = id.clone();
        let make =
            move |_: &mut Context<BranchActor>| BranchActor::new(branch, journal, recovered, every);
        let addr = match self.arbiters.get(self.started % self.arbiters.len().max(1)) {
            Some(arbiter) => BranchActor::start_in_arbiter(&arbiter.handle(), make),
            None => BranchActor::create(make),
        };
        self.started += 1;
        self.branches.insert(id, addr.clone());
        addr
    }
}

impl Handler<LocateBranch> for BranchRegistry {
    type Result = Result<Addr<BranchActor>, CommandError>;

    fn handle(&mut self, msg: LocateBranch, _: &mut Context<Self>) -> Self::Result {
        self.branches
            .get(&msg.0)
            .cloned()
            .ok_or_else(|| CommandError::UnknownBranch(msg.0.to_string()))
    }
}

impl Handler<ConfigureBranch> for BranchRegistry {
    type Result = ResponseFuture<Result<BranchInfo, CommandError>>;

    fn handle(&mut self, msg: ConfigureBranch, _: &mut Context<Self>) -> Self::Result {
        if let Err(e) = msg.config.validate() {
            return Box::pin(async move { Err(e) });
        }
        let addr = match self.branches.get(&msg.branch) {
            Some(addr) => addr.clone(),
            None => self.start_branch(msg.branch, RecoveredBranch::default()),
        };
        Box::pin(async move {
            addr.send(Configure(msg.config))
                .await
                .map_err(|_| CommandError::JournalUnavailable)?
        })
    }
}

impl Handler<AdoptBranch> for BranchRegistry {
    type Result = ();

    fn handle(&mut self, msg: AdoptBranch, _: &mut Context<Self>) {
        self.start_branch(msg.0, msg.1);
    }
}

impl Handler<FeedCommitted> for BranchRegistry {
    type Result = ();

    fn handle(&mut self, msg: FeedCommitted, _: &mut Context<Self>) {
        let Some(first) = msg.0.first() else { return };
        let Ok(branch) = BranchId::parse(first.branch.clone()) else {
            return;
        };
        let Some(addr) = self.branches.get(&branch) else {
            return;
        };
        // Decoded by the branch, on its own thread.
        addr.do_send(BranchCommitted(msg.0));
    }
}

/// The running domain: what the edge talks to.
#[derive(Clone)]
pub struct Engine {
    registry: Addr<BranchRegistry>,
    journal: Arc<dyn Journal>,
}

fn gone(_: MailboxError) -> CommandError {
    CommandError::JournalUnavailable
}

impl Engine {
    /// Recovers every branch from the journal and starts its actors. Call inside an actix
    /// system; the engine is ready when this returns.
    pub async fn start(
        journal: Arc<dyn Journal>,
        mut feed: CommitFeed,
        options: EngineOptions,
    ) -> Result<Self, String> {
        let registry = BranchRegistry {
            journal: journal.clone(),
            branches: HashMap::new(),
            options,
            arbiters: (0..options.threads).map(|_| Arbiter::new()).collect(),
            started: 0,
        }
        .start();
        let branches = journal.branches().await.map_err(|e| e.to_string())?;
        for id in branches {
            let id = BranchId::parse(id).map_err(|e| e.to_string())?;
            let recovered = recover(journal.as_ref(), &id).await?;
            tracing::info!(
                branch = %id,
                open_orders = recovered.orders.len(),
                snapshot_position = recovered.snapshot_position,
                position = recovered.position,
                "branch recovered"
            );
            registry
                .send(AdoptBranch(id, recovered))
                .await
                .map_err(|e| e.to_string())?;
        }
        let feed_registry = registry.clone();
        actix::spawn(async move {
            while let Some(committed) = feed.recv().await {
                feed_registry.do_send(FeedCommitted(committed));
            }
        });
        Ok(Self { registry, journal })
    }

    /// The actor of a configured branch.
    pub async fn branch(&self, id: &BranchId) -> Result<Addr<BranchActor>, CommandError> {
        self.registry
            .send(LocateBranch(id.clone()))
            .await
            .map_err(gone)?
    }

    /// Sends a message to a branch and waits for its answer.
    pub async fn ask<M>(&self, id: &BranchId, msg: M) -> Result<M::Result, CommandError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        BranchActor: Handler<M>,
    {
        self.branch(id).await?.send(msg).await.map_err(gone)
    }

    pub async fn configure(
        &self,
        branch: BranchId,
        config: BranchConfig,
    ) -> Result<BranchInfo, CommandError> {
        self.registry
            .send(ConfigureBranch { branch, config })
            .await
            .map_err(gone)?
    }

    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.journal
    }
}
