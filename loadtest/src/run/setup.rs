//! Set-up: the chain configured on the engine (branches, stations, menu, tables), every
//! kitchen screen and waiter tablet connected and holding its snapshot before the first order
//! (each with the redial `loadtest soak` tells it to dial again by), and the run's book sized for the orders it will offer. With replicas, the set-up first
//! waits until every replica sees all the others, and after the configuration until every
//! branch has one owner that stays: the ownership the run starts from.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::chain::{self, Endpoint};
use super::link::Link;
use super::screen::{screen_task, ScreenId};
use super::tablet::tablet_task;
use super::{series_len, Counters, RunArgs, Shared};
use crate::auth::Tokens;
use crate::menu::Layout;
use crate::metrics::Recorder;
use crate::proto::{self, Socket, Topic};
use crate::server::Target;

/// Fires of an order at most (one a course).
const FIRES_AN_ORDER: usize = 2;
/// Tickets of an order on average (a fire makes one a station it cooks at, expo's included).
const TICKETS_AN_ORDER: usize = 5;

/// What the set-up leaves for the rush.
pub(super) struct SetUp {
    pub(super) layout: Layout,
    pub(super) http: reqwest::Client,
    pub(super) tokens: Tokens,
    /// The engine's processes (one, or each replica).
    pub(super) replicas: Vec<Endpoint>,
    /// Each branch's owner (replica index) once the chain settled; 0 for a single server.
    pub(super) owners: Vec<usize>,
    pub(super) devices: Devices,
}

/// A device's socket, subscribed: the socket, its snapshot's position, and the live tickets
/// it showed (a station's).
type Subscribed = (Socket, u64, Vec<String>);

/// Every screen and tablet, connected and subscribed, with the position of its snapshot.
pub(super) struct Devices {
    screens: Vec<(ScreenId, Link, Subscribed)>,
    tablets: Vec<(Link, Subscribed)>,
}

/// Configures the chain's branches, then opens every screen and tablet.
pub(super) async fn set_up(args: &RunArgs, target: &Target) -> anyhow::Result<SetUp> {
    let mut layout = Layout::new(args.branches, args.stations, args.tables);
    layout.unseen_after_seconds = args.unseen_after_seconds;
    // A pooled connection is dropped before the engine's keep-alive (5 s) closes it, rather
    // than reused as the engine closes it (a send that fails, or a 408 for a connection it gave
    // up on): at a moderate rate, or spread over replicas, connections wait that long between
    // two requests.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.request_timeout_ms))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(4))
        .build()?;
    let tokens = Tokens::new(
        &args.server.auth,
        &target.jwt_secret,
        Duration::from_secs(args.duration + args.drain_timeout),
    );
    let mut replicas = Vec::new();
    for node in &target.nodes {
        replicas.push(Endpoint {
            id: node.id.clone(),
            base: node.base.clone(),
            ws_url: node.ws_url.clone(),
            metrics: node.metrics.clone(),
            addr: proto::resolve(&node.ws_url).await?,
            up: AtomicBool::new(true),
            kills: AtomicU64::new(0),
        });
    }
    let owners = if replicas.len() > 1 {
        let urls: Vec<&str> = replicas.iter().map(|r| r.metrics.as_str()).collect();
        // Before the branches exist: each replica then places them knowing every member.
        chain::wait_members(&http, &urls, Duration::from_secs(30)).await?;
        layout.configure(&http, &target.base, &tokens).await?;
        let ttl = chain::lease_ttl(args);
        // Unchanged over two placement ticks (a fifth of the lease each).
        let hold = ttl * 2 / 5 + Duration::from_millis(200);
        let up: Vec<(&str, bool)> = urls.iter().map(|u| (*u, true)).collect();
        match chain::settle(&http, &up, &layout.branches, hold, ttl * 4 + Duration::from_secs(30))
            .await
        {
            Ok((owners, _)) => owners,
            Err(last) => anyhow::bail!(
                "the replicas did not settle who owns each branch: last reading (branch -> replica index) {:?}",
                layout.branches.iter().zip(last).collect::<Vec<_>>()
            ),
        }
    } else {
        layout.configure(&http, &target.base, &tokens).await?;
        vec![0; layout.branches.len()]
    };
    let devices = open_devices(args, &layout, &tokens, &replicas).await?;
    Ok(SetUp {
        layout,
        http,
        tokens,
        replicas,
        owners,
        devices,
    })
}

/// Every screen and tablet connects and has its snapshot before the first order.
async fn open_devices(
    args: &RunArgs,
    layout: &Layout,
    tokens: &Tokens,
    replicas: &[Endpoint],
) -> anyhow::Result<Devices> {
    let (screens, mut links) = links(args, layout, tokens, replicas.len(), replicas[0].addr);
    let limit = Duration::from_secs(30);
    let mut sockets: Vec<Subscribed> = futures_util::stream::iter(links.iter().map(|link| {
        let replica = &replicas[link.home];
        proto::connect_subscribed_with_tickets(
            &replica.ws_url,
            replica.addr,
            link.source,
            &link.token,
            &link.branch,
            &link.topic,
            limit,
        )
    }))
    .buffered(100)
    .collect::<Vec<anyhow::Result<Subscribed>>>()
    .await
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    let tablet_sockets = sockets.split_off(screens.len());
    let tablet_links = links.split_off(screens.len());
    Ok(Devices {
        screens: screens
            .into_iter()
            .zip(links)
            .zip(sockets)
            .map(|((id, link), socket)| (id, link, socket))
            .collect(),
        tablets: tablet_links.into_iter().zip(tablet_sockets).collect(),
    })
}

