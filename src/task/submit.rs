//! Submitting tasks: the typed submits, and any marked operation of the generated client.

use crate::api::types;
use crate::{Client, Error, Result};

use super::{IMAGE_EDIT_FUNCTIONS, MAX_TRANSCRIPTION_FILES, Task, TaskState, VIDEO_RESOLUTIONS};

impl Client {
    /// Submits any task operation of the generated client (its builder's `send()`), on the one
    /// execution path, and returns the task.
    ///
    /// ```no_run
    /// # async fn run(client: dashscope_oss::Client, body: dashscope_oss::api::types::ImageSynthesisRequest) -> dashscope_oss::Result<()> {
    /// let task = client
    ///     .submit(client.api().create_image_synthesis().body(body).send())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit<E>(
        &self,
        call: impl std::future::Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<types::TaskSubmitResponse>,
                progenitor_client::Error<E>,
            >,
        >,
    ) -> Result<Task> {
        // A submit that may have arrived is `MayHaveSubmitted`, by the one execution path.
        let answer = self.call(call).await?;
        Ok(Task {
            state: TaskState::parse(answer.output.task_status.as_deref().unwrap_or("PENDING")),
            id: answer.output.task_id,
            request_id: answer.request_id,
        })
    }

    /// Submits a recorded-file transcription. At most 100 files ([`MAX_TRANSCRIPTION_FILES`]);
    /// local paths are uploaded first.
    pub async fn submit_transcription(
        &self,
        request: &types::TranscriptionRequest,
    ) -> Result<Task> {
        let files = request.input.file_urls.len() + usize::from(request.input.file_url.is_some());
        if files == 0 {
            return Err(Error::InvalidRequest(
                "a transcription needs at least one file (input.file_urls or input.file_url)"
                    .to_owned(),
            ));
        }
        if request.input.file_urls.len() > MAX_TRANSCRIPTION_FILES {
            return Err(Error::InvalidRequest(format!(
                "{} files: a transcription task takes at most {MAX_TRANSCRIPTION_FILES}; split them into several tasks",
                request.input.file_urls.len()
            )));
        }
        self.submit(
            self.api()
                .create_transcription()
                .body(request.clone())
                .send(),
        )
        .await
    }

    /// Submits a text-to-image task.
    pub async fn submit_image_synthesis(
        &self,
        request: &types::ImageSynthesisRequest,
    ) -> Result<Task> {
        self.submit(
            self.api()
                .create_image_synthesis()
                .body(request.clone())
                .send(),
        )
        .await
    }

    /// Submits an image-editing task (`input.function` chooses the edit).
    pub async fn submit_image_edit(&self, request: &types::ImageSynthesisRequest) -> Result<Task> {
        if request.model.contains("imageedit") {
            match request.input.function.as_deref() {
                Some(f) if IMAGE_EDIT_FUNCTIONS.contains(&f) => {}
                other => {
                    return Err(Error::InvalidRequest(format!(
                        "{} needs input.function, one of {}; got {other:?}",
                        request.model,
                        IMAGE_EDIT_FUNCTIONS.join(", ")
                    )));
                }
            }
        }
        if request.input.base_image_url.is_none() && request.input.images.is_empty() {
            return Err(Error::InvalidRequest(
                "an image edit needs input.base_image_url (or input.images)".to_owned(),
            ));
        }
        self.submit(self.api().create_image_edit().body(request.clone()).send())
            .await
    }

    /// Submits a video task: first/last-frame models (`kf2v` in the name) go to
    /// `image2video/video-synthesis`, the others to `video-generation/video-synthesis`, as the
    /// official SDK routes them.
    pub async fn submit_video_synthesis(
        &self,
        request: &types::VideoSynthesisRequest,
    ) -> Result<Task> {
        if let Some(r) = request
            .parameters
            .as_ref()
            .and_then(|p| p.resolution.as_deref())
            .filter(|r| !VIDEO_RESOLUTIONS.contains(r))
        {
            return Err(Error::InvalidRequest(format!(
                "resolution {r:?} is not one of {}",
                VIDEO_RESOLUTIONS.join(", ")
            )));
        }
        if request.model.contains("kf2v") {
            if request.input.first_frame_url.is_none() {
                return Err(Error::InvalidRequest(format!(
                    "{} needs input.first_frame_url",
                    request.model
                )));
            }
            self.submit(
                self.api()
                    .create_keyframe_video_synthesis()
                    .body(request.clone())
                    .send(),
            )
            .await
        } else {
            self.submit(
                self.api()
                    .create_video_synthesis()
                    .body(request.clone())
                    .send(),
            )
            .await
        }
    }
}
