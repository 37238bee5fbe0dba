//! The preference-store conformance suite of notify-core, against a real server.

mod common;

use std::sync::Arc;

use notify_core::PreferenceStore;
use notify_mongo::{MongoPreferences, MongoStore};
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_preferences_conformance() {
    let Some(uri) = common::uri() else { return };
    let made: Arc<Mutex<Vec<MongoStore>>> = Arc::default();
    notify_core::testkit::prefs::run_all(|| {
        let uri = uri.clone();
        let made = made.clone();
        async move {
            let store = common::fresh_store(&uri, "prefs").await;
            made.lock().await.push(store.clone());
            Arc::new(MongoPreferences::new(&store).await.expect("indexes"))
                as Arc<dyn PreferenceStore>
        }
    })
    .await;
    for store in made.lock().await.iter() {
        common::drop(store).await;
    }
}
