"""Account e-mails: password reset, address verification and invitations.

The wording lives in `string.Template` constants so it can be reviewed in one place without a
template-engine dependency. Names, tenant titles and roles are user-controlled, so every value
is HTML-escaped before it reaches an HTML part, and squeezed onto one line before it reaches a
subject (a line break there would be a header-injection attempt).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from string import Template

from clinicflow.notifications.mailer import EmailMessageSpec

_TEXT_FOOTER = "\n-- \nClinicFlow\nThis is an automated message; replies are not read.\n"

_HTML_PAGE = Template(
    """<!doctype html>
<html lang="en">
<body style="font-family: Arial, Helvetica, sans-serif; color: #1f2933; line-height: 1.5;">
$content
<p>If the button does not work, copy this link into your browser:<br>
<a href="$link">$link</a></p>
<p style="color: #616e7c; font-size: 12px;">ClinicFlow &middot; This is an automated message;
replies are not read.</p>
</body>
</html>
"""
)

_HTML_BUTTON = Template(
    '<p><a href="$link" style="display: inline-block; padding: 10px 18px; background: #0b6e99;'
    ' color: #ffffff; text-decoration: none; border-radius: 4px;">$label</a></p>'
)

_RESET_TEXT = Template(
    """$greeting

We received a request to reset the password of your ClinicFlow account. To choose a new
password, open this link:

$link

The link expires in $validity. If you did not ask for a reset, you can ignore this email;
your password will not change.
"""
)

_RESET_HTML = Template(
    """<p>$greeting</p>
<p>We received a request to reset the password of your ClinicFlow account.</p>
$button
<p>The link expires in $validity. If you did not ask for a reset, you can ignore this email;
your password will not change.</p>"""
)

_VERIFY_TEXT = Template(
    """$greeting

Please confirm that this is your email address by opening this link:

$link

The link expires after a limited time. If you did not create a ClinicFlow account, you can
ignore this email.
"""
)

_VERIFY_HTML = Template(
    """<p>$greeting</p>
<p>Please confirm that this is your email address.</p>
$button
<p>The link expires after a limited time. If you did not create a ClinicFlow account, you can
ignore this email.</p>"""
)

_INVITE_TEXT = Template(
    """Hello,

$inviter has invited you to join $tenant on ClinicFlow with the role "$role".
To accept the invitation and set up your account, open this link:

$link

The invitation expires on $expires. If you were not expecting it, you can ignore this email.
"""
)

_INVITE_HTML = Template(
    """<p>Hello,</p>
<p>$inviter has invited you to join <strong>$tenant</strong> on ClinicFlow with the role
&ldquo;$role&rdquo;.</p>
$button
<p>The invitation expires on $expires. If you were not expecting it, you can ignore this
email.</p>"""
)


_SIGNUP_TAKEN_TEXT = Template(
    """$greeting

Someone tried to create a ClinicFlow account with this email address, which already has one.
Nothing was changed. If it was you, log in instead, or reset your password here:

$link

If it was not you, you can ignore this email.
"""
)

_SIGNUP_TAKEN_HTML = Template(
    """<p>$greeting</p>
<p>Someone tried to create a ClinicFlow account with this email address, which already has one.
Nothing was changed. If it was you, log in instead, or reset your password:</p>
$button
<p>If it was not you, you can ignore this email.</p>"""
)

_PASSWORD_CHANGED_TEXT = Template(
    """$greeting

The password of your ClinicFlow account was just reset, and every session was ended.

$keys
Review your practice's API keys here:

$link
"""
)

_PASSWORD_CHANGED_HTML = Template(
    """<p>$greeting</p>
