//! What the in-process tests share: a bounded wait.

use std::time::{Duration, Instant};

/// Polls `done` every 50 ms for at most `within`.
pub async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}
