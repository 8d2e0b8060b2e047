//! The task commands: `transcribe`, `image edit`, `video`, `task get|wait|cancel`. Each submits
//! through the library (local files uploaded there, for the task's model), waits with a spinner
//! showing the task's state on a terminal (state lines on stderr otherwise), and prints results.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use dashscope_oss::api::types;
use dashscope_oss::task::{Task, TaskFilter, TaskState, WaitOptions};
use dashscope_oss::{Client, Error};

use crate::Global;
use crate::exit::{EXIT_OK, EXIT_USAGE, exit_code, report};
use crate::output::Out;

/// What every task command shares.
#[derive(Args, Debug, Clone)]
pub struct TaskFlags {
    /// Print only the task id and exit; `dashscope task wait ID` gets the result later.
    #[arg(long = "async")]
    pub no_wait: bool,
    /// Seconds before the first query (doubling to 8 s between queries; at least 0.001).
    #[arg(long = "poll-interval", value_name = "SECS", default_value_t = 1.0)]
    pub poll_interval: f64,
    /// Give up waiting after SECS (default a day, as long as the service keeps a task); the
    /// task goes on; exit code 9.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// The model: paraformer-v2, fun-asr, qwen3-asr-flash-filetrans, ...
    #[arg(short, long)]
    pub model: String,
    /// Languages to expect, e.g. `zh,en`.
    #[arg(long, value_delimiter = ',')]
    pub language: Vec<String>,
    /// Tell speakers apart.
    #[arg(long)]
    pub diarize: bool,
    /// Print every file's transcript as JSON (one object for the task).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub task: TaskFlags,
    /// Audio or video files (local paths are uploaded first) or URLs; at most 100.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Edit an image (wanx2.1-imageedit): `--function` chooses the edit.
    Edit(ImageEditArgs),
}

#[derive(Args, Debug)]
pub struct ImageEditArgs {
    /// The model.
    #[arg(short, long, default_value = "wanx2.1-imageedit")]
    pub model: String,
    /// The edit: description_edit, description_edit_with_mask, stylization_all, expand, ...
    #[arg(long)]
    pub function: String,
    /// The image to edit (a path or URL).
    #[arg(long = "base-image", value_name = "IMAGE")]
    pub base_image: String,
    /// Where to edit (white) and where not (black).
    #[arg(long, value_name = "IMAGE")]
    pub mask: Option<String>,
    /// Images to make (1 to 4).
    // The range of `parameters.n` in the wanx2.1-imageedit documentation
    // (https://www.alibabacloud.com/help/en/model-studio/wanx-image-edit) and the spec's
    // ImageSynthesisParameters: anything else is a usage error here, not a refused task.
    #[arg(short, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=4))]
    pub n: i64,
    /// Write the result here (several: `out-1.png`, `out-2.png`, ...); without it the result
    /// URLs (valid 24 hours) are printed.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub task: TaskFlags,
    /// What to do.
    pub prompt: String,
}

