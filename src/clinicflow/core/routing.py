"""Path parameters named `*_id` match only UUIDs, at the router.

Without this, `/users/me` also matches `/users/{user_id}`, and `/financial-entries/summary`
matches `/financial-entries/{entry_id}`: a 405 for one then advertises the other's methods in
`Allow`, and a wrong id reaches a route only to fail validation there. With the UUID convertor
the templates are disjoint, and an id that is not a UUID is simply a path that does not exist
(404), like an id that is not there. The documented path stays `/users/{user_id}`.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import compile_path

_ID_PARAMETER = re.compile(r"\{(\w+_id)\}")


def match_ids_as_uuids(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and _ID_PARAMETER.search(route.path):
            constrained = _ID_PARAMETER.sub(r"{\1:uuid}", route.path)
            route.path_regex, route.path_format, route.param_convertors = compile_path(constrained)
