//! Messages for people reading a test run.

/// Writes `message` to the test's standard error as a line, past the test
/// harness's output capture, so that it shows in a plain `cargo test`.
pub fn say(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
}
