//! The read-back check: after the run, every order the engine acknowledged is read back over
//! REST and compared with what was acknowledged of it (lines, voids, fires, tickets, served
//! lines, close; a counter's order's source), and each branch's journal is read for orders that
//! no open accounts for (opened twice by a retried open) and for the run's tickets escalated
//! as unseen (`ticket_unseen`: no screen's acknowledgement reached the engine in time).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AckedOrder, Shared};
use crate::auth::Tokens;
use crate::menu::Layout;
use crate::proto;

/// Every acknowledged order, read back from the engine after the run, and the journal's
/// opened orders against the acknowledged ones.
pub(super) struct ReadBack {
    pub(super) acknowledged: u64,
    pub(super) verified: u64,
    /// Acknowledged, and the engine does not know it.
    pub(super) missing: u64,
    /// Found, but not as acknowledged (lines, fires, tickets, served lines, closed).
    pub(super) mismatched: u64,
    /// Could not be read (transport, timeout, another error).
    pub(super) unreadable: u64,
    /// `order_opened` events in the journals of the run's branches.
    pub(super) journal_orders: u64,
    /// Of those, orders the load test was never acknowledged.
    pub(super) unacknowledged_in_journal: u64,
    /// Opens that got no answer (each may have been carried out).
    pub(super) opens_unanswered: u64,
    /// Orders opened that no acknowledged or unanswered open accounts for: a retried open
    /// that opened a second order.
    pub(super) duplicated: u64,
    pub(super) journal_read: bool,
    /// `ticket_unseen` (and `ticket_seen`) events of the run's orders in the journals.
    pub(super) unseen: u64,
    pub(super) seen_after_unseen: u64,
    pub(super) samples: Vec<String>,
}

impl ReadBack {
    /// The check's failures, one line each.
    pub(super) fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.missing > 0 {
            f.push(format!(
                "{} acknowledged order(s) are missing from the engine",
                self.missing
            ));
        }
        if self.mismatched > 0 {
            f.push(format!(
                "{} acknowledged order(s) differ from what was acknowledged",
                self.mismatched
            ));
        }
        if self.unreadable > 0 {
            f.push(format!(
                "{} acknowledged order(s) could not be read back",
                self.unreadable
            ));
        }
        if self.duplicated > 0 {
            f.push(format!(
                "{} order(s) in the journal that no open accounts for: opened twice",
                self.duplicated
            ));
        }
        if !self.journal_read {
            f.push("the journal could not be read back (GET .../events)".into());
        }
        if self.unseen > 0 {
            f.push(format!(
                "{} ticket(s) escalated unseen (ticket_unseen in the journal): no screen's acknowledgement reached the engine within the branch's unseen_after_seconds",
                self.unseen
            ));
        }
        f
    }

    /// The report's line for the read-back.
    pub(super) fn summary_line(&self) -> String {
        format!(
            "{} acknowledged orders read back: {} as acknowledged, {} missing, {} different, {} unreadable; journal {} opened, {} duplicated",
            self.acknowledged,
            self.verified,
            self.missing,
            self.mismatched,
            self.unreadable,
            self.journal_orders,
            self.duplicated
        )
    }

    /// The read-back in report.json.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "acknowledged": self.acknowledged,
            "verified": self.verified,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "unreadable": self.unreadable,
            "journal_orders_opened": self.journal_orders,
            "journal_orders_unacknowledged": self.unacknowledged_in_journal,
            "opens_unanswered": self.opens_unanswered,
            "duplicated": self.duplicated,
            "journal_read": self.journal_read,
            "tickets_escalated_unseen": self.unseen,
            "tickets_seen_after_escalation": self.seen_after_unseen,
            "samples": self.samples,
        })
    }

    /// One acknowledged order's answer, against what was acknowledged.
    fn check(&mut self, layout: &Layout, id: &str, acked: &AckedOrder, answer: OrderRead) {
        let problem = match answer {
            Ok((status, text)) if status.is_success() => {
                match serde_json::from_str::<proto::OrderBody>(&text) {
                    Ok(order) => order_differs(layout, acked, &order),
                    Err(e) => Some(format!("unreadable answer: {e}")),
                }
            }
            Ok((status, _)) if status == reqwest::StatusCode::NOT_FOUND => {
                self.missing += 1;
                self.sample(|| format!("order {id}: acknowledged, now unknown (404)"));
                return;
            }
            Ok((status, text)) => {
                self.unreadable += 1;
                self.sample(|| {
                    format!(
                        "order {id}: {status} {}",
                        text.chars().take(200).collect::<String>()
                    )
                });
                return;
            }
            Err(e) => {
                self.unreadable += 1;
                self.sample(|| format!("order {id}: {e:#}"));
                return;
            }
        };
        match problem {
            None => self.verified += 1,
            Some(p) => {
                self.mismatched += 1;
                self.sample(|| format!("order {id}: {p}"));
            }
        }
    }

    /// Keeps a sample of what went wrong, up to 20.
    fn sample(&mut self, text: impl FnOnce() -> String) {
        if self.samples.len() < 20 {
            self.samples.push(text());
        }
    }

    /// The journal's opened orders against the acknowledged ones: the orders opened twice, and
    /// those that neither an acknowledged nor an unanswered open accounts for.
    fn count_opened(&mut self, orders: &[(String, AckedOrder)], opened: &HashMap<String, u64>) {
        let acked: HashSet<&str> = orders.iter().map(|(id, _)| id.as_str()).collect();
        self.journal_orders = opened.values().sum();
        self.unacknowledged_in_journal = opened
            .keys()
            .filter(|id| !acked.contains(id.as_str()))
            .count() as u64;
        let twice = opened.values().filter(|&&n| n > 1).count() as u64;
        self.duplicated = self
            .unacknowledged_in_journal
            .saturating_sub(self.opens_unanswered)
            + twice;
    }
}

