use super::*;

#[tokio::test]
async fn readiness_names_what_is_wrong_with_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().join("data");
    let app = App::open(config).unwrap();
    let ready = http::ready::Readiness::new(app.db.clone(), app.delivery.clone());
    let check = || async {
        // Each check starts afresh: the reuse window is not what these tests are about.
        ready.forget();
        ready.check().await
    };
    assert_eq!(check().await, None);
    app.delivery.quiet_since(0);
    assert_eq!(
        check().await,
        Some("the outbox worker shows no sign of life")
    );
    app.delivery.stopped();
    assert_eq!(check().await, Some("the outbox worker has stopped"));
}
