"""Choosing the mailer from settings."""

from __future__ import annotations

from clinicflow.core.settings import Settings
from clinicflow.notifications.mailer import Mailer, OutboxMailer, SmtpConfig, SmtpMailer


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when SMTP_HOST is set; otherwise .eml files in MAIL_OUTBOX_DIR (development)."""
    if not settings.smtp_host:
        return OutboxMailer(settings.mail_outbox_dir, sender=settings.mail_from)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            tls=settings.smtp_tls,
            sender=settings.mail_from,
        )
    )
