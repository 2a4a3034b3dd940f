//! What arrives, before it is read: an inbound event's source and bytes (the WIT
//! `inbound-event`), and the kinds of event the sources carry.

/// One inbound event as it arrived: where it came from and its body's bytes, untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    /// A Dialpad webhook body: plain JSON, or an HS256 JWT whose claims are the event.
    DialpadWebhook(Vec<u8>),
    /// A task or note event from the automation platform (JSON).
    PlatformEvent(Vec<u8>),
    /// A HighLevel webhook body (JSON) whose Ed25519 signature the host has verified.
    HighLevelWebhook(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Call,
    Contact,
    Sms,
    AgentStatus,
    /// A task event from the automation platform.
    Task,
    /// A note event from the automation platform.
    Note,
    /// A HighLevel contact webhook (`ContactCreate`, `ContactUpdate`, `ContactDelete`).
    HighLevelContact,
}