<p>The password of your ClinicFlow account was just reset, and every session was ended.</p>
<p>$keys</p>
$button"""
)


def signup_address_taken_email(*, to: str, full_name: str, link: str) -> EmailMessageSpec:
    """To the real owner of an address someone tried to sign up with (sign-up answers both
    alike, so the address is not revealed to the one who tried)."""
    return _render(
        to=to, subject="Someone tried to sign up with your email address", link=link,
        label="Reset password", text=_SIGNUP_TAKEN_TEXT, html_body=_SIGNUP_TAKEN_HTML,
        values={"greeting": _greeting(full_name)},
    )  # fmt: skip


def password_changed_email(
    *, to: str, full_name: str, suspended_keys: list[str], link: str
) -> EmailMessageSpec:
    if suspended_keys:
        names = ", ".join(_one_line(name) for name in suspended_keys)
        keys = (
            f"The API keys you had created are suspended until you confirm them: {names}. "
            "If you did not create one of them, revoke it instead."
        )
    else:
        keys = "You had created no API key, so none was suspended."
    return _render(
        to=to, subject="Your ClinicFlow password was reset", link=link, label="Review API keys",
        text=_PASSWORD_CHANGED_TEXT, html_body=_PASSWORD_CHANGED_HTML,
        values={"greeting": _greeting(full_name), "keys": keys},
    )  # fmt: skip


def password_reset_email(
    *, to: str, full_name: str, link: str, minutes_valid: int
) -> EmailMessageSpec:
    if minutes_valid < 1:
        raise ValueError("A reset link must be valid for at least one minute.")
    unit = "minute" if minutes_valid == 1 else "minutes"
    values = {"greeting": _greeting(full_name), "validity": f"{minutes_valid} {unit}"}
    return _render(
        to=to,
        subject="Reset your ClinicFlow password",
        link=link,
        label="Reset password",
        text=_RESET_TEXT,
        html_body=_RESET_HTML,
        values=values,
    )


def verify_email_email(*, to: str, full_name: str, link: str) -> EmailMessageSpec:
    return _render(
        to=to,
        subject="Confirm your email address",
        link=link,
        label="Confirm email address",
        text=_VERIFY_TEXT,
        html_body=_VERIFY_HTML,
        values={"greeting": _greeting(full_name)},
    )


def invitation_email(
    *,
    to: str,
    tenant_name: str,
    role: str,
    inviter_name: str,
    link: str,
    expires_at: datetime,
) -> EmailMessageSpec:
    tenant = _one_line(tenant_name)
    values = {
        "tenant": tenant,
        "role": _one_line(role),
        "inviter": _one_line(inviter_name) or "A colleague",
        "expires": _format_expiry(expires_at),
    }
    return _render(
        to=to,
        subject="You are invited to a practice on ClinicFlow",  # names stay in the body
        link=link,
        label="Accept invitation",
        text=_INVITE_TEXT,
        html_body=_INVITE_HTML,
        values=values,
    )


def _render(
    *,
    to: str,
    subject: str,
    link: str,
    label: str,
    text: Template,
    html_body: Template,
    values: dict[str, str],
) -> EmailMessageSpec:
    """Fill one template pair: raw values for the text part, escaped ones for the HTML part."""
    _require_web_link(link)
    escaped = {key: html.escape(value) for key, value in values.items()}
    safe_link = html.escape(link)
    button = _HTML_BUTTON.substitute(link=safe_link, label=html.escape(label))
    content = html_body.substitute(escaped, link=safe_link, button=button)
    return EmailMessageSpec(
        to=to,
        subject=_one_line(subject),
        text=text.substitute(values, link=link) + _TEXT_FOOTER,
        html=_HTML_PAGE.substitute(content=content, link=safe_link),
    )


def _require_web_link(link: str) -> None:
    """Only http(s) links go into an href; anything else (javascript:, data:) is a bug."""
    if not link.startswith(("https://", "http://")):
        raise ValueError("E-mail links must be absolute http(s) URLs.")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _greeting(full_name: str) -> str:
    name = _one_line(full_name)
    return f"Hello {name}," if name else "Hello,"


def _format_expiry(moment: datetime) -> str:
    """Spell the expiry out in UTC; a naive datetime is taken to be UTC already."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{aware.day} {aware:%B %Y at %H:%M} UTC"


def patient_email(*, to: str, practice: str, subject: str, text: str) -> EmailMessageSpec:
    """A practice's own message to a patient: their text, escaped for the HTML part."""
    paragraphs = "".join(
        f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
        for block in text.split("\n\n")
        if block.strip()
    )
    signature = html.escape(_one_line(practice))
    return EmailMessageSpec(
        to=to,
        subject=_one_line(subject),
        text=f"{text}\n\n-- \n{_one_line(practice)}\n",
        html=(
            '<!doctype html>\n<html lang="en">\n<body style="font-family: Arial, Helvetica, '
            f'sans-serif; color: #1f2933; line-height: 1.5;">\n{paragraphs}\n'
            f"<p>{signature}</p>\n</body>\n</html>\n"
        ),
    )


def appointment_reminder(
    *, to: str, patient_name: str, practice: str, starts: datetime, location: str | None
) -> EmailMessageSpec:
    """`starts` in the practice's time zone; spelled out with its offset."""
    when = f"{starts:%A %d %B %Y at %H:%M} ({starts:%z})"
    where = f"\nWhere: {_one_line(location)}" if location else ""
    text = (
        f"{_greeting(patient_name)}\n\nThis is a reminder of your appointment with "
        f"{_one_line(practice)} on {when}.{where}\n\nIf you cannot come, please let us know."
    )
    return patient_email(
        to=to, practice=practice, subject=f"Reminder: your appointment on {starts:%d %B}",
        text=text,
    )  # fmt: skip
