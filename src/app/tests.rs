use super::*;

async fn readiness(app: &App) -> Option<&'static str> {
    // Each check starts afresh: the reuse window is not what these tests are about.
    *app.inner.readiness.lock().unwrap() = None;
    app.readiness().await
}

#[tokio::test]
async fn readiness_names_what_is_wrong_with_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("data");
    let app = App::open(config).unwrap();
    assert_eq!(readiness(&app).await, None);

    app.inner.outbox_heartbeat.store(0, Relaxed);
    assert_eq!(
        readiness(&app).await,
        Some("the outbox worker shows no sign of life")
    );

    app.inner.outbox_alive.store(false, Relaxed);
    assert_eq!(readiness(&app).await, Some("the outbox worker has stopped"));

    app.inner.outbox_alive.store(true, Relaxed);
    let now = unix_ms(SystemTime::now());
    app.inner.outbox_heartbeat.store(now, Relaxed);
    assert_eq!(readiness(&app).await, None, "ready again");
}
