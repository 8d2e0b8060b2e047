//! `dashscope emulator` as a child process, measured from /proc (tests and benches share it).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `dashscope emulator`; SIGTERM and wait when dropped, however the caller ends.
pub struct EmulatorProcess {
    /// `http://127.0.0.1:PORT`, from its first stdout line.
    pub base: String,
    /// Its process id.
    pub pid: u32,
    child: Child,
}

impl EmulatorProcess {
    /// Starts `binary emulator ARGS…` and reads its base URL.
    pub fn spawn(binary: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .arg("emulator")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the emulator");
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        // Guarded from here on: a failed read still stops the child.
        let mut process = Self {
            base: String::new(),
            pid,
            child,
        };
        read.expect("the emulator's first line");
        process.base = line
            .trim()
            .trim_start_matches("DASHSCOPE_BASE_URL=")
            .to_owned();
        process
    }

    /// A `/proc/PID/status` field in its unit (KiB for memory), 0 if unreadable.
    pub fn status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid)).map_or(0, |d| d.count())
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let _ = self.child.wait();
    }
}
