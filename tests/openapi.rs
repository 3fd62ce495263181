//! The REST API's OpenAPI document: served without a token, complete, and true.
//!
//! The document at `GET /api/v1/openapi.json` must list exactly the routes `src/routes/`
//! registers, each behind the `bearer` scheme, and the server must answer as it says:
//! schemathesis (https://schemathesis.readthedocs.io, v4) fuzzes every operation from the
//! document, as the demo branch's manager, with every check it has (no 5xx, statuses, content
//! types, headers and bodies as documented, schema-invalid requests refused, schema-valid
//! ones accepted, 401 without or with a bad token, 405 for other methods). Its settings and
//! why they are so are in tests/schemathesis/.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every route of `routes::configure`, as the document must list it.
const ROUTES: [(&str, &str); 29] = [
    ("put", "/api/v1/branches/{branch}"),
    ("get", "/api/v1/branches/{branch}"),
    ("put", "/api/v1/branches/{branch}/86/{item}"),
    ("delete", "/api/v1/branches/{branch}/86/{item}"),
    ("post", "/api/v1/branches/{branch}/orders"),
    ("get", "/api/v1/branches/{branch}/orders"),
    ("get", "/api/v1/branches/{branch}/orders/{order}"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/lines"),
    (
        "post",
        "/api/v1/branches/{branch}/orders/{order}/lines/{line}/void",
    ),
    ("post", "/api/v1/branches/{branch}/orders/{order}/fire"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/priority"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/move"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/fire-next"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/merge"),
    ("put", "/api/v1/branches/{branch}/stock/{item}"),
    ("delete", "/api/v1/branches/{branch}/stock/{item}"),
    (
        "get",
        "/api/v1/branches/{branch}/stations/{station}/all-day",
    ),
    ("get", "/api/v1/branches/{branch}/stations/{station}/speed"),
    ("get", "/api/v1/branches/{branch}/stations/{station}/bumped"),
    ("get", "/api/v1/branches/{branch}/devices"),
    ("post", "/api/v1/branches/{branch}/devices/{device}/revoke"),
    ("post", "/api/v1/branches/{branch}/pairings"),
    ("post", "/api/v1/branches/{branch}/pair"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/serve"),
    ("post", "/api/v1/branches/{branch}/orders/{order}/close"),
    (
        "get",
        "/api/v1/branches/{branch}/stations/{station}/tickets",
    ),
    (
        "post",
        "/api/v1/branches/{branch}/stations/{station}/tickets/{ticket}/{action}",
    ),
    ("get", "/api/v1/branches/{branch}/events"),
    ("post", "/api/v1/branches/{branch}/tokens"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Seed and size of the fuzzing: a fixed seed, and few enough examples for well under a
/// minute on two cores.
const SEED: &str = "20261123";
const EXAMPLES: &str = "50";
/// How long one schemathesis run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(240);

async fn document(server: &Server) -> Value {
    // No token: the document is public.
    let res = reqwest::get(format!("{}/api/v1/openapi.json", server.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    res.json().await.expect("the document is JSON")
}

/// Stops the server process when the test ends, passed or not.
struct Stopping(Server);

impl Drop for Stopping {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// A concrete path for a route template, with values that parse.
fn concrete(template: &str) -> String {
    template
        .replace("{branch}", "demo")
        .replace("{item}", "fries")
        .replace("{order}", "00000000-0000-0000-0000-000000000000")
        .replace("{line}", "1")
        .replace("{station}", "grill")
        .replace("{ticket}", "00000000-0000-0000-0000-000000000000")
        .replace("{action}", "bump")
}

#[tokio::test]
async fn the_document_lists_every_route_behind_the_bearer_scheme() {
    let journal = common::TestJournal::fresh().await;
    let server = Stopping(Server::start(&journal).await);
    let server = &server.0;
    let doc = document(server).await;

    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(doc["info"]["title"], "rail");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    assert_eq!(bearer["bearerFormat"], "JWT", "{bearer}");

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let name = format!("{} {path}", method.to_uppercase());
            listed.insert((method.clone(), path.clone()));
            // A new device exchanging its pairing code has no token yet.
            if name == "POST /api/v1/branches/{branch}/pair" {
                assert!(operation.get("security").is_none(), "{name} needs no token");
                assert!(operation["operationId"].is_string(), "{name}: operationId");
                continue;
            }
            assert_eq!(
                operation["security"],
                json!([{"bearer": []}]),
                "{name} must require the bearer scheme"
            );
            assert!(operation["operationId"].is_string(), "{name}: operationId");
            // Every path parameter is declared and described.
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let param = segment.trim_matches(['{', '}']);
                let declared = params
                    .iter()
                    .find(|p| p["name"] == param && p["in"] == "path")
                    .unwrap_or_else(|| panic!("{name}: path parameter {param} is not declared"));
                assert!(declared["description"].is_string(), "{name}: {param}");
                assert_eq!(declared["required"], true, "{name}: {param}");
            }
            // Success and every refusal have a documented body.
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name}: no success response"
            );
            for status in ["401", "403", "503"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name}: {status}"
                );
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        listed, expected,
        "the document and routes::configure disagree"
    );

    // The documented operations are the server's: each is there (401 without a token, not
    // 404), and other methods on its path are not (405).
    let anonymous = reqwest::Client::new();
    for (method, path) in ROUTES {
        let url = format!("{}{}", server.base, concrete(path));
        let res = anonymous
            .request(method.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        if path.ends_with("/pair") {
            // Open to any device: without a body it is a request to refuse, not a missing token.
            assert_eq!(
                res.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{method} {path}"
            );
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        }
        let res = server.client.patch(&url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "PATCH {path}");
        let allow = res.headers()["allow"].to_str().unwrap().to_owned();
        assert!(
            allow.contains(&method.to_uppercase()),
            "{path}: Allow: {allow}"
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
}

/// The `schemathesis` command, or a clear failure.
fn schemathesis() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("schemathesis"))
            .find(|candidate| candidate.is_file())
    });
    let Some(command) = found else {
        panic!(
            "schemathesis is not installed (or not on PATH): scripts/test installs it \
             (pip install 'schemathesis>=4,<5'); this test needs it and is never skipped"
        );
    };
    let version = std::process::Command::new(&command)
        .arg("--version")
        .output()
        .expect("schemathesis --version runs");
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    assert!(
        version.contains("version 4."),
        "schemathesis 4 is needed (its CLI differs from 3's), found '{version}': \
         scripts/test installs it"
    );
    command
}

/// Runs schemathesis on the server's document with `args` after the shared ones; panics
/// with its report unless it passed.
async fn fuzz(command: &Path, server: &Server, what: &str, args: &[&str]) {
    let settings = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let workdir = tempfile::tempdir().unwrap();
    let token = common::manager("demo");
    let started = Instant::now();
    let child = tokio::process::Command::new(command)
        .current_dir(workdir.path())
        .env("SCHEMATHESIS_HOOKS", settings.join("hooks.py"))
        .arg("--config-file")
        .arg(settings.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.base))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--seed", SEED, "--max-examples", EXAMPLES])
        .args([
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("schemathesis starts");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({what}) ran over {RUN_LIMIT:?}"))
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "schemathesis ({what}): {:?} in {:.1?}",
        output.status,
        started.elapsed()
    );
    assert!(
        output.status.success(),
        "schemathesis ({what}) found problems:\n{report}"
    );
}

#[tokio::test]
async fn schemathesis_finds_nothing_wrong() {
    let command = schemathesis();
    let journal = common::TestJournal::fresh().await;
    let server = Stopping(Server::start_with(&journal, &[("RUST_LOG", "error")]).await);
    let server = &server.0;

    // Every operation but the configuration, with stateful scenarios along the links (open an
    // order, add lines, fire, work the tickets...) on the demo branch.
    fuzz(
        &command,
        server,
        "the branch's operations",
        &["--exclude-operation-id", "configure_branch"],
    )
    .await;
    // Then the configuration alone: a valid one replaces the demo's menu, which would leave
    // the other operations nothing to order.
    fuzz(
        &command,
        server,
        "configuring the branch",
        &[
            "--include-operation-id",
            "configure_branch",
            "--phases",
            "examples,coverage,fuzzing",
        ],
    )
    .await;

    // Still serving, with nothing left half done.
    let res = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}
