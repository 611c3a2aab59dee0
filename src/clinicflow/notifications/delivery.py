"""Choosing the mailer from settings, and sending account e-mails after the commit."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from clinicflow.core.database import run_after_commit
from clinicflow.core.settings import Settings
from clinicflow.notifications.mailer import (
    EmailMessageSpec,
    MailDeliveryError,
    Mailer,
    OutboxMailer,
    SmtpConfig,
    SmtpMailer,
)

logger = structlog.get_logger("clinicflow.mail")


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


def send_after_commit(session: AsyncSession, mailer: Mailer, message: EmailMessageSpec) -> None:
    """Off the response path (so timing reveals nothing) and only if the transaction commits."""

    async def deliver() -> None:
        try:
            await mailer.send(message)
        except MailDeliveryError as error:
            logger.error(
                "mail_delivery_failed", to=message.to, subject=message.subject, error=str(error)
            )

    run_after_commit(session, deliver)
