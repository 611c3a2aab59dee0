"""Which events exist and which a webhook subscription receives.

ClinicFlow's own events (the catalogue) are sent only by ClinicFlow, after the change they
describe, so a receiver may act on them (e.g. message a patient about a cancellation). A
practice's staff may send events of their own (`POST /notifications`, channel `webhook`),
always named `custom.<name>`: they can never pass for one of the system's events, today's or
a future one's. A subscription lists system event types and custom names; `custom.*` receives
every custom event.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal, get_args

from pydantic import StringConstraints

SystemEventType = Literal[
    "appointment.created",
    "appointment.updated",
    "appointment.cancelled",
    "appointment.status_changed",
    "patient.created",
    "patient.updated",
]
SYSTEM_EVENT_TYPES: frozenset[str] = frozenset(get_args(SystemEventType))
# Sent by POST /webhooks/{id}/ping to one webhook; never subscribed to.
PING_EVENT_TYPE = "webhook.ping"

CUSTOM_PREFIX = "custom."
EVERY_CUSTOM_EVENT = "custom.*"
CUSTOM_EVENT_PATTERN = r"^custom\.[a-z0-9][a-z0-9_.-]*$"
CustomEventType = Annotated[
    str, StringConstraints(min_length=8, max_length=100, pattern=CUSTOM_EVENT_PATTERN)
]


def is_custom(event_type: str) -> bool:
    return event_type.startswith(CUSTOM_PREFIX)


def receives(subscribed: Collection[str], event_type: str) -> bool:
    """Whether a subscription to `subscribed` gets `event_type`: named, or a custom event
    and `custom.*`."""
    return event_type in subscribed or (is_custom(event_type) and EVERY_CUSTOM_EVENT in subscribed)
