//! HighLevel Marketplace app webhooks (INSTALL, UNINSTALL): signature, timestamp window, replay check.
