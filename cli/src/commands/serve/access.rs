//! `serve`'s access flags: the admin token (from the environment or a file, never a flag that
//! `ps` would show), the admin side's host names, and the two loud flags that allow an unsafe
//! bind.

use anyhow::Context as _;
use dialpad_ghl_host::capability::secret::Secret;
use dialpad_ghl_host::serve::access::{AccessOptions, ADMIN_TOKEN_ENV};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct AccessArgs {
    /// A file holding the admin token (keep it owner-only), or set DIALPAD_GHL_ADMIN_TOKEN.
    /// With a token, the admin side needs `Authorization: Bearer <token>` or a login at
    /// /login; without one it is open, which only loopback allows. (The token itself is never
    /// a flag: a flag's value is visible to every user of the machine in `ps`.)
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// A name the admin side answers for besides 127.0.0.1, localhost and [::1] with its port
    /// (e.g. the reverse proxy's `admin.example.com`, or `name:port`); repeatable. Requests
    /// naming any other Host are refused (DNS rebinding).
    #[arg(long, value_name = "NAME")]
    admin_host: Vec<String>,
    /// DANGEROUS: let --listen be a non-loopback address without a webhook_secret, so that
    /// anyone who reaches it can post events. Only when something in front verifies them.
    #[arg(long)]
    allow_unverified_webhooks_on_public_address: bool,
    /// DANGEROUS: let --admin-listen be a non-loopback address without an admin token, so that
    /// anyone who reaches it reads every event and can replay them. Only when something in
    /// front authenticates.
    #[arg(long)]
    allow_unauthenticated_admin_on_public_address: bool,
}

impl AccessArgs {
    pub fn options(self) -> anyhow::Result<AccessOptions> {
        let token = match &self.admin_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading the admin token from {}", path.display()))?;
                warn_if_readable_by_others(path);
                Some(text.trim().to_string())
            }
            None => std::env::var(ADMIN_TOKEN_ENV).ok(),
        };
        let admin_token = match token {
            Some(token) if token.trim().is_empty() => anyhow::bail!("the admin token is empty (--admin-token-file or {ADMIN_TOKEN_ENV})"),
            Some(token) => Some(Secret::new(token.trim())),
            None => None,
        };
        Ok(AccessOptions {
            admin_token,
            admin_hosts: self.admin_host,
            allow_unverified_webhooks_on_public_address: self.allow_unverified_webhooks_on_public_address,
            allow_unauthenticated_admin_on_public_address: self.allow_unauthenticated_admin_on_public_address,
        })
    }
}

fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!("serve: warning: {} (the admin token) can be read by other users: chmod 600 it", path.display());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
