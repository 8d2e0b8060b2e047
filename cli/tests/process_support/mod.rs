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

    /// A `/proc/PID/status` field in its unit (KiB for memory). Panics when it cannot be read:
    /// a check that measured nothing must not pass.
    pub fn status(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or_else(|| {
                panic!(
                    "cannot read {field} of process {} from /proc: this check needs Linux",
                    self.pid
                )
            })
    }

    /// Open file descriptors. Panics when /proc cannot tell.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or_else(|e| {
                panic!(
                    "cannot list /proc/{}/fd ({e}): this check needs Linux",
                    self.pid
                )
            })
    }

    /// Waits until the process has at most `fds` descriptors open (its connections closed), for
    /// up to `deadline`; the count seen last when it never gets there.
    pub fn settle_fds(&self, fds: usize, deadline: std::time::Duration) -> Result<(), usize> {
        let started = std::time::Instant::now();
        loop {
            let open = self.fds();
            if open <= fds {
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(open);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl EmulatorProcess {
    /// Brings the emulator to rest and returns its stats: its clock moved past every object's
    /// and credential's lifetime (so it sweeps them), and its descriptors back to `at_rest`
    /// (every connection closed; a 60 s deadline that only a leak waits out).
    pub async fn at_rest(
        &self,
        http: &reqwest::Client,
        at_rest: usize,
        round: usize,
    ) -> serde_json::Value {
        let moved = http
            .post(format!("{}/emulator/v1/clock", self.base))
            .body(r#"{"advance_seconds": 180000}"#)
            .send()
            .await
            .expect("move the clock");
        assert!(moved.status().is_success(), "clock: {}", moved.status());
        if let Err(open) = self.settle_fds(at_rest, std::time::Duration::from_secs(60)) {
            panic!("round {round}: {open} descriptors still open, {at_rest} at rest before");
        }
        stats(http, &self.base).await
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

/// Judges heap samples taken at rest after each round, warm-up rounds already left out: a leak
/// is growth that goes on, not a level that was reached once. `Err` explains a leak.
///
/// At rest (every connection closed, every object and credential expired and swept) the
/// emulator's live heap should come back to the same level after every round; what the
/// allocator keeps cached is not in these figures (see `Stats::heap_bytes`). So the rule is:
/// the median of the later half of the rounds may not exceed the median of the earlier half by
/// more than `tolerance` bytes. A leak of `b` bytes per round puts the medians `b * n / 2`
/// apart (n samples); one odd sample moves neither median.
pub fn judge_heap(samples: &[u64], tolerance: u64) -> Result<(), String> {
    if samples.len() < 4 {
        return Err(format!("{} samples are too few to judge", samples.len()));
    }
    let half = samples.len() / 2;
    let median = |part: &[u64]| {
        let mut sorted = part.to_vec();
        sorted.sort_unstable();
        sorted[sorted.len() / 2]
    };
    let (early, late) = (
        median(&samples[..half]),
        median(&samples[samples.len() - half..]),
    );
    if late > early + tolerance {
        return Err(format!(
            "the heap at rest keeps growing: median {late} bytes over the last {half} rounds \
             against {early} over the first {half}, more than {tolerance} apart; \
             samples: {samples:?}"
        ));
    }
    Ok(())
}

/// The emulator's `/emulator/v1/stats` at `base`.
pub async fn stats(http: &reqwest::Client, base: &str) -> serde_json::Value {
    http.get(format!("{base}/emulator/v1/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

/// An MP4-looking file of `size` bytes (the emulator sniffs a video), left to settle so that
/// its fingerprint can be trusted (see `dashscope_oss::cache`).
pub fn write_video(path: &std::path::Path, size: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    block[..12].copy_from_slice(b"\0\0\0\x18ftypmp42");
    let mut left = size;
    let mut first = true;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
        if first {
            block[..12].fill(0);
            first = false;
        }
    }
    f.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(300));
}
