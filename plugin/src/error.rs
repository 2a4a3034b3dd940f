//! The plugin's typed errors, mirrored one to one by the WIT `types` interface (`sync-error`).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer to the offending value, e.g. `/scopes/1`.
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFailure {
    pub operation_id: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub message: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncError {
    InvalidSignature(String),
    MalformedEvent(String),
    BadConfig(Vec<Problem>),
    InvalidInput(Vec<Problem>),
    UnknownOperation(String),
    MissingScope(Vec<String>),
    RateLimited { operation_id: String, retry_after_ms: Option<u64> },
    Upstream(Box<UpstreamFailure>),
    Transport(String),
    Storage(String),
    NotFound(String),
}

impl SyncError {
    pub fn malformed(msg: impl Into<String>) -> Self {
        SyncError::MalformedEvent(msg.into())
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::InvalidSignature(m) => write!(f, "invalid signature: {m}"),
            SyncError::MalformedEvent(m) => write!(f, "malformed event: {m}"),
            SyncError::BadConfig(problems) => {
                write!(f, "bad config:")?;
                for p in problems {
                    write!(f, " {}: {};", p.path, p.message)?;
                }
                Ok(())
            }
            SyncError::InvalidInput(problems) => {
                write!(f, "invalid input:")?;
                for p in problems {
                    write!(f, " {}: {};", p.path, p.message)?;
                }
                Ok(())
            }
            SyncError::UnknownOperation(id) => write!(f, "no Contacts API operation is called \"{id}\""),
            SyncError::MissingScope(s) => write!(f, "missing scope: {}", s.join(", ")),
            SyncError::RateLimited { operation_id, retry_after_ms } => {
                write!(f, "rate limited on {operation_id}")?;
                if let Some(ms) = retry_after_ms {
                    write!(f, " (retry after {ms} ms)")?;
                }
                Ok(())
            }
            SyncError::Upstream(u) => write!(f, "{} {} {} → {}: {}", u.operation_id, u.method, u.path, u.status, u.message),
            SyncError::Transport(m) => write!(f, "transport: {m}"),
            SyncError::Storage(m) => write!(f, "storage: {m}"),
            SyncError::NotFound(m) => write!(f, "not found: {m}"),
        }
    }
}
