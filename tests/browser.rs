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
