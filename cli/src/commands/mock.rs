//! `mock`: the mock HighLevel Contacts API on a loopback port, for trying things by hand.

use anyhow::bail;
use host_test::ghl_mock::{MockOptions, MockServer};
use std::net::SocketAddr;

/// Serve the mock Contacts API on a loopback port until interrupted.
#[derive(clap::Args)]
pub struct Args {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Bearer token the mock requires (any token when absent).
    #[arg(long, env = "MOCK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Let the mock create contacts that share a phone or e-mail.
    #[arg(long)]
    allow_duplicates: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!("the mock serves on loopback only; {} is not a loopback address", args.listen);
    }
    let require_token = args.token.is_some();
    let server = MockServer::start_on(args.listen, MockOptions { token: args.token, allow_duplicates: args.allow_duplicates, ..MockOptions::default() })?;
    println!(
        "mock Contacts API on {} (token {}; debug state at {}/__mock/state)",
        server.base_url(),
        if require_token { "required" } else { "any" },
        server.base_url()
    );
    server.wait();
    Ok(())
}
