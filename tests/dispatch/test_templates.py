"""WhatsApp template headers: the ledger's JSON shapes, and the client's header types."""

from __future__ import annotations

from typing import Any

import pytest

from postier.dispatch.templates import header_from_payload
from postier.providers.afilnet.whatsapp import FileHeader, LocationHeader, template_options
from postier.rules.errors import RuleViolation


@pytest.mark.parametrize("header", [None, {}])
def test_no_header_is_none(header: dict[str, Any] | None) -> None:
    assert header_from_payload(header) is None


def test_file_header() -> None:
    header = header_from_payload({"file": "https://example.com/menu.pdf?sig=1"})

    assert header == FileHeader("https://example.com/menu.pdf?sig=1")


def test_location_header_reads_numbers_given_as_text() -> None:
    header = header_from_payload(
        {"latitude": "48.8566", "longitude": 2.3522, "name": "Boutique", "address": "Paris 4e"}
    )

    assert header == LocationHeader(48.8566, 2.3522, "Boutique", "Paris 4e")
    assert isinstance(header, LocationHeader)
    # the form Afilnet takes (Afilnet WhatsApp API docs, annex), with dots for decimals
    assert template_options(None, header) == (
        '{"header": {"file": "(48.8566, 2.3522)", '
        '"location": {"name": "Boutique", "address": "Paris 4e"}}}'
    )


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://example.com/menu.pdf", "file_url.scheme"),
        ("https://example.com/menu.exe", "file_url.extension"),
        ("https://user:pw@example.com/menu.pdf", "file_url.credentials"),
        ("", "file_url.syntax"),
    ],
)
def test_file_header_with_a_url_whatsapp_cannot_fetch(url: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        header_from_payload({"file": url})

    assert (caught.value.field, caught.value.rule) == ("header.file", rule)


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(91, 0), (-90.5, 0), (0, 180.01), (0, -181), ("nord", 2.35), (None, 2.35), ("nan", 0)],
)
def test_location_header_with_bad_coordinates(latitude: Any, longitude: Any) -> None:
    with pytest.raises(RuleViolation) as caught:
        header_from_payload(
            {"latitude": latitude, "longitude": longitude, "name": "B", "address": "A"}
        )

    assert (caught.value.field, caught.value.rule) == ("header", "header.location")


@pytest.mark.parametrize(
    "header",
    [
        {"file": "https://example.com/a.jpg", "caption": "x"},
        {"latitude": 48.8, "longitude": 2.3, "name": "B"},
        {"latitude": 48.8, "longitude": 2.3, "name": "B", "address": "A", "zoom": 3},
        # Afilnet's own wire form is not what the ledger stores
        {"file": "(48.8, 2.3)", "location": {"name": "B", "address": "A"}},
        {"url": "https://example.com/a.jpg"},
    ],
)
def test_header_of_another_shape_is_refused(header: dict[str, Any]) -> None:
    with pytest.raises(RuleViolation) as caught:
        header_from_payload(header)

    assert (caught.value.field, caught.value.rule) == ("header", "header.shape")
