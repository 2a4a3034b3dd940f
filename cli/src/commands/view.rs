//! `view`: the unified view of a HighLevel contact, as a screen pop shows it.

use crate::options::{ApiArgs, Target, TargetOptions};
use anyhow::bail;
use dialpad_ghl_host::bindings::exports::dialpad_ghl::sync::views::Subject;
use dialpad_ghl_host::report;

/// Print the unified view of a HighLevel contact (contact, tasks, notes, appointments) as JSON.
#[derive(clap::Args)]
pub struct Args {
    /// A phone number in any format Dialpad sends.
    #[arg(long, group = "subject")]
    phone: Option<String>,
    /// A HighLevel contact id.
    #[arg(long, group = "subject")]
    contact_id: Option<String>,
    /// A Dialpad contact id the plugin has synced.
    #[arg(long, group = "subject")]
    dialpad_contact: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let subject = match (args.phone, args.contact_id, args.dialpad_contact) {
        (Some(p), _, _) => Subject::Phone(p),
        (_, Some(c), _) => Subject::ContactId(c),
        (_, _, Some(d)) => Subject::DialpadContact(d),
        _ => bail!("say whose view: --phone, --contact-id or --dialpad-contact"),
    };
    let target = Target::build(TargetOptions { api: args.api, ..TargetOptions::default() })?;
    match target.runtime.view(&subject)? {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&report::view_json(&v))?);
            Ok(())
        }
        Err(e) => {
            println!("{}", report::error_json(&e));
            bail!("view failed: {}", report::error_message(&e))
        }
    }
}
