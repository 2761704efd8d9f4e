//! The binary stops gracefully on SIGTERM as on Ctrl-C: listeners are told (close 1001) and
//! the process exits in a few seconds.

mod common;

use common::close_of;
use std::process::Command;
use std::time::{Duration, Instant};
use stentor::client::Api;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websocket_listeners_with_1001_and_exits_within_5_s() {
    let data = std::env::temp_dir().join(format!("stentor-test-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::demo_process(&data);
    let api = Api::new(&base);
    let ticket = api.ticket("demo").await.unwrap();
    let (mut ws, hello) = api.connect("demo", &ticket.ticket).await.unwrap();
    assert_eq!(hello["event"], "hello");

    let pid = child.id().to_string();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (code, reason) = close_of(&mut ws).await;
    assert_eq!(code, 1001, "{reason}");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&data);
}
