"""WhatsApp file URLs: public http(s) URLs whose path extension WhatsApp takes.

The extensions are the Afilnet WhatsApp API docs' (docs/PROVIDERS.md, "Afilnet, class=whatsapp").
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postier.rules import (
    FILE_TYPES,
    FILE_TYPES_BY_EXTENSION,
    RuleViolation,
    check_file_url,
    file_type_for_url,
)


def test_extension_table_is_the_documented_one() -> None:
    by_type = {
        kind: sorted(ext for ext, k in FILE_TYPES_BY_EXTENSION.items() if k == kind)
        for kind in FILE_TYPES
    }
    assert by_type == {
        "image": ["jpeg", "jpg", "png", "webp"],
        "video": ["3gp", "mp4", "mpeg"],
        "document": ["doc", "docx", "pdf", "ppt", "pptx", "txt", "xls", "xlsx"],
    }


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://cdn.example.fr/photo.jpg", "image"),
        ("https://cdn.example.fr/photo.JPEG", "image"),
        ("http://cdn.example.fr/a/b/c.png", "image"),
        ("https://cdn.example.fr/sticker.webp", "image"),
        ("https://cdn.example.fr/clip.mp4", "video"),
        ("https://cdn.example.fr/clip.mpeg", "video"),
        ("https://cdn.example.fr/clip.3gp", "video"),
        ("https://cdn.example.fr/facture.pdf?sig=abc&exp=1#page=2", "document"),
        ("https://cdn.example.fr/x.pdf?name=photo.jpg", "document"),
        ("https://cdn.example.fr/notes.txt", "document"),
        ("https://cdn.example.fr/deck.pptx", "document"),
        ("https://cdn.example.fr/deck.ppt", "document"),
        ("https://cdn.example.fr/cv.doc", "document"),
        ("https://cdn.example.fr/cv.docx", "document"),
        ("https://cdn.example.fr/t.xls", "document"),
        ("https://cdn.example.fr/t.XLSX", "document"),
        ("https://cdn.example.fr/mon%20fichier.pdf", "document"),
        ("https://cdn.example.fr:8443/archive.tar.pdf", "document"),
        ("HTTPS://CDN.EXAMPLE.FR/A.PNG", "image"),
        ("https://127.0.0.1/a.png", "image"),
        ("https://[2001:db8::1]/a.png", "image"),
    ],
)
def test_file_type_for_url(url: str, kind: str) -> None:
    assert file_type_for_url(url) == kind
    assert check_file_url(url) == url
    assert check_file_url(url, kind) == url


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("", "file_url.syntax"),
        ("https://cdn.example.fr/mon fichier.pdf", "file_url.syntax"),
        ("https://cdn.example.fr/a.pdf\n", "file_url.syntax"),
        ("https://cdn.example.fr:http/a.pdf", "file_url.syntax"),
        ("https://cdn.example.fr:99999/a.pdf", "file_url.syntax"),
        ("https://[::1/a.pdf", "file_url.syntax"),
        ("ftp://cdn.example.fr/a.pdf", "file_url.scheme"),
        ("file:///tmp/a.pdf", "file_url.scheme"),
        ("/tmp/a.pdf", "file_url.scheme"),
        ("cdn.example.fr/a.pdf", "file_url.scheme"),
        ("data:image/png;base64,AAAA", "file_url.scheme"),
        ("https:///a.pdf", "file_url.host"),
        ("https:a.pdf", "file_url.host"),
        ("https://user:secret@cdn.example.fr/a.pdf", "file_url.credentials"),
        ("https://user@cdn.example.fr/a.pdf", "file_url.credentials"),
        ("https://cdn.example.fr/", "file_url.extension"),
        ("https://cdn.example.fr", "file_url.extension"),
        ("https://cdn.example.fr/download?file=a.pdf", "file_url.extension"),
        ("https://cdn.example.fr/a.exe", "file_url.extension"),
        ("https://cdn.example.fr/a.gif", "file_url.extension"),
        ("https://cdn.example.fr/a.mpg", "file_url.extension"),
        ("https://cdn.example.fr/a.pdf/", "file_url.extension"),
        ("https://cdn.example.fr/.pdf", "file_url.extension"),
        ("https://cdn.example.fr/a.pdf.exe", "file_url.extension"),
    ],
)
def test_file_type_for_url_refuses(url: str, rule: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        file_type_for_url(url, field="header.file")
    assert (caught.value.field, caught.value.rule) == ("header.file", rule)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected", "rule", "field"),
    [
        ("https://x.fr/a.pdf", "image", "file_url.type_mismatch", "fileurl"),
        ("https://x.fr/a.mp4", "document", "file_url.type_mismatch", "fileurl"),
        ("https://x.fr/a.png", "sticker", "file_type.unknown", "type"),
        ("https://x.fr/a.png", "IMAGE", "file_type.unknown", "type"),
    ],
)
def test_check_file_url_against_expected_type(
    url: str, expected: str, rule: str, field: str
) -> None:
    with pytest.raises(RuleViolation) as caught:
        check_file_url(url, expected)
    assert (caught.value.field, caught.value.rule) == (field, rule)


_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


@given(
    st.sampled_from(["http", "https"]),
    st.lists(_segment, min_size=1, max_size=3),
    st.lists(_segment, max_size=3),
    st.sampled_from(sorted(FILE_TYPES_BY_EXTENSION)),
    st.booleans(),
    st.text(alphabet="abc=&.?/", max_size=20),
)
def test_type_comes_from_the_path_extension(
    scheme: str,
    host: list[str],
    path: list[str],
    extension: str,
    upper: bool,
    query: str,
) -> None:
    name = "/".join([*path, "file"]) + "." + (extension.upper() if upper else extension)
    url = f"{scheme}://{'.'.join(host)}/{name}?{query}"
    assert file_type_for_url(url) == FILE_TYPES_BY_EXTENSION[extension]


@given(st.text(max_size=60) | st.builds(lambda t: "https://h.fr/" + t, st.text(max_size=30)))
def test_any_text_gives_a_type_or_a_named_rule(url: str) -> None:
    try:
        kind = file_type_for_url(url)
    except RuleViolation as violation:
        assert violation.field == "fileurl"
        assert violation.rule.startswith("file_url.")
        return
    assert kind in FILE_TYPES
    assert url.lower().startswith(("http://", "https://"))
