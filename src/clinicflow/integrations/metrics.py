"""Automation figures from n8n executions: per workflow and for the whole practice."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from clinicflow.integrations.n8n_client import Execution, Workflow
from clinicflow.integrations.schemas import WorkflowMetrics

SUCCESS = frozenset({"success"})
ERROR = frozenset({"error", "crashed"})


def figures(
    executions: Iterable[Execution], start: datetime, end: datetime, workflow_id: str, name: str
) -> WorkflowMetrics:
    """Executions started in [start, end): counts, rates, average and p95 duration (of those
    with a stop time; n8n_client drops one earlier than the start, so none is negative), last
    run. `other` is whatever is neither success nor error (canceled, waiting...)."""
    runs = [e for e in executions if start <= e.started_at < end]
    success = sum(1 for run in runs if run.status in SUCCESS)
    error = sum(1 for run in runs if run.status in ERROR)
    durations = sorted(
        (run.stopped_at - run.started_at).total_seconds() * 1000
        for run in runs
        if run.stopped_at is not None
    )
    total = len(runs)
    return WorkflowMetrics(
        workflow_id=workflow_id,
        name=name,
        executions=total,
        success=success,
        error=error,
        other=total - success - error,
        success_rate=round(success / total, 4) if total else None,
        error_rate=round(error / total, 4) if total else None,
        average_duration_ms=round(sum(durations) / len(durations), 1) if durations else None,
        p95_duration_ms=round(_nearest_rank(durations, 0.95), 1) if durations else None,
        last_run_at=max((run.started_at for run in runs), default=None),
    )


def per_workflow(
    workflows: list[Workflow], executions: list[Execution], start: datetime, end: datetime
) -> list[WorkflowMetrics]:
    names = {workflow.id: workflow.name for workflow in workflows}
    ids = list(names) + sorted({e.workflow_id for e in executions} - names.keys())
    return [
        figures(
            (e for e in executions if e.workflow_id == wid), start, end, wid, names.get(wid, wid)
        )
        for wid in ids
    ]


def _nearest_rank(ordered: list[float], share: float) -> float:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
