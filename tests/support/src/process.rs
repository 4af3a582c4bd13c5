//! A server process of one test: started with its output in a log file,
//! from `/` with no standard input, and killed (SIGKILL) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::env::START_HINT;

/// A program with its arguments that can be started, killed, paused and
/// started again, as a crash or a hung host would.
#[derive(Debug)]
pub struct Process {
    program: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Describes `program args…`, writing its output to `log`; nothing
    /// runs until [`start`](Self::start).
    pub fn new(program: &str, args: Vec<String>, log: impl Into<PathBuf>) -> Process {
        Process {
            program: program.to_owned(),
            args,
            log: log.into(),
            child: None,
        }
    }

    /// Starts it (killing a running instance first). The log is appended
    /// to, so it covers every run.
    ///
    /// # Panics
    ///
    /// If the program cannot be run, naming [`START_HINT`].
    pub fn start(&mut self) {
        self.kill();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("create the log {}: {e}", self.log.display()));
        let err = out.try_clone().expect("clone the log handle");
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} ({e}); {START_HINT}", self.program));
        self.child = Some(child);
    }

    /// Kills it at once (SIGKILL), like a crash, and reaps it. Nothing
    /// happens when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process ID (`None` while killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP: the process keeps its connections but answers nothing.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn pause(&self) {
        signal(self.pid().expect("the process is running"), "-STOP");
    }

    /// SIGCONT after [`pause`](Self::pause).
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn resume(&self) {
        signal(self.pid().expect("the process is running"), "-CONT");
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `bytes` bytes of its log, for a failure message.
    pub fn log_tail(&self, bytes: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut start = text.len().saturating_sub(bytes);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` (such as `-STOP`) to process `pid` with `kill`.
///
/// # Panics
///
/// If `kill` fails.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn start_pause_resume_kill() {
        let dir = TempDir::new("test-support-process");
        let mut p = Process::new("sleep", vec!["30".into()], dir.join("log"));
        assert_eq!(p.pid(), None);
        p.start();
        let pid = p.pid().expect("running");
        p.pause();
        p.resume();
        p.kill();
        assert_eq!(p.pid(), None);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
