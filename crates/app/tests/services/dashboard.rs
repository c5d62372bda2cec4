//! The dashboard's rows: every environment, newest first, filtered.

use chrono::Duration;
use ephemera_app::dashboard::{Dashboard, Filter};
use ephemera_app::selfservice::CreateRequest;
use ephemera_domain::Status;

use crate::harness::*;

#[tokio::test]
async fn rows_are_newest_first_and_filtered() {
    let w = World::new();
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    w.clock.advance(Duration::minutes(5));
    let s = w.selfservice_with(World::selfservice_settings());
    s.create(&s.caller(KYLE).unwrap(), CreateRequest::default()).await.unwrap();
    s.create(&s.caller(ALICE).unwrap(), CreateRequest::default()).await.unwrap();
    w.registry.edit(&name("dev-alice"), |e| e.status = Status::Deleted);
    w.clock.advance(Duration::minutes(5));
    let dashboard = Dashboard::new(w.registry.clone(), w.registry.clone(), w.clock.clone());
    let rows = dashboard.rows(&Filter::default(), None).await.unwrap().rows;
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["dev-kyle", PR], "deleted ones hidden, newest first");
    assert_eq!(
        (rows[1].age_seconds, rows[1].pull_request_url.as_deref()),
        (600, Some("https://github.com/acme/todo-app/pull/7"))
    );
    let all = dashboard.rows(&Filter { all: Some(true), ..Default::default() }, None).await.unwrap().rows;
    assert_eq!(all.len(), 3);
    let prs = dashboard
        .rows(&Filter { kind: Some("pr".into()), q: Some("TODO".into()), ..Default::default() }, None)
        .await
        .unwrap()
        .rows;
    assert_eq!(prs.len(), 1);
    let deleted = dashboard.rows(&Filter { status: Some("deleted".into()), ..Default::default() }, None).await.unwrap();
    assert_eq!(deleted.rows[0].name, "dev-alice");
}

#[tokio::test]
async fn rows_come_a_page_at_a_time() {
    let w = World::new();
    let s = w.selfservice_with(World::selfservice_settings());
    for who in [KYLE, ALICE] {
        s.create(&s.caller(who).unwrap(), CreateRequest::default()).await.unwrap();
    }
    w.deliver("pull_request", "d1", fixtures::OPENED).await.unwrap();
    let dashboard = Dashboard::new(w.registry.clone(), w.registry.clone(), w.clock.clone());
    let two = Filter { limit: Some(2), ..Default::default() };
    let first = dashboard.rows(&two, None).await.unwrap();
    assert_eq!(first.rows.len(), 2);
    assert_eq!(first.next.as_deref(), Some("dev-kyle"), "name order: dev-alice, dev-kyle, then the pull request");
    let after = ephemera_domain::EnvironmentName::parse("dev-kyle").unwrap();
    let second = dashboard.rows(&two, Some(&after)).await.unwrap();
    assert_eq!((second.rows.len(), second.rows[0].name.as_str(), second.next), (1, PR, None));
}

#[tokio::test]
async fn an_environments_page_has_its_timeline_and_cost_over_time() {
    use ephemera_app::history::RecordingBus;
    use ephemera_app::ports::EventBus;
    let w = World::new();
    w.ready_pr().await;
    // The platform's bus keeps what it publishes; here, what was published, an hour apart.
    let recording = RecordingBus {
        bus: std::sync::Arc::new(ephemera_app::memory::MemoryBus::new()),
        history: w.registry.clone(),
        clock: w.clock.clone(),
    };
    w.registry.edit(&name(PR), |e| e.cost_monthly_usd = Some(730.0));
    for event in w.bus.take() {
        recording.publish(&[event]).await.unwrap();
        w.clock.advance(chrono::Duration::hours(1));
    }
    let dashboard = Dashboard::new(w.registry.clone(), w.registry.clone(), w.clock.clone());
    let page = dashboard.environment(&name(PR)).await.unwrap().unwrap();
    let whats: Vec<&str> = page.timeline.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(whats, ["Requested up", "Creating", "Ready"]);
    // Creating at +1 h, now +3 h: two hours at 1 USD an hour.
    assert_eq!(page.cost.last().unwrap().1, 2.0);
    assert_eq!(page.stack, format!("ephemera-{PR}"));
    assert!(dashboard.environment(&name("pr-9-acme-todo-app-6acfdc9491")).await.unwrap().is_none());
}
