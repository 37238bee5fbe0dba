//! The shared transport conformance suite against notify-warp.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_passes_the_transport_suite() {
    let (service, pipeline) = notify_core::testkit::memory_service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = notify_warp::routes(service.clone());
    let server = tokio::spawn(warp::serve(app).incoming(listener).run());
    notify_core::testkit::transport::run_all(addr).await;
    service.shutdown();
    server.abort();
    pipeline.shutdown(Duration::from_secs(2)).await;
}
