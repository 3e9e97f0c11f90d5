"""How Alembic autogenerate writes trackd's column types, for trackd's revisions and apps'.

An application whose models use `trackd.jobs.BaseTaskTracking` passes this to its own
`context.configure(..., render_item=render_item)` in its Alembic `env.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from trackd.store import types as store_types


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Renders trackd's own column types as code the revision imports.

    Left to itself Alembic writes `trackd.store.types.UTCDateTime()` without the import, and
    renders `JSONType` as `...JSONB(astext_type=Text())` with `Text` undefined unless the
    revision was generated against PostgreSQL; either way the revision fails with a NameError.
    """
    if (
        type_ == "type"
        and isinstance(obj, TypeDecorator)
        and type(obj).__module__ == store_types.__name__
    ):
        autogen_context.imports.add(f"import {store_types.__name__}")
        return f"{store_types.__name__}.{type(obj).__name__}()"
    # `_variant_mapping` is where `with_variant` keeps its types; Alembic reads it the same way.
    variants = getattr(obj, "_variant_mapping", {})
    if type_ == "type" and type(obj) is JSON and isinstance(variants.get("postgresql"), JSONB):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False
