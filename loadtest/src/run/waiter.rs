//! A waiter's part: one task for each order, carrying it over REST from open to close (open,
//! add the lines, fire each course, wait for its ready notice on the table's tablet, serve,
//! close; or, at the counter, open, add and fire in one call) and noting what the engine
//! acknowledges of it; and the REST call itself, measured, with an Idempotency-Key, retried
//! through a kill or a replica shedding load. With replicas a waiter's calls go to its table's
//! tablet's replica (or the next one up while that one is down), and are measured as local or
//! forwarded by whether that replica owned the branch.
//!
//! The kitchen's surprises: an order refused `item_86` (an open, lines added, a fire) goes
//! again without the 86'd item (a held line of it is voided before the fire goes again); one
//! with nothing left is dropped (a one-call order) or closed empty. A planned void voids one
//! line before its course is fired, or once the fire is answered, while expo holds that fire
//! back until the void is answered; a planned recall tells the screens which ticket to recall
//! and holds expo back until the screen has bumped it again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{AckedOrder, Backoff, FireKey, FireTrack, Shared, TicketTrack};
use crate::plan::{Extra, LinePlan, OrderPlan};
use crate::proto::{LineBody, TicketBody};

/// The code of a refusal for an 86'd item: expected while a manager has an item 86'd.
const ITEM_86: &str = "item_86";

/// How often an order refused `item_86` is sent again (each time without the items 86'd then).
const ATTEMPTS_86: u32 = 6;

/// What the engine answers for an order, reduced.
#[derive(Deserialize)]
struct OrderAnswer {
    id: String,
    #[serde(default)]
    lines: Vec<LineBody>,
    #[serde(default)]
    tickets: Vec<TicketBody>,
}

/// The body of an error answer, reduced.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// Numbers the run's Idempotency-Keys.
static KEYS: AtomicU64 = AtomicU64::new(1);
/// Numbers the one-call orders' external references.
static REFS: AtomicU64 = AtomicU64::new(1);

/// A REST call that did not succeed.
enum Refused {
    /// Refused with a code the caller expected (counted as an expected refusal, not an error).
    Expected,
    /// Failed: counted as a failed command.
    Failed,
}

/// A REST call: who makes it, where, and what it sends.
struct Request<'a> {
    kind: &'static str,
    method: Method,
    branch: usize,
    /// The replica the device uses while it is up.
    home: usize,
    token: &'a str,
    path: &'a str,
    body: Option<Value>,
    /// Send an Idempotency-Key (when `--idempotency-keys`): every call but the 86s, which are
    /// idempotent as they are.
    keyed: bool,
    /// Refusal codes that are part of the workload.
    expect: &'a [&'a str],
}

