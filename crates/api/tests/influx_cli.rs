//! The real `influx` CLI (Debian package `influxdb-client`) writes through
//! `/ping` and `/write` of an in-process server on in-memory storage.
//!
//! The test fails, rather than skips, when `influx` is missing: CI must
//! install `influxdb-client`.

mod support;

use std::process::Command;
use support::test_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influx_cli_inserts_points() {
    let influx = which("influx").unwrap_or_else(|| {
        panic!("the `influx` CLI is not installed; install the Debian package `influxdb-client` (apt-get install -y influxdb-client)")
    });
    let srv = test_server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = api::router(srv.state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let run = |args: Vec<String>| {
        let influx = influx.clone();
        tokio::task::spawn_blocking(move || Command::new(influx).args(args).output().expect("run influx"))
    };
    let base = vec![
        "-host".to_string(),
        "127.0.0.1".to_string(),
        "-port".to_string(),
        port.to_string(),
    ];
    let mut args = base.clone();
    args.extend(["-execute".to_string(), "INSERT cpu,host=a usage=1".to_string()]);
    let out = run(args).await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "influx failed: {stdout}\n{stderr}");
    assert!(!stdout.contains("ERR"), "influx reported an error: {stdout}\n{stderr}");

    // With a database and precision, and a line with an explicit timestamp.
    let mut args = base.clone();
    args.extend(
        [
            "-database",
            "telegraf",
            "-precision",
            "s",
            "-execute",
            "INSERT mem,host=b used=2i,free=3.5 1700000000",
        ]
        .map(String::from),
    );
    let out = run(args).await.expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("ERR"),
        "influx failed: {stdout}"
    );

    // A bad line is reported by the CLI.
    let mut args = base.clone();
    args.extend(["-execute".to_string(), "INSERT cpu,host=a usage=oops".to_string()]);
    let out = run(args).await.expect("join");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("invalid value \\\"oops\\\"") || all.contains("invalid value \"oops\""),
        "{all}"
    );

    server.abort();
    let dump = srv.dump();
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 3, "{dump}");
    assert!(lines[0].starts_with("{__name__=\"cpu_usage\", host=\"a\"} "), "{dump}");
    assert!(lines[0].ends_with("=1"), "{dump}");
    assert_eq!(
        lines[1],
        "{__name__=\"mem_free\", db=\"telegraf\", host=\"b\"} 1700000000000=3.5"
    );
    assert_eq!(
        lines[2],
        "{__name__=\"mem_used\", db=\"telegraf\", host=\"b\"} 1700000000000=2"
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}
