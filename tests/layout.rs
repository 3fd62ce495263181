//! The crates' modules import one way: no cycle between the modules of the domain crate or of
//! the server (`scripts/module-cycles` reads their `crate::` paths).

use std::process::Command;

fn cycles(folder: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/module-cycles"))
        .arg(format!("{root}/{folder}"))
        .output()
        .expect("python3 runs scripts/module-cycles (scripts/test needs python3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_domain_crate_has_no_module_cycle() {
    assert_eq!(cycles("actors/src"), "cycles: none");
}

#[test]
fn the_server_has_no_module_cycle() {
    assert_eq!(cycles("src"), "cycles: none");
}
