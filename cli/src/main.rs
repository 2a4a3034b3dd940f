//! `dialpad-ghl`: run the Dialpad ⇄ HighLevel sync plugin. One module per command in
//! `commands/`; the options several commands share are in `options`.

mod commands;
mod options;
mod tenancy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dialpad-ghl", version, about = "Dialpad ⇄ HighLevel sync: the plugin and the host that runs it")]
struct Cli {
    /// Log every outbound request (to stderr).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Demo(commands::demo::Args),
    Replay(commands::replay::Args),
    Serve(Box<commands::serve::Args>),
    Backfill(commands::backfill::Args),
    View(commands::view::Args),
    Catalog(commands::catalog::Args),
    Invoke(commands::invoke::Args),
    ValidateConfig(commands::validate_config::Args),
    ConfigSchema(commands::config_schema::Args),
    Dist(commands::dist::Args),
    Mock(commands::mock::Args),
    Bench(commands::bench::Args),
    Connect(Box<commands::connect::Args>),
    Check(commands::check::Args),
    Tenants(commands::tenants::Args),
    SecretKey(commands::secret_key::Args),
}

fn main() {
    let cli = Cli::parse();
    let level = if cli.verbose { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| level.into()))
        .init();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Serve(args) => commands::serve::run(*args),
        Command::Backfill(args) => commands::backfill::run(args),
        Command::View(args) => commands::view::run(args),
        Command::Catalog(args) => commands::catalog::run(args),
        Command::Invoke(args) => commands::invoke::run(args),
        Command::ValidateConfig(args) => commands::validate_config::run(args),
        Command::ConfigSchema(args) => commands::config_schema::run(args),
        Command::Dist(args) => commands::dist::run(args),
        Command::Mock(args) => commands::mock::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Connect(args) => commands::connect::run(*args),
        Command::Check(args) => commands::check::run(args),
        Command::Tenants(args) => commands::tenants::run(args),
        Command::SecretKey(args) => commands::secret_key::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory as _;

    #[test]
    fn every_argument_of_every_command_has_help() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in cli.get_subcommands() {
            assert!(command.get_about().is_some(), "{} has no description", command.get_name());
            for arg in command.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} {}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn each_command_shows_only_the_flags_it_uses() {
        let cli = Cli::command();
        let flags = |name: &str| -> Vec<String> {
            let command = cli.get_subcommands().find(|c| c.get_name() == name).unwrap_or_else(|| panic!("no command {name}"));
            command.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect()
        };
        let has = |name: &str, flag: &str| flags(name).iter().any(|f| f == flag);
        // The webhook secret only where webhooks are handled; Dialpad's API only where calls are listed.
        for (command, flag, expected) in [
            ("replay", "webhook-secret", true),
            ("serve", "webhook-secret", true),
            ("view", "webhook-secret", false),
            ("invoke", "webhook-secret", false),
            ("backfill", "dialpad-api-key", true),
            ("serve", "dialpad-api-key", true),
            ("replay", "dialpad-api-key", false),
            ("view", "state", false),
            ("catalog", "token", false),
            ("config-schema", "config", false),
            ("validate-config", "api-base", false),
            ("demo", "plugin", false),
            ("dist", "plugin", true),
        ] {
            assert_eq!(has(command, flag), expected, "{command} --{flag}: {:?}", flags(command));
        }
    }
}
