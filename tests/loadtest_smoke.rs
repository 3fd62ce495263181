//! A short run of the load test (`loadtest/`) against the real server binary: a few seconds at a
//! low rate, checking correctness (every ticket on every screen of its station once, every
//! ready notice at its table), not speed. Follows `RAIL_TEST_JOURNAL` like the other tests.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_rush_loses_nothing() {
    let out = tempfile::tempdir().expect("temp dir");
    let report_dir = out.path().join("report");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "-q",
            "-p",
            "rail-loadtest",
            "--bin",
            "loadtest",
            "--",
        ])
        .args([
            "run",
            "--server",
            "spawn",
            "--rail-bin",
            env!("CARGO_BIN_EXE_rail"),
        ])
        .args(["--duration", "3", "--orders-per-sec", "15", "--seed", "7"])
        .args(["--branches", "2", "--tables", "4", "--stations", "3"])
        .args([
            "--screens-per-station",
            "2",
            "--prep-min-ms",
            "10",
            "--prep-max-ms",
            "40",
        ])
        .args(["--course-gap-ms", "10", "--drain-timeout", "15", "--quiet"])
        .arg("--out")
        .arg(&report_dir);
    if std::env::var("RAIL_TEST_JOURNAL").as_deref() == Ok("postgres") {
        let admin = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        cmd.args(["--journal", "postgres", "--database-url", &admin]);
    }
    let output = cmd.output().expect("cargo runs the load test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the load test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    let read = |name: &str| -> String {
        let path: PathBuf = report_dir.join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let report: Value = serde_json::from_str(&read("report.json")).expect("report.json parses");
    assert_eq!(report["passed"], true, "{report:#}");
    let v = &report["verification"];
    assert_eq!(v["lost"], 0, "{v:#}");
    assert_eq!(v["duplicated"], 0, "{v:#}");
    assert_eq!(v["ready_notices_lost"], 0, "{v:#}");
    assert_eq!(v["ready_notices_duplicated"], 0, "{v:#}");
    assert!(v["tickets_confirmed"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(
        v["screen_deliveries"], v["screen_deliveries_expected"],
        "{v:#}"
    );
    let completed = report["counts"]["orders_completed"].as_u64().unwrap();
    assert!(completed > 0, "{report:#}");
    assert_eq!(
        report["counts"]["orders_completed"], report["counts"]["orders_opened"],
        "{report:#}"
    );
    assert!(
        report["latency_ms"]["fire_to_screen"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(!report["series"].as_array().unwrap().is_empty());

    for chart in ["latency.svg", "throughput.svg"] {
        let svg = read(chart);
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{chart} is not an SVG: {}",
            &svg[..svg.len().min(100)]
        );
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{chart} draws no line"
        );
    }
    let summary = read("summary.txt");
    assert!(summary.contains("PASSED"), "{summary}");
    assert!(
        stdout.contains("verify"),
        "the summary is printed: {stdout}"
    );
}
