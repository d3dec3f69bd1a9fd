//! The HTML status page, rendered by headless Chromium (installed by
//! .ci/run): the DOM it builds shows each member's verdict, whether it is
//! published and why, its latency sparkline, the event timeline, and a
//! screenshot renders.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use route53_failover::demo::Mode;

fn chromium(args: &[&str], profile: &std::path::Path) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--timeout=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (Debian package chromium; .ci/run installs it)")
}

/// The DOM Chromium builds from the page at `url`.
async fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    let (url, profile) = (url.to_string(), profile.to_path_buf());
    let out = tokio::task::spawn_blocking(move || chromium(&["--dump-dom", &url], &profile))
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_verdicts_and_decisions_in_a_browser() {
    let (_store, eps, daemon) = three_regions(1, "5m").await;
    eps.set("eu-west-1", Mode::Fail);
    wait_until(
        "eu-west-1 is withdrawn",
        Duration::from_secs(15),
        || async {
            let m = daemon.member("eu-west-1").await;
            m.verdict == "unhealthy" && !m.published
        },
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/", daemon.base);
    let dom = dump_dom(&url, profile.path()).await;
    assert!(
        dom.contains("<h2>api.example.test A <small>2 of 3 published"),
        "{dom}"
    );
    let row = dom
        .split("<tr")
        .find(|r| r.contains("<td>eu-west-1</td>"))
        .unwrap_or_else(|| panic!("no eu-west-1 row in {dom}"));
    assert!(
        row.contains("class=\"pill unhealthy\">unhealthy</span>"),
        "{row}"
    );
    assert!(row.contains("<td><b>no</b></td>"), "published: no: {row}");
    assert!(
        row.contains("status: answered 503, expected 200"),
        "the reason is shown: {row}"
    );
    let healthy_rows = dom.matches("class=\"pill healthy\">healthy</span>").count();
    assert_eq!(healthy_rows, 2);
    // The last 15 minutes as an inline SVG: a latency line, red bars
    // where probes failed.
    let spark = row
        .split("<svg class=\"spark\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no sparkline in {row}"));
    assert!(
        spark.contains("<polyline") && spark.contains("<rect"),
        "{spark}"
    );
    assert!(
        spark.contains("failed"),
        "its title says the figures: {spark}"
    );
    // The timeline, newest first: the withdrawal after the verdict.
    let timeline = dom
        .split("<ol class=\"timeline\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline in {dom}"));
    let decided = timeline
        .find("eu-west-1 withdrawn: unhealthy")
        .unwrap_or_else(|| panic!("no withdrawal in {timeline}"));
    let failed = timeline
        .find("eu-west-1 verdict changed: healthy → unhealthy")
        .unwrap_or_else(|| panic!("no verdict change in {timeline}"));
    assert!(decided < failed, "newest first: {timeline}");

    let shot = profile.path().join("page.png");
    let out = tokio::task::spawn_blocking({
        let p = profile.path().to_path_buf();
        let arg = format!("--screenshot={}", shot.display());
        let url = url.clone();
        move || chromium(&[&arg, "--window-size=1200,600", &url], &p)
    })
    .await
    .unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a rendered page, {} bytes",
        png.len()
    );
    if let Ok(dir) = std::env::var("R53F_SCREENSHOT_DIR") {
        std::fs::copy(&shot, std::path::Path::new(&dir).join("status-page.png")).unwrap();
    }

    // Restored: the page's timeline holds the whole cycle, newest first.
    eps.set("eu-west-1", Mode::Serve);
    wait_until("eu-west-1 is restored", Duration::from_secs(15), || async {
        daemon.member("eu-west-1").await.published
    })
    .await;
    let dom = dump_dom(&url, profile.path()).await;
    let timeline = dom
        .split("<ol class=\"timeline\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no timeline in {dom}"));
    let cycle = [
        "eu-west-1 published: healthy (was unhealthy)",
        "eu-west-1 verdict changed: unhealthy → healthy",
        "eu-west-1 withdrawn: unhealthy (was healthy)",
        "eu-west-1 verdict changed: healthy → unhealthy (status: answered 503, expected 200)",
    ];
    let at: Vec<usize> = cycle
        .iter()
        .map(|line| {
            timeline
                .find(line)
                .unwrap_or_else(|| panic!("no {line:?} in {timeline}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "newest first: {timeline}"
    );
}
