"""How autogenerate writes column types into a new revision."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from sqlmodel.sql.sqltypes import AutoString

from postier.ledger.columns import UTCDateTime


def render_plain_type(
    type_: str, obj: Any, autogen_context: AutogenContext
) -> str | Literal[False]:
    """Autogenerate plain SQL types, so a revision never imports the models' Python types."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.Enum) and not obj.native_enum:
        return f"sa.String({obj.length})"
    if isinstance(obj, AutoString):
        return f"sa.String({obj.length})" if obj.length else "sa.String()"
    if isinstance(obj, sa.JSON):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False
