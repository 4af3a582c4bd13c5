//! `scripts/lab.sh` end to end: the lab comes up, HAProxy spreads the
//! pages over the three instances (read from the footer), and the shop
//! keeps serving when one instance and the PostgreSQL replica are killed.
//!
//! It needs what the lab needs (root, HAProxy, Redis, PostgreSQL through
//! `scripts/services.sh`, curl) and fails, naming what went wrong, when a
//! piece cannot start. `LAB_SERVICES` points the lab at another checkout's
//! services script, as `scripts/lab.sh` documents.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lab.sh")
}

/// Runs `scripts/lab.sh ARGS` with the shop binary Cargo built for this
/// test, failing the test with the script's output when it fails.
fn lab(args: &[&str]) -> String {
    let out = Command::new(lab_script())
        .args(args)
        .env("LAB_SHOP_BIN", env!("CARGO_BIN_EXE_shop"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/lab.sh: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/lab.sh {} failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        out.status
    );
    stdout
}

/// Stops the lab when the test ends, passed or not.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(lab_script()).arg("down").output();
    }
}

/// `GET url` through curl: the status and the body.
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}", url])
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// What the footer says: instance, session store, source of the data.
#[derive(Debug)]
struct Footer {
    instance: String,
    store: String,
    data: String,
}

fn span(body: &str, id: &str) -> String {
    let start = format!("<span id=\"{id}\">");
    let from = body
        .find(&start)
        .unwrap_or_else(|| panic!("no {id} in the page's footer:\n{body}"))
        + start.len();
    let len = body[from..].find("</span>").expect("closed span");
    body[from..from + len].to_owned()
}

fn footer(body: &str) -> Footer {
    Footer {
        instance: span(body, "served-instance"),
        store: span(body, "served-store"),
        data: span(body, "served-data"),
    }
}

/// A page that must answer 200, and its footer.
fn page(url: &str) -> Footer {
    let (status, body) = get(url);
    assert_eq!(status, 200, "GET {url}:\n{body}");
    footer(&body)
}

#[test]
fn the_lab_balances_over_three_shops_and_survives_losing_one_and_the_replica() {
    // A lab left by an earlier run would keep its cache: start afresh.
    lab(&["down"]);
    let _down = Down;
    let up = lab(&["up"]);
    let base = up
        .lines()
        .find(|l| l.starts_with("http://"))
        .unwrap_or_else(|| panic!("scripts/lab.sh up printed no URL:\n{up}"))
        .trim_end_matches('/')
        .to_owned();

    let mut seen = BTreeSet::new();
    for _ in 0..9 {
        let f = page(&format!("{base}/"));
        assert_eq!(f.store, "redis", "{f:?}");
        assert!(
            ["cache", "primary"].contains(&f.data.as_str()) || f.data.starts_with("replica "),
            "{f:?}"
        );
        seen.insert(f.instance);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["shop1".to_owned(), "shop2".into(), "shop3".into()]),
        "round-robin over the three instances"
    );
    // A product nobody has read yet is not cached: a replica serves it.
    let f = page(&format!("{base}/products/SKU-0300"));
    assert!(f.data.starts_with("replica "), "{f:?}");
    let f = page(&format!("{base}/products/SKU-0300"));
    assert_eq!(f.data, "cache", "the second read is the cache's: {f:?}");

    lab(&["kill", "shop2"]);
    lab(&["kill", "pg-replica"]);
    let status = lab(&["status"]);
    for down in ["shop2", "pg-replica"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(down))
            .unwrap_or_else(|| panic!("{down} missing from status:\n{status}"));
        assert!(line.contains(" down "), "{line}");
    }

    let mut after = BTreeSet::new();
    for i in 0..8 {
        // Products not read before, so each read reaches the database.
        let f = page(&format!("{base}/products/SKU-{:04}", 310 + i));
        assert_ne!(f.instance, "shop2", "a killed instance answered");
        assert_eq!(
            f.data, "primary",
            "with the replica gone, the primary serves: {f:?}"
        );
        after.insert(f.instance);
    }
    assert_eq!(
        after,
        BTreeSet::from(["shop1".to_owned(), "shop3".into()]),
        "the two live instances share the load"
    );

    // Mended: the replica first (an instance does not start while a
    // replica it is given is down), then shop2, which serves again once
    // HAProxy's checks see it.
    lab(&["start", "pg-replica"]);
    lab(&["start", "shop2"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if page(&format!("{base}/")).instance == "shop2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shop2 did not come back within 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    lab(&["down"]);
    let (status, _) = get(&format!("{base}/"));
    assert_eq!(status, 0, "nothing answers after scripts/lab.sh down");
}
