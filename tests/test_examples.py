"""docs/examples/requests.http runs, in order, against the demo data: every request of it
answers what a reader following it expects (no 4xx/5xx), so the examples cannot rot."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from clinicflow.bootstrap import seed_demo

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples" / "requests.http"
_VARIABLE = re.compile(r"\{\{([\w.]+)\}\}")


def _requests(text: str) -> list[tuple[str, str | None, str, str, dict[str, str], str]]:
    """(title, name, method, url, headers, body) per `###` block that holds a request."""
    found = []
    for block in text.split("\n###")[1:]:
        title, *lines = block.strip("\n").split("\n")
        lines = [line for line in lines if not line.startswith("@")]
        name = next((line.split()[-1] for line in lines if line.startswith("# @name")), None)
        lines = [line for line in lines if not line.startswith("#")]
        if not lines or not lines[0].strip():
            continue
        method, url = lines[0].split(" ", 1)
        headers, body_at = {}, len(lines)
        for index, line in enumerate(lines[1:], start=1):
            if not line.strip():
                body_at = index + 1
                break
            key, _, value = line.partition(":")
            headers[key.strip()] = value.strip()
        found.append(
            (title.strip(), name, method, url, headers, "\n".join(lines[body_at:]).strip())
        )
    return found


async def test_the_example_requests_run_in_order_against_the_demo_data(
    client: httpx.AsyncClient, db: FastAPI
) -> None:
    await seed_demo(db.state.database, db.state.settings)
    text = EXAMPLES.read_text()
    base = re.search(r"^@base = (\S+)", text, re.MULTILINE)
    assert base is not None
    answers: dict[str, Any] = {}

    def fill(value: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            if match.group(1) == "base":
                return base.group(1)
            name, *path = match.group(1).split(".")
            found: Any = answers[name]
            for part in path[2:]:  # name.response.body.<field>
                found = found[part]
            return str(found)

        return _VARIABLE.sub(lookup, value)

    ran = 0
    for title, name, method, url, headers, body in _requests(text):
        target = fill(url).replace("http://127.0.0.1:8000", "")
        response = await client.request(
            method, target, headers={k: fill(v) for k, v in headers.items()},
            content=fill(body).encode() if body else None,
        )  # fmt: skip
        assert response.status_code < 400, f"{title}: {response.status_code} {response.text[:300]}"
        if name is not None:
            answers[name] = json.loads(response.text)
        ran += 1
    assert ran >= 40
