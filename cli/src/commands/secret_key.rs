//! `secret-key`: make the key that seals credentials at rest, and rotate to a new one.

use crate::tenancy::open_store;
use dialpad_ghl_host::storage::vault::{SecretKey, Vault};
use std::path::PathBuf;
use std::sync::Arc;

/// Make a secret key (`generate`), or reseal every stored credential under the current key
/// (`rotate`: the new key in DIALPAD_GHL_SECRET_KEY or --secret-key-file, the old one in
/// DIALPAD_GHL_PREVIOUS_SECRET_KEYS or --previous-key-file). See docs/secrets.md.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a new random key (base64); store it owner-only: `… > key; chmod 600 key`.
    Generate,
    /// Reseal every credential under the current key.
    Rotate {
        /// The state folder.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// The new (current) key's file (or DIALPAD_GHL_SECRET_KEY).
        #[arg(long, value_name = "FILE")]
        secret_key_file: Option<PathBuf>,
        /// The old key's file (or DIALPAD_GHL_PREVIOUS_SECRET_KEYS).
        #[arg(long, value_name = "FILE")]
        previous_key_file: Vec<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Generate => {
            println!("{}", SecretKey::generate().to_base64());
            Ok(())
        }
        Action::Rotate { state, secret_key_file, previous_key_file } => {
            let vault = Vault::from_environment(secret_key_file.as_deref(), &previous_key_file)?;
            let store = open_store(&state, &state.join("state.db"), Some(Arc::new(vault)))?;
            let resealed = store.rotate()?;
            println!("{resealed} credentials resealed under the current key; the previous key is no longer needed");
            Ok(())
        }
    }
}
