//! The kitchen board page, as a manager's board and as one station's screen, driven in a real
//! headless Chromium by `tests/browser/board.mjs`.

mod common;

use std::path::Path;

use common::TestApp;
use rail::auth::Role;

#[actix_web::test]
async fn kitchen_board_takes_an_order_from_fire_to_served() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "tests/browser has no node_modules: run scripts/test, which installs them"
    );
    let app = TestApp::spawn().await;
    let screenshot = std::env::temp_dir().join("rail-board.png");
    let out = tokio::process::Command::new("node")
        .arg(dir.join("board.mjs"))
        .arg(&app.base)
        .arg(common::manager("demo"))
        .arg(common::token_for(
            "demo",
            Role::Kitchen,
            Some("grill"),
            None,
        ))
        .arg(common::token_for("demo", Role::Guest, None, Some("qr-5")))
        .arg(&screenshot)
        .output()
        .await
        .expect("node runs (install Node.js 18 or newer)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "board test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("board ok"), "{stdout}");
}

/// The screens' tests: each script drives one page (or a whole service across pages) in
/// Chromium against a server of its own on a fresh journal, and writes its screenshots under
/// `target/screens/`.
async fn run_screen_script(script: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    for package in ["playwright-core", "axe-core", "qrcode-generator"] {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "tests/browser/node_modules has no {package}: run scripts/test, which installs it"
        );
    }
    let app = TestApp::spawn().await;
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screens");
    std::fs::create_dir_all(&artefacts).unwrap();
    let station = |s: &str| common::token_for("demo", Role::Kitchen, Some(s), None);
    let tokens = serde_json::json!({
        "manager": common::manager("demo"),
        "waiter": common::token_for("demo", Role::Waiter, None, None),
        "pos": common::token_for("demo", Role::Pos, None, None),
        "kitchen": common::token_for("demo", Role::Kitchen, None, None),
        "grill": station("grill"),
        "fryer": station("fryer"),
        "cold": station("cold"),
        "bar": station("bar"),
        "pastry": station("pastry"),
        "expo": station("expo"),
        "guest_qr5": common::token_for("demo", Role::Guest, None, Some("qr-5")),
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), tokens.to_string()).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(dir.join(format!("{script}.mjs")))
        .arg(&app.base)
        .arg(file.path())
        .arg(&artefacts)
        .output()
        .await
        .expect("node runs (install Node.js 18 or newer)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{script} ok")),
        "{stdout}\n{stderr}"
    );
}

#[actix_web::test]
async fn the_kitchen_screen_works_by_bump_bar_and_survives_a_cut() {
    run_screen_script("kitchen").await;
}

#[actix_web::test]
async fn expo_ticks_each_station_and_sends_the_order() {
    run_screen_script("expo").await;
}

#[actix_web::test]
async fn a_waiter_runs_a_table_from_the_tablet() {
    run_screen_script("waiter").await;
}

#[actix_web::test]
async fn the_pos_sends_a_counter_order_in_one_tap() {
    run_screen_script("pos").await;
}

#[actix_web::test]
async fn a_guest_orders_from_the_qr_menu() {
    run_screen_script("menu").await;
}

#[actix_web::test]
async fn a_manager_edits_the_branch_and_pairs_devices() {
    run_screen_script("manage").await;
}

#[actix_web::test]
async fn the_vendored_qr_code_library_is_the_npm_package() {
    run_screen_script("vendor").await;
}

#[actix_web::test]
async fn a_whole_service_runs_on_the_screens_in_both_languages() {
    run_screen_script("service").await;
}

#[actix_web::test]
async fn a_screen_pairs_by_code_and_a_revoked_one_says_so() {
    run_screen_script("pairing").await;
}
