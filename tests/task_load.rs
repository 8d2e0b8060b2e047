//! Many tasks waited on at once by one client: the service, which counts the arrivals of each
//! account's task queries in any one second, never sees more than the documented 20, refuses
//! none, and every task ends in its right state. Alone in its test binary, so that no other
//! test's load delays some queries and bunches others (see `TASK_QUERY_WINDOW`).

use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FAIL_TASK_TEXT, TaskSteps};
use dashscope_oss::api::types;
use dashscope_oss::task::WaitOptions;
use dashscope_oss::{Client, Config, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_tasks_at_once_stay_within_twenty_queries_a_second() {
    let emulator = Emulator::start(EmulatorConfig {
        task_steps: TaskSteps::Polls(1),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url()),
    )
    .expect("client");
    let options =
        WaitOptions::default().interval(Duration::from_millis(10), Duration::from_millis(50));
    let waits = (0..30).map(|i| {
        let client = client.clone();
        let options = options.clone();
        async move {
            // Every third task fails: ends are told apart under load too.
            let prompt = if i % 3 == 0 {
                format!("{FAIL_TASK_TEXT} {i}")
            } else {
                format!("cat {i}")
            };
            let body: types::ImageSynthesisRequest = types::ImageSynthesisRequest::builder()
                .model("wanx2.1-t2i-turbo")
                .input(types::ImageSynthesisInput::builder().prompt(Some(prompt)))
                .try_into()
                .expect("request");
            let task = client.submit_image_synthesis(&body).await.expect("submit");
            (i, client.wait_task(&task.id, &options).await)
        }
    });
    let ends = futures_util::future::join_all(waits).await;
    for (i, end) in &ends {
        match (i % 3, end) {
            (0, Err(Error::TaskFailed { .. })) => {}
            (1 | 2, Ok(done)) => assert_eq!(done.image_urls().len(), 1),
            (_, other) => panic!("task {i}: {other:?}"),
        }
    }
    let stats = emulator.stats();
    assert_eq!(stats.task_queries_throttled, 0, "{stats:?}");
    assert!(stats.task_queries_max_per_second <= 20, "{stats:?}");
    assert_eq!(
        stats.task_queries, 90,
        "three queries a task: PENDING, RUNNING, the end"
    );
    assert_eq!(stats.tasks.get("SUCCEEDED"), Some(&20));
    assert_eq!(stats.tasks.get("FAILED"), Some(&10));
}
