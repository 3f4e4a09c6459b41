"""Structured logs: masking of numbers and secrets, context fields, text and JSON formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from postier.config import LogSettings, OctopushSettings, Settings
from postier.logs import (
    JsonFormatter,
    RedactingFilter,
    build_handler,
    configure_logging,
    connect_celery_signals,
    current_context,
    known_secrets,
    log_context,
    mask_text,
)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("to +33612345678 now", "to +336******78 now"),
        ("to +33 6 12 34 56 78.", "to +336******78."),
        ("(+1-202-555-0143)", "(+12*******43)"),
        ("06 12 34 56 78", "06******78"),
        ("06.12.34.56.78", "06******78"),
        ("destination=33612345678&x", "destination=33*******78&x"),
        ("0033612345678", "00*********78"),
        ("number 0612345678,", "number 06******78,"),
    ],
)
def test_numbers_are_masked(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


@pytest.mark.parametrize(
    "kept",
    [
        "message 5f52043d3d1947049acd6caee8bd7771",
        "task 10ac7cfe-bce0-4f82-b50c-e6ac85711112",
        "at 2026-11-22T21:47:37.812976+00:00",
        "took 0.0612345678 s",
        "epoch 1795384056.8182235",
        "already +336******78",
        "port 5432 and 127.0.0.1:6379",
        "sent 12 parts, cost 0.055",
    ],
)
def test_what_is_not_a_number_is_kept(kept: str) -> None:
    assert mask_text(kept) == kept


def test_secrets_and_url_passwords_are_masked() -> None:
    text = "key=abcd1234efgh url=redis://:hunter2@h:6379/0 pg=postgresql://u:p%40ss@db/x abc"
    masked = mask_text(text, ["abcd1234efgh", "abc"])
    assert masked == "key=*** url=redis://:***@h:6379/0 pg=postgresql://u:***@db/x abc"


def test_known_secrets_are_the_settings_secret_values_and_url_passwords() -> None:
    settings = Settings(
        _env_file=None,
        octopush=OctopushSettings(api_key=SecretStr("octo-key-123")),
        redis_url="redis://:redis-pass@127.0.0.1:6379/0",
        database_url="postgresql+psycopg://postier:db-pass@db/postier",
    )
    secrets = known_secrets(settings)
    assert {"octo-key-123", "redis-pass", "db-pass"} <= set(secrets)
    assert "" not in secrets


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through a JSON handler with both filters, into a buffer."""
    stream = io.StringIO()
    settings = Settings(
        _env_file=None,
        log=LogSettings(format="json"),
        octopush=OctopushSettings(api_key=SecretStr("octo-key-123")),
    )
    handler = build_handler(settings, stream=stream)
    logger = logging.getLogger("tests.logs.captured")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_masked_in_its_message_args_fields_and_traceback(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("calling %s with %s", "+33612345678", "octo-key-123", extra={"to": "0612345678"})
    try:
        raise ValueError("refused 0612345678 with key octo-key-123")
    except ValueError:
        logger.exception("failed")
    first, second = records(stream)
    assert first["message"] == "calling +336******78 with ***"
    assert first["to"] == "06******78"
    assert second["message"] == "failed"
    assert "06******78" in str(second["exc"]) and "octo-key-123" not in str(second["exc"])
    assert "0612345678" not in stream.getvalue()


def test_records_carry_the_context_fields_and_explicit_ones_win(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    with log_context(message_id="m1", provider="octopush"):
        with log_context(attempt=2):
            assert current_context() == {"message_id": "m1", "provider": "octopush", "attempt": 2}
            logger.info("inner")
        logger.info("explicit", extra={"provider": "primotexto"})
    logger.info("outside")
    inner, explicit, outside = records(stream)
    assert (inner["message_id"], inner["provider"], inner["attempt"]) == ("m1", "octopush", 2)
    assert explicit["provider"] == "primotexto" and "attempt" not in explicit
    assert "message_id" not in outside
    assert set(outside) == {"ts", "level", "logger", "message"}
    assert str(outside["ts"]).endswith("Z") and outside["level"] == "INFO"


def test_text_format_puts_fields_after_the_message() -> None:
    stream = io.StringIO()
    handler = build_handler(Settings(_env_file=None), stream=stream)
    record = logging.LogRecord("postier.x", logging.WARNING, __file__, 1, "failed", None, None)
    record.message_id = "abc"
    record.reason = "to 0612345678"
    record.data = {"nested": "dicts are for JSON"}
    handler.handle(record)
    line = stream.getvalue().strip()
    assert line.endswith("WARNING postier.x: failed message_id=abc reason=to 06******78")


def test_json_formatter_serialises_anything() -> None:
    record = logging.LogRecord("postier.x", logging.INFO, __file__, 1, "m", None, None)
    record.when = object()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["when"].startswith("<object object")


def test_a_filter_never_breaks_on_a_bad_format_string() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "%d items"


def test_configure_logging_replaces_its_handler_and_takes_the_level() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        settings = Settings(_env_file=None, log=LogSettings(level="debug"))
        first = configure_logging(settings, stream=io.StringIO())
        second = configure_logging(settings, stream=io.StringIO(), default_level="ERROR")
        assert first not in root.handlers and second in root.handlers
        assert root.level == logging.DEBUG
        default = configure_logging(
            Settings(_env_file=None),
            stream=io.StringIO(),
            default_level=logging.ERROR,
        )
        assert root.level == logging.ERROR
        root.removeHandler(default)
    finally:
        root.handlers = before
        root.setLevel(level)


class _Task:
    """What the signals read of a task: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_a_send_task_gives_its_records_the_message_id() -> None:
    from celery import signals

    from postier import tasknames

    connect_celery_signals()
    connect_celery_signals()  # idempotent
    task = _Task(tasknames.SEND_MESSAGE)
    signals.task_prerun.send(sender=task, task_id="t-1", task=task, args=["m-42"], kwargs={})
    assert current_context() == {"message_id": "m-42"}
    signals.task_postrun.send(sender=task, task_id="t-1", task=task, args=["m-42"], state="SUCCESS")
    assert current_context() == {}
    other = _Task(tasknames.RELEASE_DUE_MESSAGES)
    signals.task_prerun.send(sender=other, task_id="t-2", task=other, args=[], kwargs={})
    assert current_context() == {}


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        # httpx's request line of a Primotexto status lookup
        (
            "HTTP Request: GET https://api.primotexto.com/v2/notification/messages/status"
            '?identifier=%2B33612345678 "HTTP/1.1 200 OK"',
            "HTTP Request: GET https://api.primotexto.com/v2/notification/messages/status"
            '?identifier=%2B336******78 "HTTP/1.1 200 OK"',
        ),
        ("to=%2b33612345678&x=1", "to=%2B336******78&x=1"),
        ("+33612345678,+33612345679", "+336******78,+336******79"),
        ("33612345678,33612345679", "33*******78,33*******79"),
        ("0612345678,0612345679;0612345670", "06******78,06******79;06******70"),
    ],
    ids=["httpx lookup line", "lower-case %2b", "E.164 list", "Afilnet list", "national list"],
)
def test_url_encoded_numbers_and_lists_are_masked(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


def test_nested_extra_values_and_lists_are_masked() -> None:
    stream = io.StringIO()
    settings = Settings(_env_file=None, log=LogSettings(format="json"))  # type: ignore[call-arg]
    handler = build_handler(settings, stream=stream)
    logger = logging.getLogger("postier.test.nested")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "batch",
            extra={
                "recipients": ["+33612345678", "0612345679"],
                "data": {"to": {"number": "+33612345670"}, "pair": ("33612345671", 3)},
                "joined": "+33612345672,+33612345673",
            },
        )
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    for digits in ("612345678", "612345679", "612345670", "612345671", "612345672", "612345673"):
        assert digits not in line, line
    entry = json.loads(line)
    assert entry["recipients"] == ["+336******78", "06******79"]
    assert entry["data"]["pair"] == ["33*******71", 3]


def test_httpx_request_lines_are_kept_off() -> None:
    stream = io.StringIO()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configure_logging(settings, default_level=logging.DEBUG, stream=stream)
    logging.getLogger("httpx").info("HTTP Request: GET https://x/?identifier=%2B33612345678")
    assert stream.getvalue() == ""
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
