//! A waiter's part: one task for each order, carrying it over REST from open to close (open,
//! add the lines, fire each course, wait for its ready notice on the table's tablet, serve,
//! close) and noting what the engine acknowledges of it; and the REST call itself, measured,
//! with an Idempotency-Key, retried through a kill or a replica shedding load. With replicas a
//! waiter's calls go to its table's tablet's replica (or the next one up while that one is
//! down), and are measured as local or forwarded by whether that replica owned the branch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{AckedOrder, Backoff, FireKey, FireTrack, Shared, TicketTrack};
use crate::plan::OrderPlan;
use crate::proto::TicketBody;

/// What the engine answers for an order, reduced.
#[derive(Deserialize)]
struct OrderAnswer {
    id: String,
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

impl Shared {
    /// A mutating REST call by the waiter of an order, measured; the answer's body on
    /// success. With chaos, a transport error, a timeout or a 503 is retried with the same
    /// body and Idempotency-Key until answered or `--retry-deadline` passes (with replicas a
    /// `503 owner_unavailable` always is); the latency counts from the first send.
    async fn call(
        &self,
        kind: &'static str,
        plan: &OrderPlan,
        path: &str,
        body: Option<Value>,
    ) -> Option<String> {
        let branch = plan.branch;
        // The replica of the table's tablet (waiter tablet i on replica i % N).
        let home = (plan.branch * self.layout.tables.len() + plan.table) % self.replicas.len();
        let key = self.args.idempotency_keys.then(|| {
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
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&self.waiter_tokens[branch]);
            if let Some(body) = &body {
                req = req.json(body);
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", key);
            }
            let answer = {
                let Ok(_permit) = self.http_slots.acquire().await else {
                    return None;
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
            let again = (self.chaos() && (retry || unread))
                || (shed && kind != "open")
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
                    return None;
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
            return Some(text);
        }
        match serde_json::from_str::<ErrorAnswer>(&text) {
            Ok(e) => self.rec.error(kind, &e.error.code, || {
                format!("{path}: {status} {}", e.error.message)
            }),
            Err(_) => self
                .rec
                .error(kind, &format!("http_{}", status.as_u16()), || {
                    format!("{path}: {}", text.chars().take(200).collect::<String>())
                }),
        }
        None
    }
}

/// One order, from open to close.
pub(super) async fn order_task(shared: Arc<Shared>, plan: Arc<OrderPlan>) {
    let opened_at = Instant::now();
    let outcome = order_steps(&shared, &plan).await;
    let c = &shared.counts;
    match outcome {
        Ok(()) => {
            c.orders_completed.fetch_add(1, Ordering::Relaxed);
            shared.rec.order_completed(opened_at.elapsed());
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

/// Why an order did not complete.
enum Unfinished {
    /// A command was not answered with success, or its answer could not be read.
    Failed,
    /// A fire's ready notice did not reach the table in time.
    Stalled,
}

/// The waiter's steps: open, add the lines, then each course fired, awaited and served; close.
async fn order_steps(shared: &Shared, plan: &Arc<OrderPlan>) -> Result<(), Unfinished> {
    let waiter = open(shared, plan).await?;
    waiter.add_lines().await?;
    for course in 1..=plan.courses {
        let ready = waiter.fire_course(course).await?;
        waiter.serve(ready).await?;
        if course < plan.courses {
            tokio::time::sleep(plan.course_gap).await;
        }
    }
    waiter.close().await
}

/// The waiter of one order the engine opened.
struct Waiter<'a> {
    shared: &'a Shared,
    plan: &'a OrderPlan,
    id: String,
    /// `/api/v1/branches/{branch}/orders/{id}`.
    path: String,
}

/// Opens the order at its table; from then on the run follows what the engine acknowledges
/// of it.
async fn open<'a>(shared: &'a Shared, plan: &'a Arc<OrderPlan>) -> Result<Waiter<'a>, Unfinished> {
    let layout = &shared.layout;
    let branch = &layout.branches[plan.branch];
    let table = &layout.tables[plan.table];
    let orders = format!("/api/v1/branches/{branch}/orders");
    let Some(body) = shared
        .call(
            "open",
            plan,
            &orders,
            Some(json!({"table": table, "guests": plan.guests})),
        )
        .await
    else {
        shared
            .counts
            .opens_unanswered
            .fetch_add(1, Ordering::Relaxed);
        return Err(Unfinished::Failed);
    };
    let Ok(order) = serde_json::from_str::<OrderAnswer>(&body) else {
        shared.rec.incident("unreadable_answer", || body.clone());
        return Err(Unfinished::Failed);
    };
    shared.counts.orders_opened.fetch_add(1, Ordering::Relaxed);
    shared.rec.order_started();
    let id = order.id;
    shared
        .plans
        .lock()
        .expect("lock")
        .insert(id.clone(), plan.clone());
    shared.acked.lock().expect("lock").insert(
        id.clone(),
        AckedOrder {
            plan: plan.clone(),
            lines_acked: false,
            fires_sent: 0,
            fires_acked: 0,
            tickets: Vec::new(),
            served: Vec::new(),
            closed: false,
        },
    );
    Ok(Waiter {
        shared,
        plan,
        path: format!("{orders}/{id}"),
        id,
    })
}

impl Waiter<'_> {
    /// A REST command on the order (`{path}/{step}`): the answer's body, or Failed.
    async fn command(
        &self,
        kind: &'static str,
        step: &str,
        body: Option<Value>,
    ) -> Result<String, Unfinished> {
        self.shared
            .call(kind, self.plan, &format!("{}/{step}", self.path), body)
            .await
            .ok_or(Unfinished::Failed)
    }

    /// Adds all the order's lines in one call.
    async fn add_lines(&self) -> Result<(), Unfinished> {
        let (shared, layout) = (self.shared, &self.shared.layout);
        let lines: Vec<Value> = self
            .plan
            .lines
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
            .collect();
        let n_lines = lines.len() as u64;
        self.command("add_lines", "lines", Some(json!({ "lines": lines })))
            .await?;
        shared.update_acked(&self.id, |o| o.lines_acked = true);
        shared
            .counts
            .lines_added
            .fetch_add(n_lines, Ordering::Relaxed);
        Ok(())
    }

    /// Fires a course and waits for its ready notice on the table's tablet: the lines to
    /// serve.
    async fn fire_course(&self, course: u8) -> Result<Vec<u64>, Unfinished> {
        let shared = self.shared;
        let fire_no = u32::from(course);
        let key: FireKey = (self.id.clone(), fire_no);
        let (ready_tx, ready_rx) = oneshot::channel();
        shared
            .waiters
            .lock()
            .expect("lock")
            .insert(key.clone(), ready_tx);
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
        let Ok(body) = self
            .command("fire", "fire", Some(json!({ "course": course })))
            .await
        else {
            shared.waiters.lock().expect("lock").remove(&key);
            return Err(Unfinished::Failed);
        };
        let acked = Instant::now();
        let Ok(answer) = serde_json::from_str::<OrderAnswer>(&body) else {
            shared.rec.incident("unreadable_answer", || body.clone());
            return Err(Unfinished::Failed);
        };
        self.fired(&answer, course);
        if let Some(f) = shared.fires.lock().expect("lock").get_mut(&key) {
            f.acked = Some(acked);
        }
        self.ready(key, ready_rx).await
    }

    /// Notes the tickets of a fire's answer: acknowledged on the order, and awaited on their
    /// station's screens with their lines.
    fn fired(&self, answer: &OrderAnswer, course: u8) {
        let (shared, id) = (self.shared, &self.id);
        let fire_no = u32::from(course);
        let fired: Vec<&TicketBody> = answer
            .tickets
            .iter()
            .filter(|t| t.fire_no == fire_no)
            .collect();
        if fired.is_empty() {
            shared.violation(format!(
                "order {id}: the answer to firing course {course} holds no ticket of fire {fire_no}"
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
        let mut tickets = shared.tickets.lock().expect("lock");
        for t in &fired {
            let station = shared
                .layout
                .station_index(&t.station)
                .unwrap_or(usize::MAX);
            let track = tickets.entry(t.id.clone()).or_insert_with(|| TicketTrack {
                order_id: id.clone(),
                fire_no,
                branch: self.plan.branch,
                station,
                confirmed_lines: None,
                seen_lines: None,
                line_mismatch: false,
                screens: 0,
                complete: false,
            });
            track.confirmed_lines = Some(t.lines.len());
        }
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
        let table = &self.shared.layout.tables[self.plan.table];
        let (id, fire_no) = &key;
        self.shared.rec.incident("no_ready_notice", || {
            format!("order {id} fire {fire_no}: no order_ready reached table {table}")
        });
        Err(Unfinished::Stalled)
    }

    /// Serves the lines a ready notice named.
    async fn serve(&self, lines: Vec<u64>) -> Result<(), Unfinished> {
        self.command("serve", "serve", Some(json!({ "lines": lines })))
            .await?;
        self.shared
            .update_acked(&self.id, |o| o.served.extend(&lines));
        Ok(())
    }

    /// Closes the check: the order is complete.
    async fn close(self) -> Result<(), Unfinished> {
        let shared = self.shared;
        self.command("close", "close", None).await?;
        shared.update_acked(&self.id, |o| o.closed = true);
        shared.plans.lock().expect("lock").remove(&self.id);
        shared.completed.lock().expect("lock").insert(self.id);
        Ok(())
    }
}
