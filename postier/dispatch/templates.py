"""WhatsApp template headers as the ledger stores them (JSON) and as the client takes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postier.providers.afilnet.whatsapp import FileHeader, LocationHeader, TemplateHeader
from postier.rules.errors import RuleViolation
from postier.rules.files import check_file_url


def header_from_payload(header: Mapping[str, Any] | None) -> TemplateHeader | None:
    """``{"file": url}`` or ``{"latitude", "longitude", "name", "address"}``; else RuleViolation."""
    if not header:
        return None
    if set(header) == {"file"}:
        url = str(header["file"])
        check_file_url(url, field="header.file")
        return FileHeader(url)
    wanted = {"latitude", "longitude", "name", "address"}
    if set(header) == wanted:
        try:
            return LocationHeader(
                latitude=float(header["latitude"]),
                longitude=float(header["longitude"]),
                name=str(header["name"]),
                address=str(header["address"]),
            )
        except (TypeError, ValueError) as exc:
            raise RuleViolation(
                "header", "header.location", f"latitude/longitude must be numbers in range: {exc}"
            ) from exc
    raise RuleViolation(
        "header",
        "header.shape",
        "use {'file': url} or {'latitude', 'longitude', 'name', 'address'}",
    )