/// One event of `GET .../events`, reduced.
#[derive(Deserialize)]
struct JournalEvent {
    stream: String,
    position: u64,
    kind: String,
}

/// Reads every acknowledged order back over REST and compares it with what the engine
/// acknowledged; then reads each branch's journal for orders opened twice.
pub(super) async fn read_back(shared: &Shared, tokens: &Tokens) -> ReadBack {
    let orders: Vec<(String, AckedOrder)> = shared
        .acked
        .lock()
        .expect("lock")
        .iter()
        .map(|(id, o)| (id.clone(), o.clone()))
        .collect();
    let mut rb = ReadBack {
        acknowledged: orders.len() as u64,
        verified: 0,
        missing: 0,
        mismatched: 0,
        unreadable: 0,
        journal_orders: 0,
        unacknowledged_in_journal: 0,
        opens_unanswered: shared.counts.opens_unanswered.load(Ordering::Relaxed),
        duplicated: 0,
        journal_read: true,
        unseen: 0,
        seen_after_unseen: 0,
        samples: Vec::new(),
    };
    let answers = fetch_orders(shared, &orders).await;
    for ((id, acked), answer) in orders.iter().zip(answers) {
        rb.check(&shared.layout, id, acked, answer);
    }
    // The run's orders: those acknowledged, and those whose tickets reached a screen.
    let mut ours: HashSet<String> = orders.iter().map(|(id, _)| id.clone()).collect();
    ours.extend(
        shared
            .tickets
            .lock()
            .expect("lock")
            .values()
            .map(|t| t.order_id.clone()),
    );
    let opened = read_journals(shared, tokens, &ours, &mut rb).await;
    rb.count_opened(&orders, &opened);
    rb
}

/// An order's answer: its status and body.
type OrderRead = anyhow::Result<(reqwest::StatusCode, String)>;