#[derive(Args, Debug)]
pub struct VideoArgs {
    /// The model: wan2.2-kf2v-flash (first/last frame), wan2.2-i2v-flash (image to video), ...
    #[arg(short, long)]
    pub model: String,
    /// The first frame (first/last-frame models).
    #[arg(long = "first-frame", value_name = "IMAGE")]
    pub first_frame: Option<String>,
    /// The last frame (first/last-frame models).
    #[arg(long = "last-frame", value_name = "IMAGE")]
    pub last_frame: Option<String>,
    /// The first frame of an image-to-video model.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// 480P, 720P or 1080P.
    #[arg(long)]
    pub resolution: Option<String>,
    /// Write the video here; without it its URL (valid 24 hours) is printed.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub task: TaskFlags,
    /// What happens.
    pub prompt: String,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Print a task's state (its whole answer with --json).
    Get {
        /// The task id.
        id: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a task to end; print its result URLs (its whole answer with --json).
    Wait {
        /// The task id.
        id: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        task: TaskFlags,
    },
    /// Cancel a task that has not started.
    Cancel {
        /// The task id.
        id: String,
    },
    /// List the account's tasks, one line each (id, state, submit time): how to find a task
    /// whose submit answer was lost.
    List {
        /// Only this model's tasks.
        #[arg(long, short = 'm', value_name = "MODEL")]
        model: Option<String>,
        /// Only tasks in this state (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, …).
        #[arg(long, value_name = "STATE")]
        status: Option<String>,
        /// From, YYYYMMDDhhmmss (the service allows a span of 24 hours at most).
        #[arg(long, value_name = "TIME", requires = "to")]
        from: Option<String>,
        /// Until, YYYYMMDDhhmmss.
        #[arg(long, value_name = "TIME", requires = "from")]
        to: Option<String>,
        /// The page, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        page: i64,
        /// Tasks per page (at least 1).
        #[arg(
            long = "page-size",
            default_value_t = 10,
            value_parser = clap::value_parser!(i64).range(1..)
        )]
        page_size: i64,
        /// Print the whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The wait's options, and the spinner it drives (cleared by the caller whatever the end).
fn wait_options(
    flags: &TaskFlags,
    global: &Global,
) -> Result<(WaitOptions, Option<indicatif::ProgressBar>), u8> {
    let secs = |v: f64, name: &str| {
        Duration::try_from_secs_f64(v).map_err(|_| {
            note!("dashscope: --{name} must be a non-negative number of seconds");
            EXIT_USAGE
        })
    };
    let initial = secs(flags.poll_interval, "poll-interval")?;
    let mut options = WaitOptions::default().interval(initial, Duration::from_secs(8).max(initial));
    if let Some(t) = flags.timeout {
        options = options.timeout(secs(t, "timeout")?);
    }
    if global.quiet {
        return Ok((options, None));
    }
    if std::io::stderr().is_terminal() {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(120));
        let shown = spinner.clone();
        Ok((
            options.on_change(move |r| shown.set_message(format!("task {}", r.state()))),
            Some(spinner),
        ))
    } else {
        Ok((
            options.on_change(|r| {
                note!(
                    "dashscope: task {}: {}",
                    r.output.task_id.as_deref().unwrap_or("?"),
                    r.state()
                );
            }),
            None,
        ))
    }
}

/// Waits, the spinner cleared before anything else is printed.
async fn wait(
    client: &Client,
    id: &str,
    options: &WaitOptions,
    spinner: Option<indicatif::ProgressBar>,
) -> Result<types::TaskResponse, Error> {
    let end = client.wait_task(id, options).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    end
}

/// A request built from the flags, or the usage exit code.
fn built<T, E: std::fmt::Display>(request: Result<T, E>) -> Result<T, u8> {
    request.map_err(|e| {
        note!("dashscope: {e}");
        EXIT_USAGE
    })
}

/// Submits, then (unless `--async`) waits: the finished answer, or the exit code.
async fn run_task(
    client: &Client,
    global: &Global,
    flags: &TaskFlags,
    submitted: Result<Task, Error>,
) -> Result<Option<types::TaskResponse>, u8> {
    let (options, spinner) = wait_options(flags, global)?;
    let task = submitted.map_err(|e| {
        if let Some(s) = &spinner {
            s.finish_and_clear();
        }
        report(&e, None);
        exit_code(&e)
    })?;
    if flags.no_wait {
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        Out::new().line(&task.id)?;
        return Ok(None);
    }
    if !global.quiet && !std::io::stderr().is_terminal() {
        note!("dashscope: task {} submitted", task.id);
    }
    wait(client, &task.id, &options, spinner)
        .await
        .map(Some)
        .map_err(|e| {
            report(&e, None);
            exit_code(&e)
        })
}