/// How each device connects, screens first (with their ids), each with its device's token:
/// `--screens-per-station` screens on every station of every branch, expo included, and a
/// tablet for every table (the counter and the takeaway included: their tills follow them).
/// Screen j goes to replica j % N, tablet i to replica i % N.
fn links(
    args: &RunArgs,
    layout: &Layout,
    tokens: &Tokens,
    replicas: usize,
    server_addr: SocketAddr,
) -> (Vec<ScreenId>, Vec<Link>) {
    let mut screens = Vec::new();
    let mut topics = Vec::new();
    for (b, branch) in layout.branches.iter().enumerate() {
        for (s, station) in layout.stations().enumerate() {
            for i in 0..args.screens_per_station {
                screens.push(ScreenId {
                    branch: b,
                    station: s,
                    index: i,
                });
                topics.push((branch, Topic::Station(station.to_owned())));
            }
        }
    }
    for branch in &layout.branches {
        for table in layout.all_tables() {
            topics.push((branch, Topic::Table(table.clone())));
        }
    }
    let per_address = args.server.sockets_per_address;
    let n_screens = screens.len();
    let links = topics
        .into_iter()
        .enumerate()
        .map(|(n, (branch, topic))| Link {
            token: tokens.socket(branch, &topic, n),
            branch: branch.clone(),
            topic,
            source: proto::source_address(&server_addr, n, per_address),
            // Screens count from 0, and so do tablets.
            home: if n < n_screens { n } else { n - n_screens } % replicas.max(1),
        })
        .collect();
    (screens, links)
}

/// The run's book, sized for the orders it will offer (with room for chance), so no map
/// grows, rehashing tens of thousands of entries under its lock, in the middle of the run: the
/// screens and waiters waiting on that lock would show it as engine latency.
pub(super) fn book(
    args: &RunArgs,
    layout: Layout,
    http: reqwest::Client,
    tokens: &Tokens,
    replicas: Vec<Endpoint>,
    owners: &[usize],
    t0: Instant,
) -> anyhow::Result<Shared> {
    let duration = Duration::from_secs(args.duration);
    let drain_limit = Duration::from_secs(args.drain_timeout);
    let orders = (args.orders_per_sec * args.duration as f64 * 1.25) as usize + 64;
    Ok(Shared {
        rec: Recorder::new(t0, series_len(args)),
        waiter_tokens: layout.branches.iter().map(|b| tokens.waiter(b)).collect(),
        manager_tokens: layout.branches.iter().map(|b| tokens.manager(b)).collect(),
        holds: Mutex::new(HashMap::new()),
        recalls: Mutex::new(HashMap::new()),
        voiding: Mutex::new(HashSet::new()),
        eighty_sixed: Mutex::new(vec![HashSet::new(); layout.branches.len()]),
        expo_screens: Mutex::new(vec![Vec::new(); layout.branches.len()]),
        layout,
        args: args.clone(),
        http,
        replicas,
        owners: owners.iter().map(|&o| AtomicUsize::new(o)).collect(),
        failing_over: Mutex::new(HashMap::new()),
        failovers: Mutex::new(Vec::new()),
        kills: AtomicU64::new(0),
        acked: Mutex::new(HashMap::with_capacity(orders)),
        since_kill: Mutex::new(None),
        back_after: Mutex::new(Vec::new()),
        run_tag: format!(
            "lt{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ),
        plans: Mutex::new(HashMap::with_capacity(orders)),
        fires: Mutex::new(HashMap::with_capacity(orders * FIRES_AN_ORDER)),
        tickets: Mutex::new(HashMap::with_capacity(orders * TICKETS_AN_ORDER)),
        waiters: Mutex::new(HashMap::new()),
        counts: Counters::default(),
        in_flight: AtomicUsize::new(0),
        http_slots: tokio::sync::Semaphore::new(args.max_http_in_flight.max(1)),
        completed: Mutex::new(HashMap::with_capacity(orders)),
        violations: Mutex::new(Vec::new()),
        ready_timeout: duration + drain_limit,
    })
}

/// One device's redial: told, the screen or tablet closes its socket and dials again, resuming
/// after the last position it saw (`loadtest soak`; nothing tells it in a run).
#[derive(Clone)]
pub(super) struct Redial {
    /// A kitchen screen (else a waiter tablet).
    pub(super) screen: bool,
    pub(super) now: Arc<Notify>,
}

impl Devices {
    /// Puts every screen and tablet to work on its socket, each in its own task; the tasks,
    /// and each device's redial (screens first).
    pub(super) fn spawn(
        self,
        shared: &Arc<Shared>,
        stop: &watch::Receiver<bool>,
    ) -> (Vec<JoinHandle<()>>, Vec<Redial>) {
        let mut tasks = Vec::new();
        let mut redials = Vec::new();
        for (id, link, subscribed) in self.screens {
            let redial = Arc::new(Notify::new());
            redials.push(Redial {
                screen: true,
                now: redial.clone(),
            });
            tasks.push(tokio::spawn(screen_task(
                shared.clone(),
                id,
                link,
                subscribed,
                redial,
                stop.clone(),
            )));
        }
        for (link, (ws, position, _)) in self.tablets {
            let redial = Arc::new(Notify::new());
            redials.push(Redial {
                screen: false,
                now: redial.clone(),
            });
            tasks.push(tokio::spawn(tablet_task(
                shared.clone(),
                link,
                ws,
                position,
                redial,
                stop.clone(),
            )));
        }
        (tasks, redials)
    }
}