impl Shared {
    /// A mutating REST call, measured; the answer's body on success. With chaos, a transport
    /// error, a timeout or a 503 is retried with the same body and Idempotency-Key until
    /// answered or `--retry-deadline` passes (with replicas a `503 owner_unavailable` always
    /// is); the latency counts from the first send. A refusal with an `expect`ed code is
    /// counted as an expected refusal.
    async fn request(&self, r: Request<'_>) -> Result<String, Refused> {
        let Request {
            kind,
            method,
            branch,
            home,
            token,
            path,
            body,
            keyed,
            expect,
        } = r;
        let key = (keyed && self.args.idempotency_keys).then(|| {
            let n = KEYS.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n}", self.run_tag)
        });
        // From when the waiter wants to send: a request queued behind the cap below is late,
        // and that lateness counts.
        let sent = Instant::now();
        let deadline = sent + Duration::from_secs(self.args.retry_deadline);
        let mut backoff = Backoff::new();
        let mut attempts = 0u32;
        let (status, text, replica, attempt_sent) = loop {
            attempts += 1;
            let replica = self.live_replica(home);
            let url = format!("{}{path}", self.replicas[replica].base);
            let attempt_sent = Instant::now();
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token);
            if let Some(body) = &body {
                req = req.json(body);
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", key);
            }
            let answer = {
                let Ok(_permit) = self.http_slots.acquire().await else {
                    return Err(Refused::Failed);
                };
                match req.send().await {
                    Ok(res) => {
                        let status = res.status();
                        res.text().await.map(|text| (status, text))
                    }
                    Err(e) => Err(e),
                }
            };
            let retry = match &answer {
                Ok((status, _)) => *status == reqwest::StatusCode::SERVICE_UNAVAILABLE,
                Err(_) => true,
            };
            // A replica shedding load refuses new orders first; a command on an order it
            // took is sent again, as a tablet would, and its latency keeps counting.
            let shed = matches!(&answer, Ok((status, text))
                if *status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && text.contains(r#""overloaded""#));
            // Nothing was done (or, timed out forwarding, it is safe to retry with the key).
            let no_owner = self.replicated()
                && matches!(&answer, Ok((status, text))
                    if *status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                        && text.contains(r#""owner_unavailable""#));
            // A `408` is the server's answer to a connection whose first request it did not
            // receive in time (a pooled connection reused as the server gave up on it): the
            // request was never read.
            let unread = matches!(&answer, Ok((status, _))
                if *status == reqwest::StatusCode::REQUEST_TIMEOUT);
            let opens = kind == "open" || kind == "one_call";
            let again = (self.chaos() && (retry || unread))
                || (shed && !opens)
                || no_owner
                || (self.replicated() && unread);
            if again && Instant::now() + backoff.peek() < deadline {
                self.counts.rest_retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff.wait()).await;
                continue;
            }
            if attempts > 1 {
                self.counts.rest_retried.fetch_add(1, Ordering::Relaxed);
            }
            match answer {
                Ok((status, text)) => break (status, text, replica, attempt_sent),
                Err(e) => {
                    let code = if e.is_timeout() {
                        "timeout"
                    } else {
                        "transport"
                    };
                    self.rec.error(kind, code, || {
                        format!("{path}: {e} (after {attempts} attempt(s))")
                    });
                    return Err(Refused::Failed);
                }
            }
        };
        if status.is_success() {
            self.rec.ack(kind, sent.elapsed());
            if self.replicated() {
                self.rec
                    .command_path(self.owns(replica, branch), sent.elapsed());
            }
            self.answered(branch, attempt_sent);
            if attempts > 1 {
                self.rec.retried(sent.elapsed());
            }
            return Ok(text);
        }
        match serde_json::from_str::<ErrorAnswer>(&text) {
            Ok(e) if expect.contains(&e.error.code.as_str()) => {
                self.rec.refused(kind, &e.error.code);
                return Err(Refused::Expected);
            }
            Ok(e) => self.rec.error(kind, &e.error.code, || {
                format!("{path}: {status} {}", e.error.message)
            }),
            Err(_) => self
                .rec
                .error(kind, &format!("http_{}", status.as_u16()), || {
                    format!("{path}: {}", text.chars().take(200).collect::<String>())
                }),
        }
        Err(Refused::Failed)
    }

    /// A REST call by the waiter of an order, from its table's tablet.
    async fn call(
        &self,
        kind: &'static str,
        plan: &OrderPlan,
        path: &str,
        body: Option<Value>,
        expect: &[&str],
    ) -> Result<String, Refused> {
        // The replica of the table's tablet (waiter tablet i on replica i % N, tablets
        // numbered branch by branch over every table, counter and takeaway included).
        let home = (plan.branch * self.layout.table_count() + plan.table) % self.replicas.len();
        self.request(Request {
            kind,
            method: Method::POST,
            branch: plan.branch,
            home,
            token: &self.waiter_tokens[plan.branch],
            path,
            body,
            keyed: true,
            expect,
        })
        .await
    }

    /// A manager's call on `branch` (an 86, a restore): whether it succeeded.
    pub(super) async fn manage(
        &self,
        kind: &'static str,
        method: Method,
        branch: usize,
        path: &str,
    ) -> bool {
        self.request(Request {
            kind,
            method,
            branch,
            home: branch % self.replicas.len(),
            token: &self.manager_tokens[branch],
            path,
            body: None,
            keyed: false,
            expect: &[],
        })
        .await
        .is_ok()
    }
}

/// One order, from open to close.
pub(super) async fn order_task(shared: Arc<Shared>, plan: Arc<OrderPlan>) {
    let opened_at = Instant::now();
    let outcome = order_steps(&shared, &plan).await;
    let c = &shared.counts;
    match outcome {
        Ok(Done::Completed) => {
            c.orders_completed.fetch_add(1, Ordering::Relaxed);
            shared.rec.order_completed(opened_at.elapsed());
        }
        Ok(Done::Dropped) => {
            c.orders_dropped_86.fetch_add(1, Ordering::Relaxed);
        }
        Err(Unfinished::Failed) => {
            c.orders_failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(Unfinished::Stalled) => {
            c.orders_stalled.fetch_add(1, Ordering::Relaxed);
        }
    }
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
}

/// How an order ended well.
enum Done {
    /// Opened, cooked, served and closed.
    Completed,
    /// Never opened: every item it held was 86'd (a one-call order).
    Dropped,
}

/// Why an order did not complete.
enum Unfinished {
    /// A command was not answered with success, or its answer could not be read.
    Failed,
    /// A fire's ready notice did not reach the table in time.
    Stalled,
}

/// The waiter's steps: open, add the lines, then each course fired, awaited and served; close.
/// At the counter: open with the lines and the fire in one call, await, serve, close.
async fn order_steps(shared: &Shared, plan: &Arc<OrderPlan>) -> Result<Done, Unfinished> {
    let waiter = if plan.one_call {
        let Some((mut waiter, fire)) = open_in_one_call(shared, plan).await? else {
            return Ok(Done::Dropped);
        };
        let ready = waiter.after_fire(fire).await?;
        waiter.serve(ready).await?;
        waiter
    } else {
        let mut waiter = open(shared, plan).await?;
        waiter.add_lines().await?;
        let mut served = false;
        for course in 1..=plan.courses {
            if served {
                tokio::time::sleep(plan.course_gap).await;
            }
            // A course whose every line was 86'd has nothing to fire.
            if let Some(ready) = waiter.fire_course(course).await? {
                waiter.serve(ready).await?;
                served = true;
            }
        }
        waiter
    };
    waiter.close().await?;
    Ok(Done::Completed)
}

/// A line of the order as the engine numbered it, and what became of it.
struct OrderLine {
    id: u64,
    plan: LinePlan,
    fired: bool,
    voided: bool,
}

/// A fire the engine answered, that the waiter now follows to its ready notice.
struct Fired {
    key: FireKey,
    course: u8,
    /// The lines it fired.
    lines: Vec<u64>,
    /// Expo holds it back for this waiter's void after the fire.
    held_back: bool,
    ready: oneshot::Receiver<Vec<u64>>,
}

/// Why a line is voided.
#[derive(Clone, Copy, PartialEq, Eq)]
enum VoidOf {
    /// The plan's void, before its course is fired.
    BeforeFire,
    /// The plan's void, once its course's fire is answered.
    AfterFire,
    /// A held line whose item is 86'd: the fire was refused for it.
    EightySixed,
}

/// The waiter of one order the engine opened.
struct Waiter<'a> {
    shared: &'a Shared,
    plan: &'a OrderPlan,
    id: String,
    /// `/api/v1/branches/{branch}/orders/{id}`.
    path: String,
    lines: Vec<OrderLine>,
    /// Fires the engine answered.
    fires: u32,
}

/// Opens the order at its table; from then on the run follows what the engine acknowledges
/// of it.
async fn open<'a>(shared: &'a Shared, plan: &'a Arc<OrderPlan>) -> Result<Waiter<'a>, Unfinished> {
    let orders = orders_path(shared, plan);
    let table = shared.layout.table(plan.table);
    let Ok(body) = shared
        .call(
            "open",
            plan,
            &orders,
            Some(json!({"table": table, "guests": plan.guests})),
            &[],
        )
        .await
    else {
        shared
            .counts
            .opens_unanswered
            .fetch_add(1, Ordering::Relaxed);
        return Err(Unfinished::Failed);
    };
    let Some(order) = read_answer(shared, &body) else {
        return Err(Unfinished::Failed);
    };
    Ok(Waiter::opened(shared, plan, order.id, Vec::new(), false))
}

/// `/api/v1/branches/{branch}/orders`.
fn orders_path(shared: &Shared, plan: &OrderPlan) -> String {
    format!(
        "/api/v1/branches/{}/orders",
        shared.layout.branches[plan.branch]
    )
}

/// An order answer, or None (counted) when it cannot be read.
fn read_answer(shared: &Shared, body: &str) -> Option<OrderAnswer> {
    match serde_json::from_str::<OrderAnswer>(body) {
        Ok(a) => Some(a),
        Err(_) => {
            shared
                .rec
                .incident("unreadable_answer", || body.chars().take(300).collect());
            None
        }
    }
}

/// The lines as `POST .../lines` (and a one-call open) takes them.
fn lines_json(shared: &Shared, lines: &[LinePlan]) -> Vec<Value> {
    let layout = &shared.layout;
    lines
        .iter()
        .map(|l| {
            json!({
                "item": layout.items[l.item].id,
                "quantity": l.quantity,
                "modifiers": l.modifiers,
                "seat": l.seat,
                "course": l.course,
            })
        })
        .collect()
}

/// The engine's numbers for the lines it added: the answer's lines after those it had.
fn numbered(answer: &OrderAnswer, had: usize, lines: &[LinePlan]) -> Vec<OrderLine> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| OrderLine {
            id: answer
                .lines
                .get(had + i)
                .map_or((had + i + 1) as u64, |a| a.id),
            plan: l.clone(),
            fired: false,
            voided: false,
        })
        .collect()
}

