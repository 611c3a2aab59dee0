"""Path parameters named `*_id` match only UUIDs, at the router.

Without this, `/users/me` also matches `/users/{user_id}`, and `/financial-entries/summary`
matches `/financial-entries/{entry_id}`: a 405 for one then advertises the other's methods in
`Allow`, and a wrong id reaches a route only to fail validation there. With the UUID convertor
the templates are disjoint, and an id that is not a UUID is simply a path that does not exist
(404), like an id that is not there. The documented path stays `/users/{user_id}`.
"""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, UUIDConvertor, register_url_convertor
from starlette.routing import compile_path

_ID_PARAMETER = re.compile(r"\{(\w+_id)\}")


class _UUIDText(Convertor[str]):
    """Matches what a UUID looks like and hands the text on: the route's own annotation
    (uuid.UUID, or str for FHIR ids) parses it."""

    regex = UUIDConvertor.regex

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", _UUIDText())


def match_ids_as_uuids(router: APIRouter) -> APIRouter:
    """Before the router is included (inclusion reads each route's `path`). Idempotent."""
    for route in router.routes:
        if isinstance(route, APIRoute) and _ID_PARAMETER.search(route.path):
            route.path = _ID_PARAMETER.sub(r"{\1:id}", route.path)
            route.path_regex, route.path_format, route.param_convertors = compile_path(route.path)
    return router
