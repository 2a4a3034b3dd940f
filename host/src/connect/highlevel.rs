//! HighLevel Marketplace OAuth: see the module docs once written.