impl Shared {
    /// After a refusal for an 86'd item: the lines less those of items 86'd now. When none is
    /// (the item was put back since), a short pause before the same lines go again.
    async fn without_86(&self, branch: usize, lines: &mut Vec<LinePlan>) {
        let before = lines.len();
        lines.retain(|l| !self.is_86(branch, l.item));
        if lines.len() == before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Opens a counter's order in one call: its lines, fired at once. The waiter and the fire to
/// follow; None when every item it held was 86'd.
async fn open_in_one_call<'a>(
    shared: &'a Shared,
    plan: &'a Arc<OrderPlan>,
) -> Result<Option<(Waiter<'a>, Fired)>, Unfinished> {
    let orders = orders_path(shared, plan);
    let table = shared.layout.table(plan.table);
    // The counter's till numbers its orders; a repeat of the same reference is the same order.
    let external_ref = format!(
        "{}-{}",
        shared.run_tag,
        REFS.fetch_add(1, Ordering::Relaxed)
    );
    let mut lines = plan.lines.clone();
    for _ in 0..ATTEMPTS_86 {
        if lines.is_empty() {
            return Ok(None);
        }
        let sent = Instant::now();
        let body = json!({
            "table": table,
            "guests": plan.guests,
            "external_ref": external_ref,
            "lines": lines_json(shared, &lines),
            "fire": {},
        });
        let text = match shared
            .call("one_call", plan, &orders, Some(body), &[ITEM_86])
            .await
        {
            Ok(text) => text,
            Err(Refused::Expected) => {
                shared
                    .counts
                    .refused_86_retried
                    .fetch_add(1, Ordering::Relaxed);
                shared.without_86(plan.branch, &mut lines).await;
                continue;
            }
            Err(Refused::Failed) => {
                shared
                    .counts
                    .opens_unanswered
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Unfinished::Failed);
            }
        };
        let acked = Instant::now();
        let Some(answer) = read_answer(shared, &text) else {
            return Err(Unfinished::Failed);
        };
        shared
            .counts
            .one_call_orders
            .fetch_add(1, Ordering::Relaxed);
        let numbered = numbered(&answer, 0, &lines);
        let mut waiter = Waiter::opened(shared, plan, answer.id.clone(), lines.clone(), true);
        shared
            .counts
            .lines_added
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        waiter.lines = numbered;
        for l in &mut waiter.lines {
            l.fired = true;
        }
        let key: FireKey = (waiter.id.clone(), 1);
        let fired_lines: Vec<u64> = waiter.lines.iter().map(|l| l.id).collect();
        // Expo sends a fire only once its waiter knows it: the ready notice has its waiter
        // and the hold is in place before the fire is known.
        let (ready_tx, ready_rx) = oneshot::channel();
        shared
            .waiters
            .lock()
            .expect("lock")
            .insert(key.clone(), ready_tx);
        let held_back = waiter.hold_back(1, &key, &waiter.held_lines_of(&fired_lines));
        shared.fires.lock().expect("lock").insert(
            key.clone(),
            FireTrack {
                sent,
                acked: None,
                expo_bump_sent: None,
                expo_acked: false,
                ready_seen: false,
            },
        );
        waiter.fires = 1;
        shared.update_acked(&waiter.id, |o| o.fires_sent = 1);
        waiter.fired(&answer, 1, acked);
        shared.tell_expo(&key, plan.branch);
        return Ok(Some((
            waiter,
            Fired {
                key,
                course: 1,
                lines: fired_lines,
                held_back,
                ready: ready_rx,
            },
        )));
    }
    shared.rec.incident("item_86_retries", || {
        format!("{orders}: still refused item_86 after {ATTEMPTS_86} attempts")
    });
    Err(Unfinished::Failed)
}

