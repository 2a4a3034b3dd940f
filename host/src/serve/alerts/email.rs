//! Alerts by e-mail, through lettre's SMTP transport (blocking: the alerts have a thread of
//! their own).

use super::config::{SmtpSettings, SmtpTls};
use super::message::Notice;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use std::time::Duration;

/// The longest each SMTP command may wait for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A configured SMTP server and the mail's sender and recipients.
pub struct Mailer {
    transport: SmtpTransport,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    server: String,
}

impl Mailer {
    pub fn new(smtp: &SmtpSettings) -> anyhow::Result<Mailer> {
        let mut builder = SmtpTransport::builder_dangerous(smtp.server.as_str()).port(smtp.port).timeout(Some(TIMEOUT));
        builder = match smtp.tls {
            SmtpTls::Tls => builder.tls(Tls::Wrapper(TlsParameters::new(smtp.server.clone())?)),
            // Required: a server that does not offer STARTTLS gets no login and no mail.
            SmtpTls::StartTls => builder.tls(Tls::Required(TlsParameters::new(smtp.server.clone())?)),
            SmtpTls::None => builder.tls(Tls::None),
        };
        if let (Some(username), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose().to_string()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: smtp.from.parse()?,
            to: smtp.to.iter().map(|to| to.parse()).collect::<Result<_, _>>()?,
            server: format!("{}:{}", smtp.server, smtp.port),
        })
    }

    /// Sends `notice` as one plain-text mail to every recipient.
    pub fn send(&self, notice: &Notice) -> Result<(), String> {
        let mut message = Message::builder().from(self.from.clone()).subject(notice.subject()).header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.body(notice.email_body()).map_err(|e| format!("building the mail: {e}"))?;
        self.transport.send(&message).map(|_| ()).map_err(|e| format!("SMTP server {}: {e}", self.server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each mode builds its transport (rustls with its provider and roots) without connecting.
    #[test]
    fn every_tls_mode_makes_a_mailer() {
        for tls in [SmtpTls::Tls, SmtpTls::StartTls, SmtpTls::None] {
            let smtp = SmtpSettings {
                server: "smtp.example.com".into(),
                port: tls.default_port(),
                tls,
                username: None,
                password: None,
                from: "Sync alerts <alerts@example.com>".into(),
                to: vec!["ops@example.com".into()],
            };
            let mailer = Mailer::new(&smtp).unwrap();
            assert_eq!((mailer.server.as_str(), mailer.to.len()), (format!("smtp.example.com:{}", tls.default_port()).as_str(), 1));
        }
    }
}
