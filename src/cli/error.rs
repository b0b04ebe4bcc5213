//! Why a command refused, by type: argusd answers 404, 409 or 400 from
//! these, never from a message's text. The message is what the user reads.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No such job, proposal, DLQ item, agent or route.
    #[error("{0}")]
    NotFound(String),
    /// A decision lost to another, or the state changed since it was read.
    #[error("{0}")]
    Conflict(String),
    /// An option's value is wrong.
    #[error("{0}")]
    Invalid(String),
}
