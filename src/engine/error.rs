//! Errors of the inference calls (model files have their own [`super::weights::ModelError`]).

/// A call was given buffers that do not fit the network. Fix the caller; retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A buffer's length is not what the layer needs.
    #[error("{what}: expected {expected} values, got {actual}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        actual: usize,
    },
    /// More streams or frames than the network was built for.
    #[error("{what}: {actual} exceeds the maximum of {max} fixed at construction")]
    TooMany {
        what: &'static str,
        max: usize,
        actual: usize,
    },
    /// A state belongs to a network of another shape.
    #[error("state does not belong to this network (expected {expected} values, got {actual})")]
    ForeignState { expected: usize, actual: usize },
}

pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    actual: usize,
) -> Result<(), EngineError> {
    if expected == actual {
        Ok(())
    } else {
        Err(EngineError::WrongLength {
            what,
            expected,
            actual,
        })
    }
}
