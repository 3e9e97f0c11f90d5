"""A JSON response rendered by orjson, for the routes that return many rows."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: several times faster than the standard library on a
    thousand rows, and it writes aware datetimes itself (RFC 3339, UTC as `Z`), so the
    routes hand it datetimes as they are."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)
