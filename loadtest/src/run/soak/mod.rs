//! `loadtest soak`: a long run that finds leaks. The run's own phases (set-up, rush, drain,
//! read-back, verification, report) at a moderate rate for an hour, while screens and tablets
//! drawn at random hang up and dial again (`redial`), the engine's `/metrics` is read every
//! minute and printed as one line (`sample`), and at the end the engine's memory is judged
//! (`leak`) and its websockets and writer tasks must come back to the count expected once the
//! devices settle, and to what it had before once they hang up. `report` writes it all beside
//! the run's report. This module owns the flags, the order of the phases and the verdict.

mod leak;
mod redial;
mod report;
mod sample;

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args as _, FromArgMatches as _};
use serde_json::json;

use super::{report_folder, stop, validate, RunArgs, Running};
use crate::server::{ServerArgs, Target};
use report::{Findings, RunSide};
use sample::Probe;

/// Flags of `loadtest soak`. What it does not set is as `loadtest run` has it (the workload's
/// mix, prep times, bounds).
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// How long orders arrive: `60m`, `10m`, `90s`, `1h` (a bare number is seconds).
    #[arg(long, default_value = "60m", value_parser = parse_span)]
    pub duration: Duration,
    /// Mean rate at which new orders arrive (open loop).
    #[arg(long, default_value_t = 20.0)]
    pub orders_per_sec: f64,
    /// Mean time between two redials: a screen or tablet drawn at random closes its socket and
    /// dials again, resuming after the last position it saw (exponential gaps drawn from the
    /// seed). 0: none.
    #[arg(long, default_value = "3s", value_parser = parse_span)]
    pub reconnect_every: Duration,
    /// Branches (restaurants) of the chain, `load-1` to `load-N`.
    #[arg(long, default_value_t = 2)]
    pub branches: usize,
    /// Tables a branch (one waiter tablet socket each).
    #[arg(long, default_value_t = 40)]
    pub tables: usize,
    /// Cooking stations a branch (expo comes on top).
    #[arg(long, default_value_t = 4)]
    pub stations: usize,
    /// Kitchen screens following each station, expo included.
    #[arg(long, default_value_t = 2)]
    pub screens_per_station: usize,
    /// Seeds the workload and the redials.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How often the engine's /metrics is read and a line printed, from the first order.
    #[arg(long, default_value = "60s", value_parser = parse_span)]
    pub sample_every: Duration,
    /// The leak rule: memory keeps growing when the least-squares slope of RSS over the samples
    /// after the warm-up (the first sixth of the run) is above this many MiB per 10 minutes...
    #[arg(long, default_value_t = 1.0)]
    pub max_rss_slope: f64,
    /// ...and the last sample is more than this many MiB above the warm-up's highest.
    #[arg(long, default_value_t = 8.0)]
    pub rss_margin: f64,
    /// How long the engine's websockets and writer tasks may take to come back to the count
    /// expected, after the drain and after the hang-up.
    #[arg(long, default_value = "15s", value_parser = parse_span)]
    pub settle_within: Duration,
    /// The report folder [default: target/loadtest-reports/<time>-soak-<journal>-<rate>ps].
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// No lines on stderr (the sample lines and the summary still go to stdout).
    #[arg(long)]
    pub quiet: bool,
}

/// A span of time: a number and a unit, `s`, `m` (or `min`) or `h`; a bare number is seconds.
fn parse_span(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a time like 90s, 10m or 1h"))?;
    let per = match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("'{other}' is not a unit of time: s, m or h")),
    };
    Duration::try_from_secs_f64(n * per).map_err(|e| format!("'{raw}': {e}"))
}

impl SoakArgs {
    /// The run the soak plays: `loadtest run` with its own defaults, and the soak's rate,
    /// length, chain and seed (progress lines off: the soak prints its samples).
    fn run_args(&self) -> anyhow::Result<RunArgs> {
        let defaults = RunArgs::augment_args(clap::Command::new("run"))
            .try_get_matches_from(["run"])
            .context("the run's defaults")?;
        let mut run = RunArgs::from_arg_matches(&defaults)?;
        run.server = self.server.clone();
        run.orders_per_sec = self.orders_per_sec;
        run.duration = self.duration.as_secs_f64().ceil() as u64;
        run.branches = self.branches;
        run.tables = self.tables;
        run.stations = self.stations;
        run.screens_per_station = self.screens_per_station;
        run.seed = self.seed;
        run.out = self.out.clone();
        run.quiet = true;
        Ok(run)
    }

