"""The roles as plain processes: /metrics moving end to end, ``postier health``, JSON logs.

Messages go through the stack (producer → Redis → worker → sandbox → ledger); the worker's
/metrics is scraped before and after, and the counters must have moved by what was sent.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from postier.health import check_worker
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import MessageStatus
from postier.ledger.queries import get_message
from postier.stack import BULK_WORKER, TRANSACTIONAL_WORKER, Stack
from producers.messages import Producer
from tests.deploy.conftest import RunCli

pytestmark = pytest.mark.integration

NUMBERS = ("0612345671", "0612345672", "0612345673")
OCTOPUSH_NUMBER = "0612345674"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def ledger(deploy_stack: Stack) -> Engine:
    return make_engine(deploy_stack.database_url)


def wait_until(engine: Engine, message_id: str, status: MessageStatus, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    current = None
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            message = get_message(session, message_id)
            current = message.status if message else None
        if current == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"{message_id} stayed {current}, wanted {status}")


def test_metrics_move_when_messages_go_through_the_stack(
    deploy_stack: Stack, ledger: Engine
) -> None:
    url = deploy_stack.metrics_url()
    before = scrape(url)
    producer = Producer(deploy_stack.settings, engine=ledger)
    ids = [producer.send_sms(number, "Votre code : 4321").id for number in NUMBERS]
    octopush = producer.send_sms(OCTOPUSH_NUMBER, "Bonjour", provider="octopush")
    for message_id in ids:
        wait_until(ledger, message_id, MessageStatus.DELIVERED)
    wait_until(ledger, octopush.id, MessageStatus.DELIVERED)
    time.sleep(0.5)  # the task_postrun counter follows the task's last ledger write
    after = scrape(url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("postier_messages_total", provider="primotexto", state="sent") == len(NUMBERS)
    assert moved("postier_messages_total", provider="octopush", state="sent") == 1
    assert moved("postier_send_duration_seconds_count", provider="primotexto") == len(NUMBERS)
    assert moved("postier_rate_limit_wait_seconds_count", provider="primotexto") == len(NUMBERS)
    assert moved("postier_tasks_total", task="postier.send_message", state="SUCCESS") >= 4
    assert moved("postier_tasks_total", task="postier.poll_delivery_states", state="SUCCESS") > 0
    # scrape-time gauges: queue depth of every queue, and the ledger's counts
    for queue in ("postier.send", "postier.scheduled", "postier.hooks"):
        assert ("postier_queue_depth", (("queue", queue),)) in after
    assert ("postier_queue_unacked", ()) in after
    # the tasks by the queue they came from (their routing key), and beat's heartbeat: the
    # signals the alert rules of deploy/monitoring read
    assert moved("postier_queue_consumed_total", queue="postier.send") >= 4
    assert moved("postier_queue_consumed_total", queue="postier.scheduled") > 0
    beat = value(after, "postier_beat_last_publish_timestamp_seconds")
    assert time.time() - 30 < beat <= time.time() + 1, "beat publishes every release_interval"
    # the ledger gauge counts live states only; the final totals are the counters'
    assert moved("postier_messages_total", provider="primotexto", state="delivered") == len(NUMBERS)
    gauge = "postier_ledger_messages"
    assert "delivered" not in {dict(labels).get("state") for name, labels in after if name == gauge}


def test_health_passes_on_the_stack_and_fails_without_redis(
    deploy_stack: Stack, run_cli: RunCli
) -> None:
    env = deploy_stack.environment()
    ok = run_cli("health", "--worker", "--timeout", "5", env=env)
    assert ok.exit_code == 0, ok.output
    assert "redis: ok" in ok.stdout and "ledger: ok" in ok.stdout and "worker: ok" in ok.stdout
    # whichever worker answers first: the transactional or the bulk one (a worker per lane)
    assert "worker@" in ok.stdout or "worker-bulk@" in ok.stdout or "worker-callbacks@" in ok.stdout
    # each lane's worker answers its own probe (--worker-name, as compose and Kubernetes ask)
    for role in (TRANSACTIONAL_WORKER, BULK_WORKER):
        node = f"{role}@{socket.gethostname()}"
        named = run_cli("health", "--worker-name", node, "--timeout", "5", env=env)
        assert named.exit_code == 0, named.output
        assert f"worker: ok {node}" in named.stdout
    absent = check_worker(deploy_stack.settings, 1.0, name="nobody@nowhere")
    assert not absent.ok and "nobody@nowhere" in absent.detail
    dead_redis = {**env, "POSTIER_REDIS_URL": "redis://:hunter2-secret@127.0.0.1:1/0"}
    dead = run_cli("health", "--timeout", "1", env=dead_redis)
    assert dead.exit_code == 1
    assert "redis: FAILED" in dead.stdout and "ledger: ok" in dead.stdout
    assert "hunter2-secret" not in dead.output


def test_the_worker_logs_json_with_ids_and_no_full_number(deploy_stack: Stack) -> None:
    """Every role's log records are JSON here (settings.log.format); the send records carry
    the message id, provider and attempt, and no log holds a full number or a secret."""
    log = Path(deploy_stack.workdir / "worker.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    sent = [r for r in records if r.get("message") == "sent"]
    assert sent, "no 'sent' record in worker.log"
    for record in sent:
        assert {"ts", "level", "logger", "message_id", "provider", "attempt"} <= set(record)
        assert record["recipient"].count("*") >= 6
    done = [r for r in records if "succeeded" in r["message"] and "send_message" in r["message"]]
    assert done and all("message_id" in r for r in done), "task records carry the message id"
    secrets = [
        deploy_stack.settings.primotexto.api_key.get_secret_value(),
        deploy_stack.settings.octopush.api_key.get_secret_value(),
    ]
    for name in ("worker.log", "beat.log", "webhooks.log", "flower.log"):
        text = (deploy_stack.workdir / name).read_text()
        for number in (*NUMBERS, OCTOPUSH_NUMBER):
            assert number not in text and f"+33{number[1:]}" not in text, (name, number)
        for secret in secrets:
            assert secret not in text, name
