"""No provider knowledge in ``postier.dispatch`` and ``postier.campaigns``: they ask the
providers' registry (``providers.registry``) instead of naming a provider. A provider name in a
string, or a ``Provider.X ==`` comparison, fails here unless allowed below with its reason.
Docstrings may name providers (they explain); prose naming one in capitals (``Octopush``) too."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

from postier.providers.results import Provider

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("postier/dispatch", "postier/campaigns")
NAME = re.compile(r"\b(" + "|".join(re.escape(p.value) for p in Provider) + r")\b")

#: (file, string) -> why the name must stay
ALLOWED: Final[dict[tuple[str, str], str]] = {
    ("postier/campaigns/optout.py", "primotexto"): (
        "an opt-out source: Primotexto's unsubscriber list is the feature itself, and the"
        " name is the value stored in opt_outs.source"
    ),
    ("postier/campaigns/optout.py", "octopush"): (
        "an opt-out source: STOP SMS reach us on Octopush's inbound webhook; the name is the"
        " value stored in opt_outs.source and in inbound_messages.provider"
    ),
    ("postier/campaigns/cli.py", "octopush STOPs added: "): (
        "the opt-out sync report names the sources optout.py syncs"
    ),
    ("postier/campaigns/cli.py", "; primotexto: "): (
        "the opt-out sync report names the sources optout.py syncs"
    ),
}


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _is_provider_member(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Provider"
    )


def provider_knowledge(source: str) -> list[tuple[int, str]]:
    """(line, what) of every provider name in a string and every ``Provider.X`` comparison."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and NAME.search(node.value)
        ):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.Compare) and any(
            _is_provider_member(operand) for operand in (node.left, *node.comparators)
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def _scan() -> dict[tuple[str, str], list[int]]:
    hits: dict[tuple[str, str], list[int]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, what in provider_knowledge(path.read_text(encoding="utf-8")):
                hits.setdefault((relative, what), []).append(line)
    return hits


def test_dispatch_and_campaigns_name_no_provider() -> None:
    unexpected = {
        f"{path}:{lines[0]}: {what!r}"
        for (path, what), lines in _scan().items()
        if (path, what) not in ALLOWED
    }
    assert not unexpected, (
        "provider knowledge outside postier/providers (ask providers.registry instead):\n"
        + "\n".join(sorted(unexpected))
    )


def test_every_allowed_name_is_still_there() -> None:
    stale = set(ALLOWED) - set(_scan())
    assert not stale, f"allowed but no longer present, drop them: {sorted(stale)}"


def test_the_scan_finds_names_and_comparisons_but_not_docstrings() -> None:
    source = '''
"""Octopush and octopush in a docstring are fine."""
def f(provider, row):
    """so is primotexto here"""
    if provider == "octopush":
        return f"sent by afilnet {row}"
    if row.provider is Provider.PRIMOTEXTO:
        return None
    return PROVIDER_NAMES["Afilnet"]
'''
    found = dict(provider_knowledge(source))

    assert sorted(found) == [5, 6, 7]
    assert found[5] == "octopush"
    assert found[6] == "sent by afilnet "
    assert "Provider.PRIMOTEXTO" in found[7]
