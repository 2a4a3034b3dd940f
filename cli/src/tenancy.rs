//! What the tenant commands (`connect`, `check`, `tenants`, `secret-key`) and `serve` share:
//! the vault from the operator's key, the tenant store in `--state`, and the host's connect
//! settings.

use anyhow::Context as _;
use dialpad_ghl_host::settings::Settings;
use dialpad_ghl_host::storage::vault::{Vault, VaultError};
use dialpad_ghl_host::tenants::store::TenantStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where tenants are kept and the key their secrets are sealed with.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// The state folder (`<dir>/state.db` holds the tenants and their sealed secrets).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    #[command(flatten)]
    pub database: crate::options::DatabaseArgs,
    /// File holding the secret key that seals credentials at rest (or DIALPAD_GHL_SECRET_KEY;
    /// make one with `secret-key generate`). Owner-only (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The vault, or the typed error saying how to give a key.
    pub fn vault(&self) -> Result<Vault, VaultError> {
        Vault::from_environment(self.secret_key_file.as_deref(), &[])
    }

    /// The tenant store, with the vault (required).
    pub fn open(&self) -> anyhow::Result<Arc<TenantStore>> {
        let vault = self.vault()?;
        open_store(&self.state, &self.database.location(&self.state), Some(Arc::new(vault)))
    }
}

/// The tenants in `db` (`<state>/state.db`, or the `--database`).
pub fn open_store(state: &Path, db: &Path, vault: Option<Arc<Vault>>) -> anyhow::Result<Arc<TenantStore>> {
    dialpad_ghl_host::storage::private::private_dir(state)?;
    let shown = dialpad_ghl_host::storage::db::Location::of(db).describe();
    Ok(Arc::new(TenantStore::open(db, vault).with_context(|| format!("opening the tenants in {shown}"))?))
}

/// The host's settings for connecting (API origins, public URL, call states).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectArgs {
    /// The host's configuration file (JSON or TOML): `api_base`, `dialpad_api_base`,
    /// `public_url`, `dialpad_call_states`, `marketplace`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HighLevel API origin (default: HighLevel's).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    /// Dialpad API origin (default https://dialpad.com).
    #[arg(long, value_name = "URL")]
    pub dialpad_api_base: Option<String>,
    /// Where Dialpad reaches serve's webhook listener, e.g. https://sync.example.com.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

impl ConnectArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut settings = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(base) = &self.api_base {
            settings.set("api_base", base.clone());
        }
        if let Some(base) = &self.dialpad_api_base {
            settings.set("dialpad_api_base", base.clone());
        }
        if let Some(url) = &self.public_url {
            settings.connect.public_url = Some(url.trim_end_matches('/').to_string());
        }
        Ok(settings)
    }
}

/// A tokio runtime for the connect clients' requests.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(future))
}
