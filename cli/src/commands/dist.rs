//! `dist`: the release artifact, its checksum and the WIT it implements.

use crate::options::PluginArg;
use anyhow::{bail, Context as _};
use dialpad_ghl_host::version;
use std::path::PathBuf;

/// Write the release artifact: `<out>/dialpad-ghl-plugin-<version>.wasm`, its `.sha256`, and
/// the WIT it implements (`dialpad-ghl-sync-<api>.wit`).
#[derive(clap::Args)]
pub struct Args {
    /// The folder to write to.
    #[arg(long, default_value = "dist", value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    plugin: PluginArg,
}

/// The size of the embedded plugin before binaryen optimized it (see `build.rs`).
const EMBEDDED_PLUGIN_UNOPTIMIZED_SIZE: &str = env!("EMBEDDED_PLUGIN_UNOPTIMIZED_SIZE");

/// The WIT package the plugin implements, as shipped beside it.
const SYNC_WIT: &str = include_str!("../../../wit/sync.wit");

pub fn run(args: Args) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let out = args.out.as_path();
    let (bytes, name) = args.plugin.bytes()?;
    let versions = version::check(&bytes)?;
    let Some(plugin_version) = versions.plugin else { bail!("{name} carries no `{}` section: build it with this workspace", version::SECTION) };
    // Loads and answers `meta` the same: the stamp tells the truth.
    let meta = args.plugin.offline_runtime()?.meta()?;
    if (meta.plugin_version.as_str(), meta.api_version.as_str()) != (plugin_version.as_str(), versions.api.as_str()) {
        bail!("the section says {plugin_version} / {}, but meta says {} / {}", versions.api, meta.plugin_version, meta.api_version);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let name = format!("dialpad-ghl-plugin-{plugin_version}.wasm");
    let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(out.join(&name), &bytes)?;
    std::fs::write(out.join(format!("{name}.sha256")), format!("{digest}  {name}\n"))?;
    let wit = format!("dialpad-ghl-sync-{}.wit", versions.api);
    std::fs::write(out.join(&wit), SYNC_WIT)?;
    println!("{}: {} bytes, sha256 {digest}", out.join(&name).display(), bytes.len());
    if args.plugin.plugin.is_none() {
        // The embedded plugin went through binaryen when this binary was built.
        let before: u64 = EMBEDDED_PLUGIN_UNOPTIMIZED_SIZE.parse()?;
        let saved = 100.0 * (1.0 - bytes.len() as f64 / before as f64);
        println!("  optimized by binaryen (-Oz) from {before} bytes: {saved:.1}% smaller");
    }
    println!(
        "{}: the WIT it implements (dialpad-ghl:sync@{}; its WASI dependencies are the standard packages it names)",
        out.join(&wit).display(),
        versions.api
    );
    Ok(())
}
