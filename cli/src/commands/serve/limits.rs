//! `serve`'s bounds as flags: connections, timeouts, body sizes and memory, disk budgets and
//! retention (see `dialpad_ghl_host::serve::limits`). Sizes take a unit: `256KiB`, `32MiB`, `1GiB`.

use dialpad_ghl_host::serve::limits::Limits;
use std::time::Duration;

#[derive(clap::Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Connections open at once on the webhook listener (the oldest idle or slow one is closed
    /// to make room). Keep it well under the process's file limit (`ulimit -n`).
    #[arg(long, default_value_t = 512)]
    webhook_connections: usize,
    /// Connections open at once on the admin listener, apart from the webhook ones.
    #[arg(long, default_value_t = 64)]
    admin_connections: usize,
    /// Connections one client address may hold on a listener; behind a reverse proxy, raise it to
    /// --webhook-connections.
    #[arg(long, default_value_t = 128)]
    connections_per_client: usize,
    /// Time to send a request's head (also the keep-alive idle time between requests).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// Time to send a whole body (408 after).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// A connection with no byte either way for this long, and no answer pending, is closed.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Largest body on POST /webhooks/dialpad (413 above).
    #[arg(long, default_value = "256KiB", value_parser = parse_size)]
    dialpad_body_limit: u64,
    /// Largest body on POST /events/platform (413 above).
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    platform_body_limit: u64,
    /// Request body bytes held in memory at once, both listeners together (503 with Retry-After
    /// past it).
    #[arg(long, default_value = "32MiB", value_parser = parse_size)]
    body_budget: u64,
    /// Bytes of queued and kept deliveries in state.db; finished ones are pruned to make room,
    /// and when queued ones fill it a delivery is answered 507 with Retry-After.
    #[arg(long, default_value = "512MiB", value_parser = parse_size)]
    inbox_budget: u64,
    /// Bytes of dead letters; while they fill it, deliveries are answered 507 with Retry-After.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    dead_letter_budget: u64,
    /// How long finished deliveries stay on the monitoring page, e.g. 7d.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    keep_finished: Duration,
    /// Done and refused deliveries the console's history keeps at most (the inbox budget may
    /// keep fewer).
    #[arg(long, default_value_t = dialpad_ghl_host::serve::limits::KEEP_DELIVERIES)]
    keep_deliveries: u64,
    /// How long a dead letter is kept after its last failure, e.g. 30d.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    keep_dead_letters: Duration,
    /// How often the retention runs.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    prune_every: Duration,
}

impl LimitArgs {
    pub fn into_limits(self) -> Limits {
        Limits {
            webhook_connections: self.webhook_connections.max(1),
            admin_connections: self.admin_connections.max(1),
            connections_per_client: self.connections_per_client.max(1),
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            dialpad_body_bytes: self.dialpad_body_limit as usize,
            platform_body_bytes: self.platform_body_limit as usize,
            body_budget_bytes: self.body_budget as usize,
            inbox_budget_bytes: self.inbox_budget,
            dead_letter_budget_bytes: self.dead_letter_budget,
            keep_finished: self.keep_finished,
            keep_deliveries: self.keep_deliveries.max(1),
            keep_dead_letters: self.keep_dead_letters,
            prune_every: self.prune_every.max(Duration::from_secs(1)),
        }
    }
}

/// `1024`, `256KiB`, `32MiB`, `1GiB` (also `KB`, `MB`, `GB` as powers of 1,000).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: a size is a number and a unit, e.g. 256KiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("{other:?}: use B, KiB, MiB or GiB")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(super::parse_size("256KiB"), Ok(256 * 1024));
        assert_eq!(super::parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(super::parse_size("1000"), Ok(1000));
        assert_eq!(super::parse_size("2MB"), Ok(2_000_000));
        assert!(super::parse_size("lots").is_err());
    }
}
