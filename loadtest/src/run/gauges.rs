//! What the run watches beside the orders: once a second the CPU (the server's, the load
//! test's, the machine's) and the server's memory when it runs here, and every 5 s a progress
//! line on stderr unless `--quiet`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Shared;
use crate::server::{cpu_seconds, machine_busy_seconds, memory_of, Memory, PidCell, Target};

/// The sampler and the progress line, running until the run stops.
pub(super) struct Gauges {
    /// The server's memory: (seconds since the rush began, reading).
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
            target.pid_cell(),
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

/// Memory and CPU, once a second (the server's when it runs here).
async fn sample(
    shared: Arc<Shared>,
    pids: PidCell,
    samples: Arc<Mutex<Vec<(f64, Memory)>>>,
    mut stop: watch::Receiver<bool>,
    t0: Instant,
) {
    let current = move || Some(pids.load(Ordering::Relaxed)).filter(|&p| p != 0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut pid = current();
    let mut last = (
        Instant::now(),
        pid.and_then(|p| cpu_seconds(Some(p))),
        cpu_seconds(None),
        machine_busy_seconds(),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        // A restarted server is another process: its CPU time starts again.
        let same = current() == pid;
        pid = current();
        let (server_cpu, own_cpu, machine_cpu) = (
            pid.and_then(|p| cpu_seconds(Some(p))),
            cpu_seconds(None),
            machine_busy_seconds(),
        );
        let dt = (now - last.0).as_secs_f64().max(1e-3);
        let rate = |a: Option<f64>, b: Option<f64>| Some((a? - b?) / dt);
        shared.rec.cpu(
            now,
            if same { rate(server_cpu, last.1) } else { None },
            rate(own_cpu, last.2),
            rate(machine_cpu, last.3),
        );
        last = (now, server_cpu, own_cpu, machine_cpu);
        // Down between a kill and its restart.
        let Some(pid) = pid else { continue };
        match memory_of(pid) {
            Some(m) => {
                shared.rec.rss(now, m.rss_bytes);
                samples
                    .lock()
                    .expect("lock")
                    .push(((now - t0).as_secs_f64(), m));
            }
            // Unreadable while the process is there: this process is short of file
            // descriptors, not the server gone.
            None if std::path::Path::new(&format!("/proc/{pid}")).exists() => {}
            // Killed by the chaos since it was read.
            None if current() != Some(pid) => {}
            None => {
                shared
                    .rec
                    .incident("server_gone", || format!("process {pid} is gone"));
                return;
            }
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
