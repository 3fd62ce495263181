//! What the run watches beside the orders: once a second the CPU (the server's, the load
//! test's, the machine's) and the server's memory when it runs here, and every 5 s a progress
//! line on stderr unless `--quiet`. With replicas, "the server" is the sum of the replicas up,
//! each also kept on its own, and the redis-server's CPU beside.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Shared;
use crate::server::{cpu_seconds, machine_busy_seconds, memory_of, Memory, PidCell, Target};

/// The sampler and the progress line, running until the run stops.
pub(super) struct Gauges {
    /// The server's memory (summed over the replicas up): (seconds since the rush began,
    /// reading).
    samples: Arc<Mutex<Vec<(f64, Memory)>>>,
    sampler: JoinHandle<()>,
    progress: Option<JoinHandle<()>>,
}

impl Gauges {
    /// Starts sampling, and the progress line unless `--quiet`.
    pub(super) fn start(
        shared: &Arc<Shared>,
        target: &Target,
        stop: &watch::Receiver<bool>,
        t0: Instant,
    ) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let sampler = tokio::spawn(sample(
            shared.clone(),
            target.nodes.iter().map(|n| n.pid_cell()).collect(),
            target.redis_pid(),
            samples.clone(),
            stop.clone(),
            t0,
        ));
        let progress =
            (!shared.args.quiet).then(|| tokio::spawn(progress(shared.clone(), stop.clone(), t0)));
        Self {
            samples,
            sampler,
            progress,
        }
    }

    pub(super) fn stop(&self) {
        self.sampler.abort();
        if let Some(p) = &self.progress {
            p.abort();
        }
    }

    /// The server's memory readings so far.
    pub(super) fn samples(&self) -> Vec<(f64, Memory)> {
        self.samples.lock().expect("lock").clone()
    }
}

/// One process followed by the sampler: its pid cell (which follows a restart), the pid and
/// CPU time last read, and whether it is gone for good.
struct Followed {
    cell: PidCell,
    pid: Option<u32>,
    cpu: Option<f64>,
    gone: bool,
}

impl Followed {
    fn current(&self) -> Option<u32> {
        Some(self.cell.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }
}

/// Memory and CPU, once a second (the server's when it runs here).
async fn sample(
    shared: Arc<Shared>,
    cells: Vec<PidCell>,
    redis: Option<u32>,
    samples: Arc<Mutex<Vec<(f64, Memory)>>>,
    mut stop: watch::Receiver<bool>,
    t0: Instant,
) {
    let replicated = cells.len() > 1;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut nodes: Vec<Followed> = cells
        .into_iter()
        .map(|cell| {
            let pid = Some(cell.load(Ordering::Relaxed)).filter(|&p| p != 0);
            Followed {
                cpu: pid.and_then(|p| cpu_seconds(Some(p))),
                cell,
                pid,
                gone: false,
            }
        })
        .collect();
    let mut last = (
        Instant::now(),
        cpu_seconds(None),
        machine_busy_seconds(),
        redis.and_then(|p| cpu_seconds(Some(p))),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        let dt = (now - last.0).as_secs_f64().max(1e-3);
        let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / dt);
        // Each node's CPU over the last second; a restarted server is another process, whose
        // CPU time starts again: none for that second.
        let mut cpu = Vec::with_capacity(nodes.len());
        for node in &mut nodes {
            let pid = node.current();
            let same = pid == node.pid;
            let reading = pid.and_then(|p| cpu_seconds(Some(p)));
            cpu.push(if same { rate(reading, node.cpu) } else { None });
            node.pid = pid;
            node.cpu = reading;
        }
        let server_cpu = if replicated {
            let up: Vec<f64> = cpu.iter().flatten().copied().collect();
            (!up.is_empty()).then(|| up.iter().sum())
        } else {
            cpu[0]
        };
        let (own_cpu, machine_cpu, redis_cpu) = (
            cpu_seconds(None),
            machine_busy_seconds(),
            redis.and_then(|p| cpu_seconds(Some(p))),
        );
        shared.rec.cpu(
            now,
            server_cpu,
            rate(own_cpu, last.1),
            rate(machine_cpu, last.2),
        );
        let redis_rate = rate(redis_cpu, last.3);
        last = (now, own_cpu, machine_cpu, redis_cpu);
        let mut rss = Vec::with_capacity(nodes.len());
        for node in &mut nodes {
            // Down between a kill and its restart (or for good).
            let Some(pid) = node.pid.filter(|_| !node.gone) else {
                rss.push(None);
                continue;
            };
            match memory_of(pid) {
                Some(m) => rss.push(Some(m)),
                // Unreadable while the process is there: this process is short of file
                // descriptors, not the server gone.
                None if std::path::Path::new(&format!("/proc/{pid}")).exists() => rss.push(None),
                // Killed by the chaos since it was read.
                None if node.current() != Some(pid) => rss.push(None),
                None => {
                    shared
                        .rec
                        .incident("server_gone", || format!("process {pid} is gone"));
                    node.gone = true;
                    rss.push(None);
                }
            }
        }
        if replicated {
            shared.rec.replica_gauges(
                now,
                cpu,
                rss.iter().map(|m| m.map(|m| m.rss_bytes)).collect(),
                redis_rate,
            );
        }
        let readings: Vec<Memory> = rss.iter().flatten().copied().collect();
        if !readings.is_empty() {
            let m = Memory {
                rss_bytes: readings.iter().map(|m| m.rss_bytes).sum(),
                peak_bytes: readings.iter().map(|m| m.peak_bytes).sum(),
            };
            shared.rec.rss(now, m.rss_bytes);
            samples
                .lock()
                .expect("lock")
                .push(((now - t0).as_secs_f64(), m));
        }
        if nodes.iter().all(|n| n.gone) {
            return;
        }
    }
}

/// A line on stderr every 5 s: orders opened, completed and in flight, errors, frames.
async fn progress(shared: Arc<Shared>, mut stop: watch::Receiver<bool>, t0: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let c = &shared.counts;
        eprintln!(
            "[{:>4.0}s] opened {} completed {} in flight {} errors {} frames {}",
            t0.elapsed().as_secs_f64(),
            c.orders_opened.load(Ordering::Relaxed),
            c.orders_completed.load(Ordering::Relaxed),
            shared.in_flight.load(Ordering::Relaxed),
            shared.rec.error_count(),
            shared.rec.frames_total(),
        );
    }
}
