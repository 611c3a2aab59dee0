"""The period summary, computed with Decimal from the entries (never float)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from clinicflow.finance.models import EntryKind, FinancialEntry
from clinicflow.finance.schemas import CurrencySummary

ZERO = Decimal("0.00")


def summarise(
    entries: Iterable[FinancialEntry], first_day: date, last_day: date, today: date, zone: ZoneInfo
) -> list[CurrencySummary]:
    """received: income paid in the period; outstanding: unpaid income due in it; overdue: the
    part of outstanding already past due; expenses_paid: expenses paid in it;
    received_by_method: received per method; by_category: paid income minus paid expenses."""
    buckets: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    methods: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    categories: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for entry in entries:
        totals = buckets[entry.currency]
        paid_day = _local_day(entry.paid_at, zone)
        paid_in_period = paid_day is not None and first_day <= paid_day <= last_day
        due_in_period = first_day <= entry.due_date <= last_day
        category = entry.category or "uncategorised"
        if entry.kind == EntryKind.INCOME and paid_in_period:
            totals["received"] += entry.amount
            methods[entry.currency][entry.method or "unspecified"] += entry.amount
            categories[entry.currency][category] += entry.amount
        elif entry.kind == EntryKind.EXPENSE and paid_in_period:
            totals["expenses_paid"] += entry.amount
            categories[entry.currency][category] -= entry.amount
        elif entry.kind == EntryKind.INCOME and entry.paid_at is None and due_in_period:
            totals["outstanding"] += entry.amount
            if entry.due_date < today:
                totals["overdue"] += entry.amount
    return [
        CurrencySummary(
            currency=currency,
            received=totals["received"],
            outstanding=totals["outstanding"],
            overdue=totals["overdue"],
            expenses_paid=totals["expenses_paid"],
            received_by_method=dict(sorted(methods[currency].items())),
            by_category=dict(sorted(categories[currency].items())),
        )
        for currency, totals in sorted(buckets.items())
    ]


def _local_day(moment: datetime | None, zone: ZoneInfo) -> date | None:
    return moment.astimezone(zone).date() if moment else None
