//! Exit codes, one per class of error, and how an error is told on stderr.

use dashscope_oss::{Error, Throttle};

/// Everything succeeded.
pub const EXIT_OK: u8 = 0;
/// A batch partly failed.
pub const EXIT_PARTIAL: u8 = 1;
/// A command line that cannot be understood.
pub const EXIT_USAGE: u8 = 2;
/// Authentication or permission.
pub const EXIT_AUTH: u8 = 3;
/// Rate limit or quota.
pub const EXIT_RATE: u8 = 4;
/// A local file.
pub const EXIT_FILE: u8 = 5;
/// Network.
pub const EXIT_NETWORK: u8 = 6;
/// The service refused or answered nonsense.
pub const EXIT_SERVICE: u8 = 7;
/// A task ended without success (failed, cancelled, unknown).
pub const EXIT_TASK: u8 = 8;
/// Gave up waiting for a task.
pub const EXIT_WAIT: u8 = 9;
/// A failure of the tool itself.
pub const EXIT_SOFTWARE: u8 = 70;
/// stdout could not be written (a closed pipe, a full disk): `EX_IOERR` of sysexits.h.
pub const EXIT_OUTPUT: u8 = 74;
/// Interrupted by SIGINT (128 + 2, the shell's convention).
pub const EXIT_SIGINT: u8 = 130;
/// Stopped by SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;

/// The exit code of an error's class.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::InvalidApiKey(_)
        | Error::StorageNotInRegion { .. }
        | Error::MissingApiKey
        | Error::AccessDenied(_)
        | Error::Arrearage(_) => EXIT_AUTH,
        Error::RateLimited(_) | Error::QuotaExhausted(_) => EXIT_RATE,
        Error::Io { .. }
        | Error::NotAFile { .. }
        | Error::LocalFileRefused { .. }
        | Error::EmptyFile { .. }
        | Error::FileTooLarge { .. }
        | Error::UrlExpired { .. }
        | Error::LinkExpired(_) => EXIT_FILE,
        Error::Transport(_) | Error::Timeout(_) | Error::DeadlineExceeded { .. } => EXIT_NETWORK,
        Error::Config(_) | Error::InvalidRequest(_) => EXIT_USAGE,
        Error::TaskFailed { .. } | Error::TaskCanceled { .. } | Error::TaskUnknown { .. } => {
            EXIT_TASK
        }
        Error::WaitTimeout { .. } => EXIT_WAIT,
        Error::MayHaveSubmitted(inner) => exit_code(inner),
        _ => EXIT_SERVICE,
    }
}

/// What to do about an error, in a few words.
pub(crate) fn hint(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::MissingApiKey => "set DASHSCOPE_API_KEY (or try --emulator)",
        Error::InvalidApiKey(_) => {
            "check DASHSCOPE_API_KEY; keys work only in their own region (--region)"
        }
        Error::StorageNotInRegion { .. } => {
            "upload with a key of beijing or singapore (--region), or send a public URL instead of the file"
        }
        Error::RateLimited(_) => match e.throttle() {
            Some(Throttle::Tokens) => {
                "the per-minute token limit: the retries waited about a minute; send fewer or smaller requests, or raise the limit"
            }
            Some(Throttle::Burst) => "requests rose too quickly: ramp up more gradually",
            _ => "wait and retry; credentials are limited to 100 requests per second per model",
        },
        Error::QuotaExhausted(_) => {
            "a free allocation is used up; waiting will not help (paid use is switched on in the console)"
        }
        Error::FileTooLarge { .. } => "this model does not take files this large",
        Error::ModelNotFound(_) => "check the model name",
        Error::DeadlineExceeded { .. } => {
            "the host did not answer in time: check the network, or allow more (--deadline, --read-timeout)"
        }
        Error::Transport(_) | Error::Timeout(_) => {
            "check the network and the base URL (--base-url, --region)"
        }
        Error::InvalidUrl(_) => "upload the file again for this model and account",
        Error::LinkExpired(_) => "result links last 24 hours: run the task again",
        Error::MayHaveSubmitted(_) => {
            "look for the task (dashscope task list) before submitting again"
        }
        Error::UnsupportedOperation(_) => "only a PENDING task can be cancelled",
        _ => return None,
    })
}

/// Prints an error on stderr: what, the code and request id, and a hint.
pub fn report(e: &Error, path: Option<&str>) {
    let mut line = String::from("dashscope: ");
    let message = e.to_string();
    if let Some(p) = path.filter(|p| !message.starts_with(p)) {
        line.push_str(&format!("{p}: "));
    }
    line.push_str(&message);
    if let Some(code) = e.code()
        && !line.contains(code)
    {
        line.push_str(&format!(" [code {code}]"));
    }
    if let Some(id) = e.request_id()
        && !line.contains(id)
    {
        line.push_str(&format!(" [request id {id}]"));
    }
    if let Some(h) = hint(e) {
        line.push_str(&format!("\n  hint: {h}"));
    }
    note!("{line}");
}
