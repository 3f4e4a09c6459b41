"""``.env.example`` written from the settings model, so the list of settings never drifts.

Every setting of :class:`postier.config.Settings` becomes a commented ``POSTIER_…=default`` line
under its meaning, read from the ``#:`` comment above the field in ``postier/config.py`` (or
its ``Field(description=…)``); a section starts with the first line of the settings class's
docstring. ``postier env-example`` prints it, ``make env-example`` writes the file, and a test
fails when the file and the model disagree or when a field has no meaning.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from functools import cache
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr

from postier.config import Settings

PREFIX = "POSTIER_"
DELIMITER = "__"

HEADER = """\
# Postier's settings, every one with its default and its meaning.
# Generated from postier/config.py by `postier env-example` (make env-example): do not edit.
#
# Copy to .env (read from the working directory) or set them in the environment; a line left
# commented keeps the default. Nested settings use "__": POSTIER_OCTOPUSH__API_KEY=…
# Lists and maps are JSON. Secrets are empty here and are never logged.
"""


class UndocumentedSetting(ValueError):
    """A settings field without a ``#:`` comment or a description."""


@cache
def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comment above each field of ``model``'s class body, joined into one line.

    A field with no comment, written on the line right under a commented field, shares that
    field's comment (a group such as ``quiet_start`` and ``quiet_end``).
    """
    lines, _ = inspect.getsourcelines(model)
    source = textwrap.dedent("".join(lines))
    body = source.splitlines()
    tree = ast.parse(source)
    classdef = tree.body[0]
    assert isinstance(classdef, ast.ClassDef)
    comments: dict[str, str] = {}
    previous: tuple[str, int] | None = None  # the last field's comment and its end line
    for statement in classdef.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            previous = None
            continue
        above: list[str] = []
        index = statement.lineno - 2
        while index >= 0 and body[index].strip().startswith("#:"):
            above.insert(0, body[index].strip()[2:].strip())
            index -= 1
        if above:
            comments[statement.target.id] = " ".join(above)
        elif previous is not None and previous[1] == statement.lineno - 1:
            # a field right under a commented one shares its comment ("#: beat periods")
            comments[statement.target.id] = previous[0]
        found = comments.get(statement.target.id)
        end = statement.end_lineno or statement.lineno
        previous = (found, end) if found else None
    return comments


def meaning(model: type[BaseModel], name: str) -> str:
    """What the field means: its description, else its ``#:`` comment."""
    found = model.model_fields[name].description
    for cls in model.__mro__:  # an inherited field is commented in its own class
        if found:
            break
        if (
            isinstance(cls, type)
            and issubclass(cls, BaseModel)
            and name in vars(cls).get("__annotations__", {})
        ):
            found = field_comments(cls).get(name)
    if not found:
        raise UndocumentedSetting(f"{model.__name__}.{name} has no #: comment or description")
    return found


def summary(model: type[BaseModel]) -> str:
    """The first line of a settings class's docstring."""
    doc = inspect.getdoc(model) or model.__name__
    return doc.strip().splitlines()[0]


def render_value(value: Any) -> str:
    """A default as the environment would spell it (JSON for lists and maps)."""
    if isinstance(value, SecretStr) or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"))
    if isinstance(value, (dict, list)):
        return json.dumps(
            {
                k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
                for k, v in value.items()
            }
            if isinstance(value, dict)
            else value
        )
    return str(value)


def _notes(annotation: Any, value: Any) -> str:
    notes: list[str] = []
    choices = [a for a in get_args(annotation) if get_origin(annotation) is Literal]
    if choices:
        notes.append("one of: " + ", ".join(str(c) for c in choices))
    if isinstance(value, SecretStr):
        notes.append("secret")
    elif value is None:
        notes.append("unset by default")
    return f" ({'; '.join(notes)})" if notes else ""


def _entry(lines: list[str], comment: str, key: str, value: str) -> None:
    lines.extend(f"# {line}" for line in textwrap.wrap(comment, width=96))
    lines.append(f"#{key}={value}")
    lines.append("")


def _is_section(value: Any) -> bool:
    return isinstance(value, BaseModel)


def _is_model_map(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(v, BaseModel) for v in value.values())
    )


def _walk(model: BaseModel, prefix: str, lines: list[str], names: list[str]) -> None:
    """Entries of ``names`` (fields of ``model``); a nested model becomes a section."""
    cls = type(model)
    for name in names:
        info = cls.model_fields[name]
        value = getattr(model, name)
        key = f"{prefix}{name.upper()}"
        if _is_section(value):
            lines.append(f"# == {name}: {summary(type(value))}")
            lines.append("")
            _walk(value, key + DELIMITER, lines, list(type(value).model_fields))
        elif _is_model_map(value):
            # one line per key and field: the map is merged field by field (config.py)
            parent = meaning(cls, name)
            for item, sub in value.items():
                for sub_name in type(sub).model_fields:
                    _entry(
                        lines,
                        f"{item}: {meaning(type(sub), sub_name)} ({parent})",
                        f"{key}{DELIMITER}{item.upper()}{DELIMITER}{sub_name.upper()}",
                        render_value(getattr(sub, sub_name)),
                    )
        else:
            comment = meaning(cls, name) + _notes(info.annotation, value)
            _entry(lines, comment, key, render_value(value))


def render_env_example(settings: Settings | None = None) -> str:
    """The text of ``.env.example``: the defaults of ``Settings``, whatever the environment.

    The top-level settings come first (section "general"), then one section per group.
    """
    model = settings or Settings.model_construct()
    names = list(type(model).model_fields)
    general = [n for n in names if not _is_section(getattr(model, n))]
    groups = [n for n in names if _is_section(getattr(model, n))]
    lines: list[str] = [HEADER, "# == general", ""]
    _walk(model, PREFIX, lines, general)
    _walk(model, PREFIX, lines, groups)
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = [
    "UndocumentedSetting",
    "field_comments",
    "meaning",
    "render_env_example",
    "render_value",
    "summary",
]
