"""Files sent over WhatsApp (Afilnet ``sendfile`` and template headers; Afilnet WhatsApp API docs).

The provider fetches the file from a public URL and picks the kind from its extension:
image (JPG, PNG, WEBP), video (MP4, MPEG, 3GP), document (TXT, PDF, PPT, DOC, DOCX, XLS, PPTX,
XLSX). JPEG is accepted as the other spelling of JPG; MPG is not listed and is refused. Anything
else would come back as ``INCORRECT_FILETYPE`` or ``INCORRECT_FILEURL``, after a queue wait.

The extension is read from the URL path, not the query (``…/x.pdf?sig=…`` is a PDF). URLs that
carry a user or password are refused: URLs end up in logs.
"""

from __future__ import annotations

import posixpath
from typing import Final, Literal, get_args
from urllib.parse import unquote, urlsplit

from postier.rules.errors import RuleViolation

FileType = Literal["image", "video", "document"]

#: Afilnet sendfile ``type`` by file extension (Afilnet WhatsApp API docs)
FILE_TYPES_BY_EXTENSION: Final[dict[str, FileType]] = {
    **dict.fromkeys(("jpg", "jpeg", "png", "webp"), "image"),
    **dict.fromkeys(("mp4", "mpeg", "3gp"), "video"),
    **dict.fromkeys(("txt", "pdf", "ppt", "doc", "docx", "xls", "pptx", "xlsx"), "document"),
}
FILE_TYPES: Final[tuple[FileType, ...]] = get_args(FileType)


def file_type_for_url(url: str, *, field: str = "fileurl") -> FileType:
    """The WhatsApp file kind of the file at ``url``, or ``RuleViolation`` (``file_url.*``).

    Rules: ``file_url.syntax`` (blank, spaces or control characters, bad host or port),
    ``file_url.scheme`` (not http/https), ``file_url.host`` (no host),
    ``file_url.credentials`` (user or password in the URL), ``file_url.extension``
    (no extension, or one WhatsApp does not take).
    """
    if not url or any(char.isspace() or not char.isprintable() for char in url):
        raise RuleViolation(
            field, "file_url.syntax", "file URL is empty or holds spaces or control characters"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise RuleViolation(field, "file_url.syntax", "file URL is malformed") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise RuleViolation(
            field, "file_url.scheme", "file URL must start with http:// or https://"
        )
    try:
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError as exc:
        raise RuleViolation(
            field, "file_url.syntax", "file URL has a malformed host or port"
        ) from exc
    if not host:
        raise RuleViolation(field, "file_url.host", "file URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RuleViolation(
            field, "file_url.credentials", "file URL must not carry a user or password"
        )
    _, dot_extension = posixpath.splitext(unquote(parts.path))
    extension = dot_extension[1:].lower()
    file_type = FILE_TYPES_BY_EXTENSION.get(extension)
    if file_type is None:
        allowed = ", ".join(sorted(FILE_TYPES_BY_EXTENSION))
        raise RuleViolation(
            field,
            "file_url.extension",
            f"file URL path must end in one of: {allowed} (got {extension or 'none'!r})",
        )
    return file_type


def check_file_url(url: str, expected_type: str | None = None, *, field: str = "fileurl") -> str:
    """Return ``url`` if WhatsApp can send it, as ``expected_type`` when one is given.

    Extra rules: ``file_type.unknown`` (``expected_type`` is not image/video/document, field
    ``type``), ``file_url.type_mismatch`` (the extension says another kind).
    """
    if expected_type is not None and expected_type not in FILE_TYPES:
        raise RuleViolation(
            "type", "file_type.unknown", f"file type must be one of {', '.join(FILE_TYPES)}"
        )
    actual = file_type_for_url(url, field=field)
    if expected_type is not None and actual != expected_type:
        raise RuleViolation(
            field,
            "file_url.type_mismatch",
            f"file URL points to a {actual}, not a {expected_type}",
        )
    return url
