//! The shop in a real browser: headless Chromium (Debian's `chromium`)
//! driven by `playwright-core` (from `scripts/package.json`) through
//! `tests/e2e/browser/shop.mjs`, against three shop processes behind HAProxy
//! with cookie sessions.
//!
//! The script browses, adds to the cart, signs up, logs out and in again,
//! checks the cart is kept, saves an address, checks out and reads the
//! order back. It leaves `cart.png` and `order.png` in
//! `target/e2e-artifacts/browser/`.
//!
//! Chromium, Node.js and playwright-core are installed by
//! `scripts/services.sh up`; without them the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use test_support::fleet::Fleet;
use test_support::haproxy::Balance;
use test_support::paths::artifacts_dir;
use test_support::services::services_dir;
use test_support::{START_HINT, say};

const CHROMIUM: &str = "/usr/bin/chromium";

fn node_modules() -> PathBuf {
    std::env::var_os("SHOP_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| services_dir().join("npm/node_modules"))
}

fn require_tools() -> PathBuf {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing (Debian package chromium); {START_HINT}"
    );
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}); {START_HINT}"));
    assert!(node.status.success(), "node --version failed; {START_HINT}");
    let modules = node_modules();
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "playwright-core is not installed in {} (scripts/package.json); {START_HINT}",
        modules.display()
    );
    modules
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shops_signs_up_and_checks_out() {
    let modules = require_tools();
    let keys = session_stores::cookie::Key::generate().to_base64();
    // Secure cookies work on http://localhost in Chromium.
    let fleet = Fleet::start(
        3,
        &[("SESSION_STORE", "cookie"), ("COOKIE_KEYS", keys.as_str())],
        Balance::RoundRobin,
    )
    .await;
    let url = format!("http://localhost:{}", fleet.lb.addr.port());
    let out = artifacts_dir().join("browser");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/shop.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&url)
        .arg(&out)
        .env("SHOP_NODE_MODULES", &modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the browser script did not finish within 90 s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed ({}):\n{stdout}\n{stderr}\nscreenshots in {}",
        output.status,
        out.display()
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("unexpected script output ({e}): {stdout}"));
    assert_eq!(report["ok"], true, "{report}");
    let screenshot = out.join("cart.png");
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 1000),
        "no screenshot at {}",
        screenshot.display()
    );
    say(&format!("browser: {report}"));
    say(&format!("cart screenshot: {}", screenshot.display()));
}