    /// The length of the soak, in whole seconds (as the run takes it).
    fn length(&self) -> Duration {
        Duration::from_secs(self.duration.as_secs_f64().ceil() as u64)
    }

    /// Refuses a soak whose samples cannot judge the memory, and bounds that make no sense.
    fn validate(&self, rule: &leak::Rule) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.sample_every >= Duration::from_secs(1),
            "--sample-every must be at least 1s"
        );
        anyhow::ensure!(
            self.reconnect_every.is_zero() || self.reconnect_every >= Duration::from_millis(10),
            "--reconnect-every must be 0 (no redials) or at least 10 ms"
        );
        anyhow::ensure!(
            self.max_rss_slope > 0.0 && self.rss_margin >= 0.0,
            "--max-rss-slope must be above 0 and --rss-margin at least 0"
        );
        let length = self.length();
        anyhow::ensure!(
            length >= rule.warm_up + self.sample_every * 2,
            "--duration {:?} with --sample-every {:?} leaves fewer than two samples after the warm-up ({:?}, a sixth of the run and at least one sample): make the soak longer or sample more often",
            length,
            self.sample_every,
            rule.warm_up
        );
        Ok(())
    }

    /// `config` in soak.json.
    fn config_json(&self, started_at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
        json!({
            "started_at": started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            "duration_s": self.length().as_secs(),
            "orders_per_sec": self.orders_per_sec,
            "reconnect_every_s": self.reconnect_every.as_secs_f64(),
            "sample_every_s": self.sample_every.as_secs_f64(),
            "settle_within_s": self.settle_within.as_secs_f64(),
            "branches": self.branches,
            "tables": self.tables,
            "stations": self.stations,
            "screens_per_station": self.screens_per_station,
            "seed": self.seed,
            "max_rss_slope_mib_per_10_min": self.max_rss_slope,
            "rss_margin_mib": self.rss_margin,
        })
    }
}

