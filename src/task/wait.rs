//! A task's state: query, list, cancel, and waiting until it ends.

use std::time::Instant;

use crate::api::types;
use crate::{Client, Error, Result};

use super::{TaskFilter, TaskState, WaitOptions, check_id, next_interval, outcome};

impl Client {
    /// The task as it is now. A failed task is an `Ok` answer here (its state says so); see
    /// [`Client::wait_task`] for typed ends.
    pub async fn get_task(&self, task_id: &str) -> Result<types::TaskResponse> {
        check_id(task_id)?;
        let answer = self
            .call(self.api().get_task().task_id(task_id).send())
            .await?;
        answer_for(task_id, answer)
    }

    /// Cancels a task that is still `PENDING`; any other state is
    /// Lists the account's tasks (a task query: it takes a slot of the client's limit). Finds
    /// a task whose submit answer was lost ([`Error::MayHaveSubmitted`]).
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<types::TaskListResponse> {
        let mut op = self.api().list_tasks();
        if let Some(n) = filter.page_no {
            op = op.page_no(n);
        }
        if let Some(n) = filter.page_size {
            op = op.page_size(n);
        }
        if let Some(t) = &filter.start_time {
            op = op.start_time(t.clone());
        }
        if let Some(t) = &filter.end_time {
            op = op.end_time(t.clone());
        }
        if let Some(m) = &filter.model {
            op = op.model_name(m.clone());
        }
        if let Some(s) = &filter.status {
            op = op.status(s.as_str().to_owned());
        }
        self.call(op.send()).await
    }

    /// [`Error::UnsupportedOperation`].
    pub async fn cancel_task(&self, task_id: &str) -> Result<types::TaskCancelResponse> {
        check_id(task_id)?;
        match self
            .call(self.api().cancel_task().task_id(task_id).send())
            .await
        {
            // A retried cancel whose first try worked is refused: the task says which it was.
            Err(Error::UnsupportedOperation(e)) => match self.get_task(task_id).await {
                Ok(task) if task.state() == TaskState::Canceled => {
                    // Built, not written as a literal: a field the spec adds later is no break.
                    types::TaskCancelResponse::builder()
                        .request_id(task.request_id)
                        .try_into()
                        .map_err(Error::from)
                }
                _ => Err(Error::UnsupportedOperation(e)),
            },
            other => other,
        }
    }

    /// Queries a task until it ends: its answer when it succeeded, [`Error::TaskFailed`],
    /// [`Error::TaskCanceled`], [`Error::TaskUnknown`] or [`Error::WaitTimeout`] otherwise.
    /// Queries pause `initial_interval`, doubling to `max_interval`; all of this client's task
    /// queries together stay within the service's 20 per second however many tasks wait.
    pub async fn wait_task(
        &self,
        task_id: &str,
        options: &WaitOptions,
    ) -> Result<types::TaskResponse> {
        check_id(task_id)?;
        let started = Instant::now();
        let mut interval = options.initial_interval;
        let mut last_state: Option<TaskState> = None;
        let mut failed_in_a_row = 0u32;
        loop {
            let query = self.get_task(task_id);
            let answered = match options.timeout {
                Some(timeout) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, query).await {
                        Ok(answered) => answered,
                        Err(_) => {
                            return Err(Error::WaitTimeout {
                                task_id: task_id.to_owned(),
                                status: last_state
                                    .map_or("not yet known".to_owned(), |s| s.to_string()),
                                waited: started.elapsed(),
                            });
                        }
                    }
                }
                None => query.await,
            };
            match answered {
                Ok(response) => {
                    failed_in_a_row = 0;
                    let state = response.state();
                    if last_state.as_ref() != Some(&state) {
                        tracing::debug!(task_id, state = state.as_str(), "task state");
                        if let Some(f) = &options.on_change {
                            f(&response);
                        }
                        last_state = Some(state);
                    }
                    if let Some(end) = outcome(task_id, &response, self.key()) {
                        return end.map(|()| response);
                    }
                }
                Err(e) if e.is_retryable() && failed_in_a_row < options.max_failed_queries => {
                    failed_in_a_row += 1;
                    tracing::warn!(task_id, error = %e, "task query failed; waiting on");
                }
                Err(e) => return Err(e),
            }
            let mut pause = interval;
            if let Some(timeout) = options.timeout {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::WaitTimeout {
                        task_id: task_id.to_owned(),
                        status: last_state.map_or("not yet known".to_owned(), |s| s.to_string()),
                        waited: started.elapsed(),
                    });
                }
                pause = pause.min(left);
            }
            tokio::time::sleep(pause).await;
            interval = next_interval(interval, options.max_interval);
        }
    }
}

/// A query's answer is only an answer about the task asked, and only with its state: an answer
/// naming another task (a confused proxy or cache) would hand over another task's results, and
/// one without `task_status` would be waited on forever.
fn answer_for(task_id: &str, answer: types::TaskResponse) -> Result<types::TaskResponse> {
    let refuse = |reason: String| {
        Err(Error::decode(
            Some(200),
            reason,
            &[],
            answer.request_id.clone(),
        ))
    };
    match (&answer.output.task_id, &answer.output.task_status) {
        (Some(other), _) if other != task_id => {
            refuse(format!("the answer is for task {other}, not {task_id}"))
        }
        (_, None) => refuse(format!("the answer for task {task_id} has no task_status")),
        _ => Ok(answer),
    }
}
