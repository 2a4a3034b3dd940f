//! Secrets at rest: sealed with a key the operator provides.