/// Each acknowledged order as the engine has it now, 16 requests at a time.
async fn fetch_orders(shared: &Shared, orders: &[(String, AckedOrder)]) -> Vec<OrderRead> {
    let layout = &shared.layout;
    futures_util::stream::iter(orders.iter().map(|(id, acked)| {
        let plan = &acked.plan;
        let url = format!(
            "{}/api/v1/branches/{}/orders/{id}",
            shared.base(),
            layout.branches[plan.branch]
        );
        let token = &shared.waiter_tokens[plan.branch];
        async move {
            let res = shared.http.get(&url).bearer_auth(token).send().await?;
            let status = res.status();
            let text = res.text().await?;
            anyhow::Ok((status, text))
        }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await
}

/// The journal of every branch, page by page: how many times each order was opened, by id, and
/// how many of the run's tickets (of the orders in `ours`) were escalated unseen. A page that
/// cannot be read ends its branch's reading, and the journal counts as unread.
async fn read_journals(
    shared: &Shared,
    tokens: &Tokens,
    ours: &HashSet<String>,
    rb: &mut ReadBack,
) -> HashMap<String, u64> {
    let mut opened: HashMap<String, u64> = HashMap::new();
    for branch in &shared.layout.branches {
        let token = tokens.manager(branch);
        let mut after = 0u64;
        loop {
            let url = format!(
                "{}/api/v1/branches/{branch}/events?after={after}&limit=1000",
                shared.base()
            );
            let page = async {
                let res = shared.http.get(&url).bearer_auth(&token).send().await?;
                anyhow::Ok(res.error_for_status()?.json::<Vec<JournalEvent>>().await?)
            };
            let events = match page.await {
                Ok(events) => events,
                Err(e) => {
                    rb.journal_read = false;
                    rb.samples.push(format!("reading {url}: {e:#}"));
                    break;
                }
            };
            let Some(last) = events.last() else { break };
            after = last.position;
            for e in &events {
                let Some(id) = e.stream.strip_prefix("order/") else {
                    continue;
                };
                match e.kind.as_str() {
                    "order_opened" => *opened.entry(id.to_owned()).or_default() += 1,
                    "ticket_unseen" if ours.contains(id) => {
                        rb.unseen += 1;
                        rb.sample(|| {
                            format!(
                                "order {id}: a ticket escalated unseen at position {}",
                                e.position
                            )
                        });
                    }
                    "ticket_seen" if ours.contains(id) => rb.seen_after_unseen += 1,
                    _ => {}
                }
            }
        }
    }
    opened
}

/// How an order read back differs from what the engine acknowledged, if it does.
fn order_differs(layout: &Layout, acked: &AckedOrder, order: &proto::OrderBody) -> Option<String> {
    let plan = &acked.plan;
    let table = layout.table(plan.table);
    if order.table != table || order.guests != Some(plan.guests) {
        return Some(format!(
            "table {} with {:?} guests, acknowledged {table} with {}",
            order.table, order.guests, plan.guests
        ));
    }
    // A counter's order comes from its table's kind.
    if let Some(kind) = layout.counters.iter().position(|c| c == table) {
        let want = &layout.counters[kind];
        if order.source.as_deref() != Some(want.as_str()) {
            return Some(format!("source {:?}, the {want}'s order", order.source));
        }
    }
    let lines_match = order.lines.len() == acked.lines.len()
        && order.lines.iter().zip(&acked.lines).all(|(got, want)| {
            got.item == layout.items[want.item].id
                && got.quantity == want.quantity
                && got.modifiers.iter().eq(want.modifiers.iter())
                && got.seat == Some(want.seat)
                && got.course == want.course
        });
    if acked.lines_acked && !lines_match {
        return Some(format!(
            "{} line(s) not as added ({} acknowledged)",
            order.lines.len(),
            acked.lines.len()
        ));
    }
    if !acked.lines_acked && !order.lines.is_empty() && !lines_match {
        return Some(format!(
            "{} line(s), none or {} expected",
            order.lines.len(),
            acked.lines.len()
        ));
    }
    if let Some(l) = acked.voided.iter().find(|&&l| {
        !order
            .lines
            .iter()
            .any(|o| o.id == l && o.status == "voided")
    }) {
        return Some(format!("line {l} was voided, and is not"));
    }
    if order.fires < acked.fires_acked || order.fires > acked.fires_sent {
        return Some(format!(
            "{} fire(s), {} acknowledged of {} sent",
            order.fires, acked.fires_acked, acked.fires_sent
        ));
    }
    if let Some(t) = acked
        .tickets
        .iter()
        .find(|t| !order.tickets.iter().any(|o| &o.id == *t))
    {
        return Some(format!("acknowledged ticket {t} is not on the order"));
    }
    if let Some(l) = acked.served.iter().find(|&&l| {
        !order
            .lines
            .iter()
            .any(|o| o.id == l && o.status == "served")
    }) {
        return Some(format!("line {l} was served, and is not"));
    }
    if acked.closed && order.closed_at.is_none() {
        return Some("acknowledged closed, and is open".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::plan::{Extra, LinePlan, OrderPlan};

    fn acked(layout: &Layout) -> AckedOrder {
        let plan = OrderPlan {
            at: Duration::ZERO,
            branch: 0,
            table: 0,
            guests: 2,
            courses: 1,
            lines: vec![LinePlan {
                item: 0,
                quantity: 2,
                modifiers: vec!["no onion"],
                seat: 1,
                course: 1,
            }],
            prep_ms: vec![vec![50]],
            course_gap: Duration::ZERO,
            one_call: false,
            extra: Extra::None,
        };
        assert_eq!(layout.tables[0], "t1");
        AckedOrder {
            lines: plan.lines.clone(),
            plan: Arc::new(plan),
            voided: Vec::new(),
            lines_acked: true,
            fires_sent: 1,
            fires_acked: 1,
            tickets: vec!["k1".into()],
            served: vec![1],
            closed: true,
        }
    }

    fn order(layout: &Layout, lines: usize, tickets: &[&str], closed: bool) -> proto::OrderBody {
        let line = |id: usize| {
            json!({"id": id, "item": layout.items[0].id, "quantity": 2,
                   "modifiers": ["no onion"], "seat": 1, "course": 1, "status": "served",
                   "fire_no": 1})
        };
        serde_json::from_value(json!({
            "id": "o1", "table": "t1", "guests": 2, "fires": 1,
            "closed_at": closed.then_some("2026-11-23T12:00:00Z"),
            "lines": (1..=lines).map(line).collect::<Vec<_>>(),
            "tickets": tickets.iter().map(|t| json!({"id": t, "station": "grill", "fire_no": 1})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn an_order_read_back_as_acknowledged_passes() {
        let layout = Layout::new(1, 1, 1);
        let acked = acked(&layout);
        assert_eq!(
            order_differs(&layout, &acked, &order(&layout, 1, &["k1"], true)),
            None
        );
    }

    #[test]
    fn an_order_read_back_otherwise_is_caught() {
        let layout = Layout::new(1, 1, 1);
        let acked = acked(&layout);
        // Lines added twice (a retry run again), a ticket gone, an acknowledged close undone.
        for differs in [
            order(&layout, 2, &["k1"], true),
            order(&layout, 1, &[], true),
            order(&layout, 1, &["k1"], false),
        ] {
            assert!(order_differs(&layout, &acked, &differs).is_some());
        }
        let mut refired = order(&layout, 1, &["k1"], true);
        refired.fires = 2;
        assert!(order_differs(&layout, &acked, &refired).is_some());
    }

    #[test]
    fn voids_and_counters_are_read_back_too() {
        let layout = Layout::new(1, 1, 1);
        let mut acked = acked(&layout);
        acked.voided = vec![1];
        // The line voided is served instead.
        assert!(order_differs(&layout, &acked, &order(&layout, 1, &["k1"], true)).is_some());
        acked.served.clear();
        let mut voided = order(&layout, 1, &["k1"], true);
        voided.lines[0].status = "voided".into();
        assert_eq!(order_differs(&layout, &acked, &voided), None);

        // At the counter, the order's source is the counter's.
        let mut plan = (*acked.plan).clone();
        plan.table = layout.tables.len();
        acked.plan = Arc::new(plan);
        voided.table = "counter".into();
        assert!(order_differs(&layout, &acked, &voided).is_some());
        voided.source = Some("counter".into());
        assert_eq!(order_differs(&layout, &acked, &voided), None);
    }
}
