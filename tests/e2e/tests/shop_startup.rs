//! Starting the shop process: on embedded defaults with no server at all
//! (a new SQLite file, created, migrated and seeded, kept across
//! restarts); a bad setting is exit code 2 naming the variable; an
//! unreachable backend is exit code 1 naming the variable.

use std::process::Stdio;
use std::time::Duration;

use e2e::client::ShopClient;
use test_support::shop::{self, Shop};
use test_support::{TempDir, free_port, unique};

/// Runs the shop with `env` (and nothing else from this environment that
/// the shop reads) and waits for it to exit: the status code and stderr.
async fn run_to_exit(env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(shop::binary());
    // Nothing the shop reads comes from this environment (the services'
    // settings, such as REDIS_SENTINEL_URLS, are exported in it).
    for var in shop::SHOP_VARS {
        cmd.env_remove(var);
    }
    let dir = TempDir::new("stateful-shop-startup");
    let addr = format!("127.0.0.1:{}", free_port());
    cmd.env("SHOP_ADDR", &addr)
        .env("SHOP_DATA_DIR", dir.path())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("the shop should exit on a bad setting")
        .expect("run the shop");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_naming_the_variable() {
    for (var, value) in [
        ("SESSION_STORE", "mongo"),
        ("CACHE", "disk"),
        ("DATABASE_URL", "oracle://db/shop"),
        ("SHOP_ADDR", "nowhere"),
        ("COOKIE_KEYS", "not-a-key"),
    ] {
        let (code, stderr) = run_to_exit(&[(var, value)]).await;
        assert_eq!(code, 2, "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
    let (code, stderr) = run_to_exit(&[("SESSION_STORE", "redis")]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("REDIS_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backends_exit_1_naming_the_variable() {
    // Port 1 on loopback: nothing listens there.
    for (env, var) in [
        (
            vec![
                ("SESSION_STORE", "redis"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
            ],
            "REDIS_URL",
        ),
        (
            vec![("CACHE", "redis"), ("REDIS_URL", "redis://127.0.0.1:1")],
            "REDIS_URL",
        ),
        (
            vec![("DATABASE_URL", "postgres://shop@127.0.0.1:1/shop")],
            "DATABASE_URL",
        ),
        (
            vec![("DATABASE_URL", "mysql://shop@127.0.0.1:1/shop")],
            "DATABASE_URL",
        ),
        (
            vec![(
                "DATABASE_REPLICA_URLS",
                "sqlite:///nonexistent-dir/replica.db",
            )],
            "DATABASE_REPLICA_URLS",
        ),
    ] {
        let (code, stderr) = run_to_exit(&env).await;
        assert_eq!(code, 1, "{env:?}: {stderr}");
        assert!(stderr.contains(var), "{var} not named: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_no_server_on_a_new_sqlite_file() {
    let dir = TempDir::new("stateful-shop-defaults");
    let data = dir.path().to_string_lossy().into_owned();
    let mut shop = Shop::start(&[("SHOP_DATA_DIR", &data), ("COOKIE_SECURE", "false")]).await;
    assert!(dir.path().join("shop.db").exists(), "the SQLite file");
    let client = ShopClient::new(format!("http://{}", shop.addr));
    let products = client.get_json("/api/products").await;
    assert_eq!(products.as_array().unwrap().len(), 400);
    let email = format!("{}@example.com", unique("defaults"));
    client.signup(&email, "first password").await;
    // A restart keeps the data and does not migrate or seed twice.
    shop.restart().await;
    let again = ShopClient::new(format!("http://{}", shop.addr));
    again.login(&email, "first password").await;
    assert_eq!(
        again
            .get_json("/api/products")
            .await
            .as_array()
            .unwrap()
            .len(),
        400
    );
    let page = again.page("/").await;
    assert!(
        page.contains("SKU-0039") && !page.contains("SKU-0040"),
        "first page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_on_a_new_sqlite_file_all_come_up() {
    // SQLite has no migration lock: instances that find the file new at
    // the same moment all try to apply the migrations.
    for round in 0..3 {
        let dir = TempDir::new("stateful-shop-together");
        let data = dir.path().to_string_lossy().into_owned();
        let env = [("SHOP_DATA_DIR", data.as_str()), ("COOKIE_SECURE", "false")];
        let (a, b, c, d) = tokio::join!(
            Shop::start(&env),
            Shop::start(&env),
            Shop::start(&env),
            Shop::start(&env),
        );
        for shop in [&a, &b, &c, &d] {
            let client = ShopClient::new(format!("http://{}", shop.addr));
            let products = client.get_json("/api/products").await;
            assert_eq!(
                products.as_array().map(Vec::len),
                Some(400),
                "round {round}: seeded once, seen by every instance"
            );
        }
    }
}
