//! Logs readiness once per change of state: a line when a component goes DOWN (with the
//! reason) and one when it is UP again, so an operator sees a backend outage and its end
//! without a line per retry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use notify_core::NotifyService;

/// Checks readiness every `every` and logs the changes. Abort the handle to stop it.
pub(crate) fn spawn_readiness_log(
    service: Arc<NotifyService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: HashMap<&'static str, bool> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (component, result) in service.readiness().await {
                let up = result.is_ok();
                if last.insert(component, up) == Some(up) {
                    continue;
                }
                match result {
                    Ok(()) => tracing::info!(component, "ready: {component} UP"),
                    Err(e) => {
                        tracing::warn!(component, error = %e, "not ready: {component} DOWN (retrying)")
                    }
                }
            }
        }
    })
}