impl<'a> Waiter<'a> {
    /// The order the engine acknowledged opening: the run follows it from now on.
    fn opened(
        shared: &'a Shared,
        plan: &'a Arc<OrderPlan>,
        id: String,
        lines: Vec<LinePlan>,
        one_call: bool,
    ) -> Self {
        shared.counts.orders_opened.fetch_add(1, Ordering::Relaxed);
        shared.rec.order_started();
        shared
            .plans
            .lock()
            .expect("lock")
            .insert(id.clone(), plan.clone());
        shared.acked.lock().expect("lock").insert(
            id.clone(),
            AckedOrder {
                plan: plan.clone(),
                lines_acked: one_call,
                lines,
                voided: Vec::new(),
                fires_sent: 0,
                fires_acked: 0,
                tickets: Vec::new(),
                served: Vec::new(),
                closed: false,
            },
        );
        Waiter {
            shared,
            plan,
            path: format!("{}/{id}", orders_path(shared, plan)),
            id,
            lines: Vec::new(),
            fires: 0,
        }
    }
}

impl Waiter<'_> {
    /// A REST command on the order (`{path}/{step}`): the answer's body, or why not.
    async fn command(
        &self,
        kind: &'static str,
        step: &str,
        body: Option<Value>,
        expect: &[&str],
    ) -> Result<String, Refused> {
        self.shared
            .call(
                kind,
                self.plan,
                &format!("{}/{step}", self.path),
                body,
                expect,
            )
            .await
    }

    /// Adds all the order's lines in one call (less the items 86'd, when refused for one).
    async fn add_lines(&mut self) -> Result<(), Unfinished> {
        let shared = self.shared;
        let mut lines = self.plan.lines.clone();
        for _ in 0..ATTEMPTS_86 {
            if lines.is_empty() {
                // Every item 86'd: nothing to cook, the check closes empty.
                return Ok(());
            }
            shared.update_acked(&self.id, |o| o.lines = lines.clone());
            let body = json!({ "lines": lines_json(shared, &lines) });
            match self
                .command("add_lines", "lines", Some(body), &[ITEM_86])
                .await
            {
                Ok(text) => {
                    let Some(answer) = read_answer(shared, &text) else {
                        return Err(Unfinished::Failed);
                    };
                    self.lines = numbered(&answer, 0, &lines);
                    shared.update_acked(&self.id, |o| o.lines_acked = true);
                    shared
                        .counts
                        .lines_added
                        .fetch_add(lines.len() as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(Refused::Expected) => {
                    shared
                        .counts
                        .refused_86_retried
                        .fetch_add(1, Ordering::Relaxed);
                    shared.without_86(self.plan.branch, &mut lines).await;
                }
                Err(Refused::Failed) => return Err(Unfinished::Failed),
            }
        }
        shared.rec.incident("item_86_retries", || {
            format!(
                "order {}: lines still refused item_86 after {ATTEMPTS_86} attempts",
                self.id
            )
        });
        Err(Unfinished::Failed)
    }

    /// The held lines of a course, by id.
    fn held(&self, course: u8) -> Vec<u64> {
        self.lines
            .iter()
            .filter(|l| l.plan.course == course && !l.fired && !l.voided)
            .map(|l| l.id)
            .collect()
    }

    /// The order's lines of these ids.
    fn held_lines_of(&self, ids: &[u64]) -> Vec<&OrderLine> {
        self.lines.iter().filter(|l| ids.contains(&l.id)).collect()
    }

    /// Before a fire of `course` goes (or, in one call, before it is known): holds expo back
    /// for the plan's void after the fire, or for its recall (naming the station to recall
    /// at). Whether expo is held back.
    fn hold_back(&self, course: u8, key: &FireKey, lines: &[&OrderLine]) -> bool {
        let shared = self.shared;
        match self.plan.extra {
            Extra::VoidAfterFire { course: c, .. } if c == course && lines.len() >= 2 => {
                shared.voiding.lock().expect("lock").insert(self.id.clone());
                shared.hold(key);
                true
            }
            Extra::Recall { course: c, pick } if c == course => {
                let mut stations: Vec<usize> = lines
                    .iter()
                    .flat_map(|l| shared.layout.items[l.plan.item].stations.iter().copied())
                    .collect();
                stations.sort_unstable();
                stations.dedup();
                let Some(&station) = stations.get(pick as usize % stations.len().max(1)) else {
                    return false;
                };
                shared
                    .recalls
                    .lock()
                    .expect("lock")
                    .insert(key.clone(), station);
                shared.hold(key);
                true
            }
            _ => false,
        }
    }

    /// Fires a course (after the plan's void before it, if any) and waits for its ready
    /// notice on the table's tablet: the lines to serve; None when the course has nothing to
    /// fire (every line of it 86'd). A fire refused for an 86'd item goes again once the held
    /// lines of that item are voided.
    async fn fire_course(&mut self, course: u8) -> Result<Option<Vec<u64>>, Unfinished> {
        let shared = self.shared;
        if let Extra::VoidBeforeFire { course: c, pick } = self.plan.extra {
            let held = self.held(course);
            if c == course && held.len() >= 2 {
                let line = held[pick as usize % held.len()];
                self.void(line, VoidOf::BeforeFire).await?;
            }
        }
        for _ in 0..ATTEMPTS_86 {
            let held = self.held(course);
            if held.is_empty() {
                return Ok(None);
            }
            let fire_no = self.fires + 1;
            let key: FireKey = (self.id.clone(), fire_no);
            let (ready_tx, ready_rx) = oneshot::channel();
            shared
                .waiters
                .lock()
                .expect("lock")
                .insert(key.clone(), ready_tx);
            let held_back = self.hold_back(course, &key, &self.held_lines_of(&held));
            shared.fires.lock().expect("lock").insert(
                key.clone(),
                FireTrack {
                    sent: Instant::now(),
                    acked: None,
                    expo_bump_sent: None,
                    expo_acked: false,
                    ready_seen: false,
                },
            );
            shared.update_acked(&self.id, |o| o.fires_sent += 1);
            let answer = self
                .command(
                    "fire",
                    "fire",
                    Some(json!({ "course": course })),
                    &[ITEM_86],
                )
                .await;
            let acked = Instant::now();
            let text = match answer {
                Ok(text) => text,
                Err(refused) => {
                    shared.waiters.lock().expect("lock").remove(&key);
                    if held_back {
                        shared.recalls.lock().expect("lock").remove(&key);
                        shared.release(&key, self.plan.branch);
                    }
                    match refused {
                        Refused::Expected => {
                            shared
                                .counts
                                .refused_86_retried
                                .fetch_add(1, Ordering::Relaxed);
                            self.void_86(course).await?;
                            continue;
                        }
                        Refused::Failed => return Err(Unfinished::Failed),
                    }
                }
            };
            let Some(answer) = read_answer(shared, &text) else {
                return Err(Unfinished::Failed);
            };
            self.fires = fire_no;
            for l in self.lines.iter_mut().filter(|l| held.contains(&l.id)) {
                l.fired = true;
            }
            self.fired(&answer, fire_no, acked);
            let fire = Fired {
                key,
                course,
                lines: held,
                held_back,
                ready: ready_rx,
            };
            return self.after_fire(fire).await.map(Some);
        }
        shared.rec.incident("item_86_retries", || {
            format!(
                "order {} course {course}: fire still refused item_86 after {ATTEMPTS_86} attempts",
                self.id
            )
        });
        Err(Unfinished::Failed)
    }

    /// A fire was refused for an 86'd item: the held lines of the course with an item 86'd
    /// now are voided (none: the item is back, and the fire goes again after a pause).
    async fn void_86(&mut self, course: u8) -> Result<(), Unfinished> {
        let branch = self.plan.branch;
        let out: Vec<u64> = self
            .lines
            .iter()
            .filter(|l| l.plan.course == course && !l.fired && !l.voided)
            .filter(|l| self.shared.is_86(branch, l.plan.item))
            .map(|l| l.id)
            .collect();
        if out.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for line in out {
            self.void(line, VoidOf::EightySixed).await?;
        }
        Ok(())
    }

    /// Voids a line. After its fire, the void's answer says which tickets held the line: each
    /// screen of their stations is to get `line_voided`, and `ticket_voided` for a ticket left
    /// with no line.
    async fn void(&mut self, line: u64, of: VoidOf) -> Result<(), Unfinished> {
        let shared = self.shared;
        let reason = match of {
            VoidOf::EightySixed => "86'd",
            VoidOf::BeforeFire | VoidOf::AfterFire => "guest changed their mind",
        };
        let text = self
            .command(
                "void",
                &format!("lines/{line}/void"),
                Some(json!({ "reason": reason })),
                &[],
            )
            .await
            .map_err(|_| Unfinished::Failed)?;
        if let Some(l) = self.lines.iter_mut().find(|l| l.id == line) {
            l.voided = true;
        }
        shared.update_acked(&self.id, |o| o.voided.push(line));
        let c = &shared.counts;
        match of {
            VoidOf::BeforeFire => c.voids_before_fire.fetch_add(1, Ordering::Relaxed),
            VoidOf::AfterFire => c.voids_after_fire.fetch_add(1, Ordering::Relaxed),
            VoidOf::EightySixed => c.voids_86.fetch_add(1, Ordering::Relaxed),
        };
        if of != VoidOf::AfterFire {
            return Ok(());
        }
        let Some(answer) = read_answer(shared, &text) else {
            return Err(Unfinished::Failed);
        };
        let mut tickets = shared.tickets.lock().expect("lock");
        for t in answer
            .tickets
            .iter()
            .filter(|t| t.lines.iter().any(|l| l.line_id == line))
        {
            let station = shared
                .layout
                .station_index(&t.station)
                .unwrap_or(usize::MAX);
            let track = tickets.entry(t.id.clone()).or_insert_with(|| {
                TicketTrack::new(self.id.clone(), t.fire_no, self.plan.branch, station)
            });
            track.void_expected = true;
            if t.status == "voided" {
                track.voided_expected = true;
                c.tickets_voided.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Notes the tickets of a fire's answer: acknowledged on the order, and awaited on their
    /// station's screens with their lines. A ticket already on every screen (before the fire
    /// was known: a one-call order) has its latency recorded now.
    fn fired(&self, answer: &OrderAnswer, fire_no: u32, acked: Instant) {
        let (shared, id) = (self.shared, &self.id);
        let fired: Vec<&TicketBody> = answer
            .tickets
            .iter()
            .filter(|t| t.fire_no == fire_no)
            .collect();
        if fired.is_empty() {
            shared.violation(format!(
                "order {id}: the answer to fire {fire_no} holds no ticket of it"
            ));
        }
        shared.update_acked(id, |o| {
            o.fires_acked += 1;
            o.tickets.extend(fired.iter().map(|t| t.id.clone()));
        });
        shared.counts.fires.fetch_add(1, Ordering::Relaxed);
        shared
            .counts
            .tickets_fired
            .fetch_add(fired.len() as u64, Ordering::Relaxed);
        // The fire first, then its tickets: the order a screen completing a ticket takes them.
        let mut fires = shared.fires.lock().expect("lock");
        let sent = fires.get_mut(&(id.clone(), fire_no)).map(|f| {
            f.acked = Some(acked);
            f.sent
        });
        let mut tickets = shared.tickets.lock().expect("lock");
        for t in &fired {
            let station = shared
                .layout
                .station_index(&t.station)
                .unwrap_or(usize::MAX);
            let track = tickets.entry(t.id.clone()).or_insert_with(|| {
                TicketTrack::new(id.clone(), fire_no, self.plan.branch, station)
            });
            track.confirmed_lines = Some(t.lines.len());
            if let (Some(sent), Some(done), false) =
                (sent, track.completed_at, track.latency_recorded)
            {
                track.latency_recorded = true;
                shared
                    .rec
                    .fire_to_screen(done.saturating_duration_since(sent), Duration::ZERO);
                shared
                    .counts
                    .screens_before_ack
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// After a fire is answered: the plan's void after it (expo held back until it is
    /// answered), then the ready notice on the table's tablet.
    async fn after_fire(&mut self, fire: Fired) -> Result<Vec<u64>, Unfinished> {
        let Fired {
            key,
            course,
            lines,
            held_back,
            ready,
        } = fire;
        if let (Extra::VoidAfterFire { course: c, pick }, true) = (self.plan.extra, held_back) {
            let voided = if c == course && lines.len() >= 2 {
                let line = lines[pick as usize % lines.len()];
                self.void(line, VoidOf::AfterFire).await
            } else {
                Ok(())
            };
            self.shared.release(&key, self.plan.branch);
            voided?;
        }
        self.ready(key, ready).await
    }

    /// The waiter's tablet hears when expo sends the fire: the ready lines, or Stalled when no
    /// notice comes in time.
    async fn ready(
        &self,
        key: FireKey,
        ready: oneshot::Receiver<Vec<u64>>,
    ) -> Result<Vec<u64>, Unfinished> {
        if let Ok(Ok(lines)) = tokio::time::timeout(self.shared.ready_timeout, ready).await {
            return Ok(lines);
        }
        self.shared.waiters.lock().expect("lock").remove(&key);
        let table = self.shared.layout.table(self.plan.table);
        let (id, fire_no) = &key;
        self.shared.rec.incident("no_ready_notice", || {
            format!("order {id} fire {fire_no}: no order_ready reached table {table}")
        });
        Err(Unfinished::Stalled)
    }

    /// Serves the lines a ready notice named.
    async fn serve(&self, lines: Vec<u64>) -> Result<(), Unfinished> {
        self.command("serve", "serve", Some(json!({ "lines": lines })), &[])
            .await
            .map_err(|_| Unfinished::Failed)?;
        self.shared
            .update_acked(&self.id, |o| o.served.extend(&lines));
        Ok(())
    }

    /// Closes the check: the order is complete.
    async fn close(self) -> Result<(), Unfinished> {
        let shared = self.shared;
        self.command("close", "close", None, &[])
            .await
            .map_err(|_| Unfinished::Failed)?;
        shared.update_acked(&self.id, |o| o.closed = true);
        shared.plans.lock().expect("lock").remove(&self.id);
        shared
            .completed
            .lock()
            .expect("lock")
            .insert(self.id, Instant::now());
        Ok(())
    }
}