/// `transcribe`: the exit code (`Err` for an early end).
pub async fn transcribe(client: &Client, global: &Global, args: TranscribeArgs) -> Result<u8, u8> {
    let mut parameters = types::TranscriptionParameters::builder();
    if !args.language.is_empty() {
        parameters = parameters.language_hints(args.language.clone());
    }
    if args.diarize {
        parameters = parameters.diarization_enabled(Some(true));
    }
    let input = if args.model.contains("filetrans") && args.files.len() == 1 {
        types::TranscriptionInput::builder().file_url(Some(args.files[0].clone()))
    } else {
        types::TranscriptionInput::builder().file_urls(args.files.clone())
    };
    let request: Result<types::TranscriptionRequest, _> = types::TranscriptionRequest::builder()
        .model(args.model.clone())
        .input(input)
        .parameters(parameters.try_into().ok())
        .try_into();
    let request = built(request)?;
    let Some(done) = run_task(
        client,
        global,
        &args.task,
        client.submit_transcription(&request).await,
    )
    .await?
    else {
        return Ok(EXIT_OK);
    };
    let files = client.transcriptions(&done).await;
    let mut out = Out::new();
    let mut failed = None;
    let several = files.len() > 1;
    let mut json_files = Vec::new();
    for file in &files {
        match &file.result {
            Ok(transcript) => {
                if args.json {
                    json_files.push(
                        serde_json::json!({"file_url": file.file_url, "transcript": transcript}),
                    );
                } else if several {
                    out.line(&format!("== {}\n{}", file.file_url, transcript.text()))?;
                } else {
                    out.line(&transcript.text())?;
                }
            }
            Err(e) => {
                if args.json {
                    json_files.push(serde_json::json!({
                        "file_url": file.file_url,
                        "error": {"message": e.to_string(), "code": e.code()}
                    }));
                }
                report(e, Some(&file.file_url));
                failed.get_or_insert(exit_code(e));
            }
        }
    }
    if args.json {
        let all = serde_json::json!({
            "task_id": done.output.task_id, "request_id": done.request_id, "files": json_files
        });
        out.line(&serde_json::to_string_pretty(&all).unwrap_or_default())?;
    }
    Ok(match (failed, files.iter().any(|f| f.result.is_ok())) {
        (None, _) => EXIT_OK,
        (Some(_), true) => crate::EXIT_PARTIAL,
        (Some(code), false) => code,
    })
}

/// `image edit`: the exit code (`Err` for an early end).
pub async fn image(client: &Client, global: &Global, command: ImageCommand) -> Result<u8, u8> {
    let ImageCommand::Edit(args) = command;
    let request: Result<types::ImageSynthesisRequest, _> = types::ImageSynthesisRequest::builder()
        .model(args.model.clone())
        .input(
            types::ImageSynthesisInput::builder()
                .function(Some(args.function.clone()))
                .prompt(Some(args.prompt.clone()))
                .base_image_url(Some(args.base_image.clone()))
                .mask_image_url(args.mask.clone()),
        )
        .parameters(
            types::ImageSynthesisParameters::builder()
                .n(Some(args.n))
                .try_into()
                .ok(),
        )
        .try_into();
    let request = built(request)?;
    let Some(done) = run_task(
        client,
        global,
        &args.task,
        client.submit_image_edit(&request).await,
    )
    .await?
    else {
        return Ok(EXIT_OK);
    };
    let urls: Vec<String> = done.image_urls().into_iter().map(str::to_owned).collect();
    Ok(deliver(client, global, &urls, args.output.as_deref()).await)
}

/// `video`: the exit code (`Err` for an early end).
pub async fn video(client: &Client, global: &Global, args: VideoArgs) -> Result<u8, u8> {
    let mut input = types::VideoSynthesisInput::builder()
        .prompt(Some(args.prompt.clone()))
        .first_frame_url(args.first_frame.clone())
        .last_frame_url(args.last_frame.clone())
        .img_url(args.image.clone());
    if args.first_frame.is_none() && args.image.is_none() {
        note!(
            "dashscope: give --first-frame (first/last-frame models) or --image (image to video)"
        );
        return Err(EXIT_USAGE);
    }
    if args.model.contains("kf2v") && args.first_frame.is_none() {
        // A first/last-frame model reads the image as its first frame.
        input = input.first_frame_url(args.image.clone()).img_url(None);
    }
    let request: Result<types::VideoSynthesisRequest, _> = types::VideoSynthesisRequest::builder()
        .model(args.model.clone())
        .input(input)
        .parameters(
            types::VideoSynthesisParameters::builder()
                .resolution(args.resolution.clone())
                .try_into()
                .ok(),
        )
        .try_into();
    let request = built(request)?;
    let Some(done) = run_task(
        client,
        global,
        &args.task,
        client.submit_video_synthesis(&request).await,
    )
    .await?
    else {
        return Ok(EXIT_OK);
    };
    let urls: Vec<String> = done.video_url().into_iter().map(str::to_owned).collect();
    Ok(deliver(client, global, &urls, args.output.as_deref()).await)
}