/// Runs the soak and writes its report beside the run's; Ok(true) when both passed.
pub async fn run(args: SoakArgs) -> anyhow::Result<bool> {
    let started_at = chrono::Utc::now();
    let mut run_args = args.run_args()?;
    validate(&run_args)?;
    let length = args.length();
    let rule = leak::Rule::new(
        length,
        args.sample_every,
        args.max_rss_slope,
        args.rss_margin,
    );
    args.validate(&rule)?;
    let out = report_folder(&run_args, started_at, "soak-");
    run_args.out = Some(out.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let fd_limit = crate::raise_fd_limit();
    let mut target = Target::start(&run_args.server, &out).await?;
    if !args.quiet {
        eprintln!(
            "loadtest soak: {} orders/s for {} s on {}, a redial every {:?} on average, /metrics every {:?} (report in {})",
            args.orders_per_sec,
            length.as_secs(),
            target.description,
            args.reconnect_every,
            args.sample_every,
            out.display()
        );
    }
    let found = soak(
        &args,
        &run_args,
        rule,
        &mut target,
        &out,
        started_at,
        fd_limit,
    )
    .await;
    let (result, findings) = match found {
        Ok((result, findings)) => (Ok(result), findings),
        Err(e) => {
            let _ = target.stop_all().await;
            return Err(e);
        }
    };
    let (run_report, run_passed) = stop(&run_args, &mut target, result).await?;
    run_report.write(&out, run_passed)?;
    let run = RunSide {
        passed: run_passed,
        report: &run_report,
    };
    let failures = findings.failures(&run);
    let passed = failures.is_empty();
    let elapsed = (chrono::Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    let summary = findings.summary(passed, &failures, &run, elapsed, &out);
    std::fs::write(
        out.join("soak.json"),
        serde_json::to_string_pretty(&findings.to_json(passed, &failures, &run))?,
    )?;
    std::fs::write(out.join("soak.txt"), &summary)?;
    findings.draw(&out)?;
    println!();
    print!("{}", std::fs::read_to_string(out.join("summary.txt"))?);
    println!();
    print!("{summary}");
    Ok(passed)
}

/// The soak on a started server: the run's phases with the redials and the sampler beside, and
/// the engine's sockets and writers read after the drain and after the hang-up.
async fn soak(
    args: &SoakArgs,
    run_args: &RunArgs,
    rule: leak::Rule,
    target: &mut Target,
    out: &Path,
    started_at: chrono::DateTime<chrono::Utc>,
    fd_limit: Option<u64>,
) -> anyhow::Result<((crate::report::RunReport, bool), Findings)> {
    let node = &target.nodes[0];
    // Read once a minute: a connection the engine's keep-alive (5 s) closed is not reused.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(4))
        .build()?;
    let probe = Probe::new(
        http,
        node.metrics.clone(),
        crate::menu::Layout::new(args.branches, args.stations, args.tables).branches,
        node.pid_cell(),
    );
    let Some(baseline) = probe.read().await else {
        anyhow::bail!(
            "the engine's /metrics at {} does not answer: the soak reads the engine's memory, websockets and writers there (an engine serving them on a port of its own: --metrics-url, or RAIL_METRICS_PORT for a spawned one)",
            probe.url
        );
    };
    let running = Running::start(run_args, target).await?;
    let devices = running.redials.len();
    let screens = running.redials.iter().filter(|r| r.screen).count();
    let t0 = running.t0;
    let length = args.length();
    let redials = tokio::spawn(redial::redial(
        running.redials.clone(),
        redial::schedule(args.seed, args.reconnect_every, length, devices),
        t0,
    ));
    let sampler = tokio::spawn(sample::sample(
        running.shared.clone(),
        probe.clone(),
        t0,
        args.sample_every,
        length,
    ));
    let played = running.play(target).await;
    let asked = redials.await.context("the redials")?;
    let samples = sampler.await.context("the sampler")?;
    let base = |r: &sample::Reading| r.sockets.unwrap_or(0);
    let connected = probe
        .settle(base(&baseline) + devices as u64, args.settle_within)
        .await;
    let result = running
        .finish(target, out, started_at, fd_limit, played)
        .await;
    let hung_up = probe.settle(base(&baseline), args.settle_within).await;
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.t_s, s.rss_mib()?)))
        .collect();
    let findings = Findings {
        config: args.config_json(started_at),
        server: target.description.clone(),
        metrics_url: probe.url.clone(),
        judgement: rule.judge(&points),
        rule,
        screens,
        tablets: devices - screens,
        baseline,
        samples,
        asked,
        connected,
        hung_up,
    };
    Ok((result, findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_spans_of_time() {
        assert_eq!(parse_span("60m"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_span("10min"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_span("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_span("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("75"), Ok(Duration::from_secs(75)));
        assert_eq!(parse_span("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_span("0"), Ok(Duration::ZERO));
        assert!(parse_span("10 days").is_err());
        assert!(parse_span("m").is_err());
        assert!(parse_span("-5s").is_err());
    }

    #[test]
    fn takes_the_runs_defaults_for_what_it_does_not_set() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            soak: SoakArgs,
        }
        let cli = Cli::try_parse_from(["soak", "--duration", "10m", "--branches", "3"]).unwrap();
        let args = cli.soak;
        assert_eq!(args.duration, Duration::from_secs(600));
        assert_eq!(args.sample_every, Duration::from_secs(60));
        let run = args.run_args().unwrap();
        assert_eq!(run.duration, 600);
        assert_eq!(run.branches, 3);
        assert_eq!(run.orders_per_sec, 20.0);
        // The run's own defaults.
        assert_eq!(run.one_call_share, 0.3);
        assert_eq!(run.drain_timeout, 30);
        assert!(run.quiet);
        let rule = leak::Rule::new(args.length(), args.sample_every, 1.0, 8.0);
        assert!(args.validate(&rule).is_ok());
        let short = Cli::try_parse_from(["soak", "--duration", "90s"])
            .unwrap()
            .soak;
        let rule = leak::Rule::new(short.length(), short.sample_every, 1.0, 8.0);
        assert!(short.validate(&rule).is_err(), "90 s sampled every minute");
    }
}
