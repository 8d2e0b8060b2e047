//! The one decision about trying a request again, as a pure function: every request the crate
//! sends (generated operations, streams, result downloads, the OSS form POST) says only what
//! it is ([`Repeat`]); the error's kind comes from the one classifier; this table says what
//! happens next. The loop that follows it is [`crate::transport::drive`].

use crate::retry::Class;

/// What a request is, as far as repeating it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// It only reads (a task query, a credential, a download): repeated after any failure
    /// that waiting may cure.
    Safe,
    /// It creates nothing but may cost something (a model call spends its tokens again):
    /// repeated like a safe one, since nothing is left behind.
    Repeatable,
    /// It creates something (a task submit): never repeated once it may have arrived; the
    /// failure then says that it may exist.
    Creates,
    /// An upload to a key nobody else writes: repeated with the same key, so that a repeat
    /// finding the object (409) proves an earlier attempt stored it; a credential the
    /// storage refuses is replaced (and the key with it).
    SameKeyUpload,
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A success answer.
    Answered,
    /// A same-key repeat found its object already there: an earlier attempt stored it.
    FoundOurs,
    /// It failed, as the classifier sees it; `never_sent` when no connection was made.
    Failed { class: Class, never_sent: bool },
}

/// Where a request stands after an attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    /// Attempts made so far, this one included.
    pub(crate) attempts: u32,
    pub(crate) max_attempts: u32,
    /// This attempt only asked whether an earlier one landed.
    pub(crate) verifying: bool,
    /// The request can be built again (a streamed body that cannot is sent once).
    pub(crate) can_repeat: bool,
    /// The storage should still accept the credential this attempt used (uploads).
    pub(crate) credential_valid: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Report the answer.
    Done,
    /// Report the error.
    Fail,
    /// Report that a request that creates something may have done so.
    MayHaveCreated,
    /// Back off, then send again (an upload: to the same key while the credential holds).
    Retry,
    /// Drop the credential the storage refused; the next attempt gets a new one and a key.
    Refresh,
    /// The budget is spent but the last upload may have landed: one more of the same key,
    /// only to learn whether it did (409), so that a success is not reported as a failure.
    Verify,
}

/// The one table.
pub(crate) fn next_step(repeat: Repeat, at: Standing, outcome: Outcome) -> Step {
    let (class, never_sent) = match outcome {
        Outcome::Answered | Outcome::FoundOurs => return Step::Done,
        Outcome::Failed { class, never_sent } => (class, never_sent),
    };
    if repeat == Repeat::Creates && class.may_have_arrived() && !never_sent {
        return Step::MayHaveCreated;
    }
    if !at.can_repeat {
        return Step::Fail;
    }
    if at.attempts >= at.max_attempts {
        // An earlier attempt of the same key may have landed even when this one never left.
        return if repeat == Repeat::SameKeyUpload
            && class.may_have_arrived()
            && !at.verifying
            && at.credential_valid
        {
            Step::Verify
        } else {
            Step::Fail
        };
    }
    match class {
        Class::StaleCredential if repeat == Repeat::SameKeyUpload => Step::Refresh,
        Class::StaleCredential | Class::Permanent => Step::Fail,
        Class::Throttled | Class::Server | Class::Transient => Step::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(attempts: u32, verifying: bool, credential_valid: bool) -> Standing {
        Standing {
            attempts,
            max_attempts: 3,
            verifying,
            can_repeat: true,
            credential_valid,
        }
    }

    fn failed(class: Class) -> Outcome {
        Outcome::Failed {
            class,
            never_sent: false,
        }
    }

    #[test]
    fn the_retry_decisions_of_an_upload() {
        let table = [
            (at(1, false, true), Outcome::Answered, Step::Done),
            (at(2, false, true), Outcome::FoundOurs, Step::Done),
            (at(3, true, true), Outcome::FoundOurs, Step::Done),
            (at(1, false, true), failed(Class::Throttled), Step::Retry),
            (at(1, false, true), failed(Class::Server), Step::Retry),
            (at(2, false, false), failed(Class::Transient), Step::Retry),
            (
                at(1, false, true),
                failed(Class::StaleCredential),
                Step::Refresh,
            ),
            (at(1, false, true), failed(Class::Permanent), Step::Fail),
            // The budget is spent: verify only what may have landed, once, while OSS would
            // still take the credential.
            (at(3, false, true), failed(Class::Transient), Step::Verify),
            (at(3, false, true), failed(Class::Server), Step::Verify),
            (at(3, false, false), failed(Class::Transient), Step::Fail),
            (at(3, false, true), failed(Class::Throttled), Step::Fail),
            (
                at(3, false, true),
                failed(Class::StaleCredential),
                Step::Fail,
            ),
            (at(4, true, true), failed(Class::Transient), Step::Fail),
        ];
        for (state, outcome, want) in table {
            assert_eq!(
                next_step(Repeat::SameKeyUpload, state, outcome),
                want,
                "{state:?} {outcome:?}"
            );
        }
    }

    #[test]
    fn the_retry_decisions_of_other_requests() {
        let never_sent = Outcome::Failed {
            class: Class::Transient,
            never_sent: true,
        };
        let once = Standing {
            can_repeat: false,
            ..at(1, false, true)
        };
        let table = [
            (
                Repeat::Safe,
                at(1, false, true),
                Outcome::Answered,
                Step::Done,
            ),
            (
                Repeat::Safe,
                at(1, false, true),
                failed(Class::Throttled),
                Step::Retry,
            ),
            (
                Repeat::Safe,
                at(1, false, true),
                failed(Class::Transient),
                Step::Retry,
            ),
            (
                Repeat::Safe,
                at(1, false, true),
                failed(Class::Permanent),
                Step::Fail,
            ),
            // Only an upload has a credential to replace.
            (
                Repeat::Safe,
                at(1, false, true),
                failed(Class::StaleCredential),
                Step::Fail,
            ),
            // The budget is spent: nothing to verify outside an upload.
            (
                Repeat::Repeatable,
                at(3, false, true),
                failed(Class::Server),
                Step::Fail,
            ),
            (
                Repeat::Repeatable,
                at(1, false, true),
                failed(Class::Server),
                Step::Retry,
            ),
            (Repeat::Repeatable, once, failed(Class::Server), Step::Fail),
            // A submit: repeated only when it cannot have arrived.
            (
                Repeat::Creates,
                at(1, false, true),
                failed(Class::Server),
                Step::MayHaveCreated,
            ),
            (
                Repeat::Creates,
                at(1, false, true),
                failed(Class::Transient),
                Step::MayHaveCreated,
            ),
            (
                Repeat::Creates,
                once,
                failed(Class::Transient),
                Step::MayHaveCreated,
            ),
            (Repeat::Creates, at(1, false, true), never_sent, Step::Retry),
            (
                Repeat::Creates,
                at(1, false, true),
                failed(Class::Throttled),
                Step::Retry,
            ),
            (
                Repeat::Creates,
                at(3, false, true),
                failed(Class::Throttled),
                Step::Fail,
            ),
        ];
        for (repeat, state, outcome, want) in table {
            assert_eq!(
                next_step(repeat, state, outcome),
                want,
                "{repeat:?} {state:?} {outcome:?}"
            );
        }
    }
}
