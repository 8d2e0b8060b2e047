//! What the emulator keeps of a task, and the one pure rule of how its state moves. A leaf
//! below the emulator's state, which holds these; the handlers beside it read and change them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::EmulatorConfig;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a task moves from `PENDING` through `RUNNING` to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSteps {
    /// By the emulator's clock: `PENDING` for the first duration, `RUNNING` for the second.
    Clock {
        /// How long it stays `PENDING`.
        pending: Duration,
        /// How long it then stays `RUNNING`.
        running: Duration,
    },
    /// By queries of it: each of `PENDING` and `RUNNING` lasts this many queries.
    Polls(u32),
}

impl Default for TaskSteps {
    fn default() -> Self {
        TaskSteps::Clock {
            pending: Duration::from_secs(1),
            running: Duration::from_secs(1),
        }
    }
}

/// What a task makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Transcription,
    Image,
    /// An image from the messages protocol (wan2.6, `image-generation/generation`): the same
    /// PNGs, answered as `choices` the way the SDK's `ImageGeneration` reads them.
    Generation,
    Video,
}

/// One file of a transcription, as the emulator received it.
#[derive(Debug, Clone)]
pub(crate) struct File {
    pub(crate) url: String,
    /// What was received, or why the file fails (code, message).
    pub(crate) outcome: Result<String, (String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) account: usize,
    pub(crate) model: String,
    pub(crate) kind: Kind,
    pub(crate) submitted: SystemTime,
    /// Queries of it so far.
    pub(crate) polls: u32,
    pub(crate) canceled: bool,
    pub(crate) failure: Option<(String, String)>,
    pub(crate) files: Vec<File>,
    pub(crate) images: u64,
    pub(crate) diarization: bool,
    pub(crate) prompt: String,
    /// The submit's body as received (tests snapshot it).
    pub(crate) request: Value,
    /// Its place in the order of submits (lists are in that order).
    pub(crate) seq: u64,
}

/// A voice an account enrolled (CosyVoice voice cloning). Kept until deleted: the service
/// forgets a voice only after a year unused, longer than any emulator runs.
#[derive(Debug, Clone)]
pub(crate) struct Voice {
    pub(crate) account: usize,
    pub(crate) target_model: String,
    pub(crate) prefix: String,
    /// The sample it was cloned from (its `resource_link`), replaced by `update_voice`.
    pub(crate) url: String,
    pub(crate) created: SystemTime,
    pub(crate) modified: SystemTime,
    /// Its place in the order of creates (lists are in that order).
    pub(crate) seq: u64,
}

/// The task state of the emulator: tasks, the query windows of the accounts, and the voices
/// the accounts enrolled.
#[derive(Default)]
pub(crate) struct Tasks {
    pub(crate) tasks: std::sync::Mutex<HashMap<String, Task>>,
    /// By voice id.
    pub(crate) voices: std::sync::Mutex<HashMap<String, Voice>>,
    pub(crate) voices_created: std::sync::atomic::AtomicU64,
    /// Per account: when its recent queries arrived (all of them, refused ones too).
    pub(crate) windows: std::sync::Mutex<HashMap<usize, VecDeque<Instant>>>,
    pub(crate) submitted: std::sync::atomic::AtomicU64,
    pub(crate) queries: std::sync::atomic::AtomicU64,
    pub(crate) throttled: std::sync::atomic::AtomicU64,
    pub(crate) max_per_second: std::sync::atomic::AtomicU64,
}

impl Tasks {
    /// The body a task was submitted with.
    pub(crate) fn request(&self, task_id: &str) -> Option<Value> {
        lock(&self.tasks).get(task_id).map(|t| t.request.clone())
    }

    /// Tasks by state, now (a stats read is not a query: it moves nothing).
    pub(crate) fn by_state(
        &self,
        now: SystemTime,
        config: &EmulatorConfig,
    ) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for task in lock(&self.tasks).values() {
            *counts
                .entry(status_of(task, now, config).to_owned())
                .or_insert(0) += 1;
        }
        counts
    }

    /// Forgets tasks past their lifetime (a day) and a bit.
    pub(crate) fn sweep(&self, now: SystemTime, lifetime: Duration) {
        lock(&self.tasks).retain(|_, t| {
            now.duration_since(t.submitted)
                .map_or(true, |age| age < lifetime + Duration::from_secs(3600))
        });
    }
}

/// The state of a task at an age, after some queries: one pure rule.
pub(crate) fn state_at(
    canceled: bool,
    failed: bool,
    age: Duration,
    polls: u32,
    steps: TaskSteps,
    lifetime: Duration,
) -> &'static str {
    if age >= lifetime {
        return "UNKNOWN";
    }
    if canceled {
        return "CANCELED";
    }
    let phase = match steps {
        TaskSteps::Clock { pending, running } => {
            if age < pending {
                0
            } else if age < pending + running {
                1
            } else {
                2
            }
        }
        TaskSteps::Polls(n) => (polls / n.max(1)).min(2),
    };
    match (phase, failed) {
        (0, _) => "PENDING",
        (1, _) => "RUNNING",
        (_, true) => "FAILED",
        (_, false) => "SUCCEEDED",
    }
}

pub(crate) fn status_of(task: &Task, now: SystemTime, config: &EmulatorConfig) -> &'static str {
    state_at(
        task.canceled,
        task.failure.is_some(),
        now.duration_since(task.submitted).unwrap_or(Duration::ZERO),
        task.polls,
        config.task_steps,
        config.task_lifetime,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn tasks_move_by_the_clock_or_by_queries_and_end_once() {
        let clock = TaskSteps::Clock {
            pending: Duration::from_secs(1),
            running: Duration::from_secs(2),
        };
        let at = |secs: u64, failed: bool| {
            state_at(false, failed, Duration::from_secs(secs), 0, clock, DAY)
        };
        assert_eq!(
            [
                at(0, false),
                at(1, false),
                at(2, false),
                at(3, false),
                at(3, true)
            ],
            ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED", "FAILED"]
        );
        let polls = |n: u32| state_at(false, false, Duration::ZERO, n, TaskSteps::Polls(2), DAY);
        assert_eq!(
            [polls(0), polls(1), polls(2), polls(3), polls(4), polls(100)],
            [
                "PENDING",
                "PENDING",
                "RUNNING",
                "RUNNING",
                "SUCCEEDED",
                "SUCCEEDED"
            ]
        );
        // Cancelled stays cancelled; a day later nothing is known.
        assert_eq!(
            state_at(true, false, Duration::from_secs(9), 9, clock, DAY),
            "CANCELED"
        );
        assert_eq!(state_at(false, false, DAY, 0, clock, DAY), "UNKNOWN");
        assert_eq!(state_at(true, true, DAY, 0, clock, DAY), "UNKNOWN");
    }
}