/// Downloads results to `output` (numbered when several) and prints the paths, or prints the
/// URLs (valid 24 hours).
async fn deliver(client: &Client, global: &Global, urls: &[String], output: Option<&Path>) -> u8 {
    if urls.is_empty() {
        note!("dashscope: the task succeeded but named no result");
        return crate::EXIT_SERVICE;
    }
    let mut out = Out::new();
    let Some(output) = output else {
        for url in urls {
            if let Err(code) = out.line(url) {
                return code;
            }
        }
        if !global.quiet {
            note!("dashscope: result URLs last 24 hours: download them (-o PATH)");
        }
        return EXIT_OK;
    };
    for (i, url) in urls.iter().enumerate() {
        let path = if urls.len() == 1 {
            output.to_path_buf()
        } else {
            numbered(output, i + 1)
        };
        match client.download(url, &path, None).await {
            Ok(bytes) => {
                if let Err(code) = out.line(&path.display().to_string()) {
                    return code;
                }
                if !global.quiet {
                    note!("dashscope: wrote {} ({bytes} bytes)", path.display());
                }
            }
            Err(e) => {
                report(&e, Some(&path.display().to_string()));
                return exit_code(&e);
            }
        }
    }
    EXIT_OK
}

/// `out.png` → `out-2.png`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "out".into(), |s| s.to_string_lossy());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// A task's answer on stdout: its state and result URLs, or the whole answer as JSON.
fn print_answer(answer: &types::TaskResponse, json: bool) -> u8 {
    let mut out = Out::new();
    let written = if json {
        out.line(&serde_json::to_string_pretty(answer).unwrap_or_default())
    } else {
        let transcripts = answer
            .output
            .results
            .iter()
            .filter_map(|r| r.transcription_url.as_deref());
        let state = answer.state().to_string();
        std::iter::once(state.as_str())
            .chain(answer.image_urls())
            .chain(answer.video_url())
            .chain(transcripts)
            .try_for_each(|line| out.line(line))
    };
    written.err().unwrap_or(EXIT_OK)
}

pub async fn task(client: &Client, global: &Global, command: TaskCommand) -> u8 {
    match command {
        TaskCommand::Get { id, json } => match client.get_task(&id).await {
            Ok(answer) => print_answer(&answer, json),
            Err(e) => {
                report(&e, None);
                exit_code(&e)
            }
        },
        TaskCommand::Wait { id, json, task } => {
            let (options, spinner) = match wait_options(&task, global) {
                Ok(o) => o,
                Err(code) => return code,
            };
            match wait(client, &id, &options, spinner).await {
                Ok(answer) => print_answer(&answer, json),
                Err(e) => {
                    report(&e, None);
                    exit_code(&e)
                }
            }
        }
        TaskCommand::List {
            model,
            status,
            from,
            to,
            page,
            page_size,
            json,
        } => {
            let mut filter = TaskFilter::default().page(page, page_size);
            if let Some(model) = model {
                filter = filter.model(model);
            }
            if let Some(status) = status {
                filter = filter.status(TaskState::parse(&status.to_ascii_uppercase()));
            }
            if let (Some(from), Some(to)) = (from, to) {
                filter = filter.between(from, to);
            }
            match client.list_tasks(&filter).await {
                Ok(list) => {
                    let text = if json {
                        format!(
                            "{}\n",
                            serde_json::to_string_pretty(&list).unwrap_or_default()
                        )
                    } else {
                        list.tasks()
                            .iter()
                            .map(|t| {
                                format!(
                                    "{}\t{}\t{}\n",
                                    t.task_id.as_deref().unwrap_or("?"),
                                    t.task_status.as_deref().unwrap_or("?"),
                                    t.submit_time.as_deref().unwrap_or("")
                                )
                            })
                            .collect()
                    };
                    Out::new().text(&text).err().unwrap_or(EXIT_OK)
                }
                Err(e) => {
                    report(&e, None);
                    exit_code(&e)
                }
            }
        }
        TaskCommand::Cancel { id } => match client.cancel_task(&id).await {
            Ok(_) => {
                if !global.quiet {
                    note!("dashscope: task {id} cancelled");
                }
                EXIT_OK
            }
            Err(e) => {
                report(&e, None);
                exit_code(&e)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_results_are_numbered() {
        assert_eq!(
            numbered(Path::new("a/out.png"), 2),
            PathBuf::from("a/out-2.png")
        );
        assert_eq!(numbered(Path::new("clip"), 1), PathBuf::from("clip-1"));
    }
}
