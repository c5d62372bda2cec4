//! The dashboard in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. Run by `make test-browser`, which installs them;
//! ignored by a plain `cargo test` because it needs them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ephemera_domain::Status;
use ephemera_tests::fixtures::*;
use ephemera_tests::{edit, Platform};
use ephemera_wiring::platform;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> (Driver, String) {
    let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} does not start ({e}): `make test-browser` installs it"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Driver(child), format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and chromedriver: run `make test-browser`"]
async fn a_person_sees_the_environments_and_can_filter_them() {
    let p = Platform::start().await;
    // Two pull requests (one of them closed) and two developers.
    assert_eq!(p.deliver("pull_request", "d-7", OPENED).await.0, 202);
    let other = edit(OPENED, &[("number", json!(8)), ("pull_request.number", json!(8))]);
    assert_eq!(p.deliver("pull_request", "d-8", &other).await.0, 202);
    let service = platform::selfservice(&p.config.shared, &p.config.selfservice, &p.functions.selfservice);
    for who in ["kyle", "platform-admin"] {
        let caller = service.caller(&format!("arn:aws:iam::123456789012:user/{who}")).unwrap();
        service.create(&caller, Default::default()).await.unwrap();
    }
    p.wait_for(ENVIRONMENT, Status::Ready).await;
    p.wait_for("dev-kyle", Status::Ready).await;
    p.wait_for("dev-platform-admin", Status::Ready).await;
    let closed = edit(CLOSED, &[("number", json!(8)), ("pull_request.number", json!(8))]);
    assert_eq!(p.deliver("pull_request", "d-8-close", &closed).await.0, 202);

    let (_driver, webdriver) = chromedriver();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1366,900"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser =
        ClientBuilder::new(connector).capabilities(caps).connect(&webdriver).await.expect("a Chromium session");

    let result = async {
        browser.goto(&format!("{}/", p.base_url)).await?;
        assert_eq!(browser.title().await?, "Ephemera: environments");
        // Wait for the closed pull request to leave the live view (the page refreshes itself).
        let deadline = Instant::now() + Duration::from_secs(40);
        let rows = loop {
            let rows = browser.find_all(Locator::Css("#environments tbody tr")).await?;
            if rows.len() == 3 || Instant::now() > deadline {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            browser.refresh().await?;
        };
        assert_eq!(rows.len(), 3, "two developers and one open pull request");
        let table = browser.find(Locator::Id("environments")).await?.text().await?;
        for seen in [ENVIRONMENT, "dev-kyle", "dev-platform-admin", "acme/todo-app", "#7", "READY", "a3b9c1d"] {
            assert!(table.contains(seen), "the table shows {seen:?}:\n{table}");
        }
        assert!(!table.contains("pr-8-"), "closed environments are not in the live view:\n{table}");
        let header = browser.find(Locator::Css("#environments thead")).await?.text().await?;
        for column in [
            "Environment",
            "Kind",
            "Repository / PR",
            "Owner",
            "Commit",
            "Status",
            "Age",
            "Expires",
            "Est. cost",
            "Preview",
        ] {
            assert!(header.contains(column), "column {column:?} in {header:?}");
        }
        let pr_link = browser.find(Locator::LinkText("#7")).await?.attr("href").await?;
        assert_eq!(pr_link.as_deref(), Some("https://github.com/acme/todo-app/pull/7"));

        // Filter as a person would: type into the search box and submit.
        let search = browser.find(Locator::Css("input[name=q]")).await?;
        search.send_keys("platform-admin").await?;
        browser.find(Locator::Css("button[type=submit]")).await?.click().await?;
        // The click starts a navigation: wait for the filtered page before reading it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !browser.current_url().await?.as_str().contains("q=platform-admin") {
            assert!(Instant::now() < deadline, "the filter form did not navigate");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser.wait().for_element(Locator::Css("#environments tbody tr")).await?;
        let rows = browser.find_all(Locator::Css("#environments tbody tr")).await?;
        assert_eq!(rows.len(), 1);
        assert!(rows[0].text().await?.contains("dev-platform-admin"));
        assert!(browser.current_url().await?.as_str().contains("q=platform-admin"));

        // The status filter, and a filter nothing matches.
        browser.goto(&format!("{}/?status=DELETED", p.base_url)).await?;
        let table = browser.find(Locator::Id("environments")).await?.text().await?;
        assert!(table.contains("pr-8-") && table.contains("DELETED"), "{table}");
        browser.goto(&format!("{}/?q=no-such-thing", p.base_url)).await?;
        assert_eq!(browser.find(Locator::Id("empty")).await?.text().await?, "No environments match.");

        // Laid out for a laptop screen: the table fits the window's width.
        browser.goto(&format!("{}/", p.base_url)).await?;
        let widths =
            browser.execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![]).await?;
        let (scroll, inner) = (widths[0].as_f64().unwrap(), widths[1].as_f64().unwrap());
        assert!(scroll <= inner + 1.0, "no horizontal scrolling at 1366 px: {scroll} > {inner}");
        if let Ok(dir) = std::env::var("EPHEMERA_SCREENSHOT_DIR") {
            let png = browser.screenshot().await?;
            std::fs::write(std::path::Path::new(&dir).join("dashboard.png"), png).unwrap();
        }

        // The environment's page, as a person reaches it: its name in the list is a link.
        browser.find(Locator::LinkText(ENVIRONMENT)).await?.click().await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !browser.current_url().await?.as_str().ends_with(&format!("/environments/{ENVIRONMENT}")) {
            assert!(Instant::now() < deadline, "the name did not lead to the environment's page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser.wait().for_element(Locator::Id("timeline")).await?;
        assert_eq!(browser.title().await?, format!("Ephemera: {ENVIRONMENT}"));
        assert_eq!(browser.find(Locator::Id("status")).await?.text().await?, "READY");
        let timeline = browser.find(Locator::Id("timeline")).await?.text().await?;
        for seen in ["Requested up", "Creating", "Ready"] {
            assert!(timeline.contains(seen), "the timeline shows {seen:?}:\n{timeline}");
        }
        let resources = browser.find(Locator::Id("resources")).await?.text().await?;
        assert!(resources.contains("AWS::DynamoDB::Table"), "the stack's resources:\n{resources}");
        assert!(browser.find(Locator::Id("cost")).await?.text().await?.contains("so far"));
        let moments = browser.find_all(Locator::Css("#timeline tbody tr")).await?.len();
        let plot = browser.find(Locator::Css("#cost-plot polyline")).await?.attr("points").await?.unwrap_or_default();
        assert_eq!(plot.split(' ').count(), moments + 1, "a point per moment, and now: {plot}");
        let pr = browser.find(Locator::LinkText("#7")).await?.attr("href").await?;
        assert_eq!(pr.as_deref(), Some("https://github.com/acme/todo-app/pull/7"));
        browser.find(Locator::LinkText("← All environments")).await?.click().await?;
        browser.wait().for_element(Locator::Id("environments")).await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    result.expect("browser session");
    p.stop().await;
}
