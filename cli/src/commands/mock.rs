//! `mock`: the mock HighLevel Contacts API on a loopback port, for trying things by hand; with
//! `--accounts`, HighLevel's Marketplace and Dialpad too, to try installs and connections.

use anyhow::bail;
use host_test::dialpad_mock::{DialpadMock, DialpadMockOptions};
use host_test::ghl_mock::{MarketplaceOptions, MockOptions, MockServer};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The mock Marketplace app's credentials, written into `--write-config`.
pub const MOCK_CLIENT_ID: &str = "mock-app-id-0001-client";
pub const MOCK_CLIENT_SECRET: &str = "mock-client-secret";
pub const MOCK_APP_ID: &str = "mock-app-id-0001";
/// The agency and the two locations an agency install approves.
pub const MOCK_COMPANY: &str = "mockAgency";
pub const MOCK_LOCATIONS: [&str; 2] = ["mockLocationA", "mockLocationB"];
/// The private integration token the mock accepts (any location).
pub const MOCK_TOKEN: &str = "mock-token";

/// Serve the mock Contacts API on a loopback port until interrupted; with --accounts, also
/// HighLevel's Marketplace (an app whose installs approve at once) and Dialpad's API, to try
/// installs and connections (see the README's "Connect your HighLevel and Dialpad accounts").
#[derive(clap::Args)]
pub struct Args {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Bearer token the mock requires (any token when absent; `mock-token` with --accounts).
    #[arg(long, env = "MOCK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Let the mock create contacts that share a phone or e-mail.
    #[arg(long)]
    allow_duplicates: bool,
    /// Also serve HighLevel's Marketplace OAuth and the Dialpad API mock.
    #[arg(long)]
    accounts: bool,
    /// Where the Dialpad mock listens (with --accounts).
    #[arg(long, default_value = "127.0.0.1:8788")]
    dialpad_listen: SocketAddr,
    /// Write a host configuration for these mocks here (with --accounts): API origins, the
    /// Marketplace app, its webhook key, and public_url for `serve --listen 127.0.0.1:8790`.
    #[arg(long, value_name = "FILE")]
    write_config: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for addr in [args.listen, args.dialpad_listen] {
        if !addr.ip().is_loopback() {
            bail!("the mocks serve on loopback only; {addr} is not a loopback address");
        }
    }
    if args.write_config.is_some() && !args.accounts {
        bail!("--write-config writes the configuration of --accounts: give both");
    }
    let token = if args.accounts { Some(args.token.unwrap_or_else(|| MOCK_TOKEN.into())) } else { args.token };
    let require_token = token.is_some();
    let marketplace = args.accounts.then(|| MarketplaceOptions {
        client_id: MOCK_CLIENT_ID.into(),
        client_secret: MOCK_CLIENT_SECRET.into(),
        app_id: MOCK_APP_ID.into(),
        company_id: MOCK_COMPANY.into(),
        locations: MOCK_LOCATIONS.map(String::from).to_vec(),
        access_token_ttl: Duration::from_secs(86_400),
    });
    let server = MockServer::start_on(args.listen, MockOptions { token, allow_duplicates: args.allow_duplicates, marketplace, ..MockOptions::default() })?;
    println!(
        "mock Contacts API on {} (token {}; debug state at {}/__mock/state)",
        server.base_url(),
        if require_token { "required" } else { "any" },
        server.base_url()
    );
    let _dialpad = if args.accounts {
        let dialpad = DialpadMock::start_on(args.dialpad_listen, DialpadMockOptions::default())?;
        println!("mock Marketplace: app {MOCK_APP_ID}, agency {MOCK_COMPANY}, locations {}", MOCK_LOCATIONS.join(", "));
        println!("mock Dialpad API on {} (API key {})", dialpad.base_url(), DialpadMockOptions::default().api_key);
        if let Some(path) = &args.write_config {
            let config = json!({
                "api_base": server.base_url(),
                "dialpad_api_base": dialpad.base_url(),
                "public_url": "http://127.0.0.1:8790",
                "marketplace": {
                    "client_id": MOCK_CLIENT_ID, "client_secret": MOCK_CLIENT_SECRET, "app_id": MOCK_APP_ID,
                    "marketplace_base": server.base_url(),
                    "webhook_public_key": host_test::app_webhook::test_public_key_pem(),
                },
            });
            dialpad_ghl_host::storage::private::private_new_file(path)?;
            std::fs::write(path, serde_json::to_string_pretty(&config)? + "\n")?;
            println!("configuration for serve: {}", path.display());
        }
        Some(dialpad)
    } else {
        None
    };
    server.wait();
    Ok(())
}
