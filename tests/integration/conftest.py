"""The integration stack: a private Redis, a SQLite ledger, the webhook receiver, a real Celery
worker and beat, and a sandbox of its own over HTTP. Started once for the package; each test
starts on a quiet stack (``quiet_stack``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from postier import tasknames
from postier.config import DispatchSettings, HealthSettings, HttpSettings, RateLimit, Settings
from postier.ledger.db import make_engine, session_scope
from postier.ledger.models import Message, MessageStatus
from postier.ledger.queries import get_message
from postier.ledger.states import transition_many
from postier.sandbox import Sandbox, SandboxServer
from postier.stack import Stack, StackOptions
from producers.messages import Producer

FAST_DISPATCH = DispatchSettings(
    max_attempts=3,
    backoff_base=0.2,
    backoff_max=1.0,
    release_interval=0.2,
    republish_interval=1.0,
    republish_after=4.0,
    poll_delivery_interval=0.3,
    poll_inbox_interval=0.3,
    reap_interval=1.0,
    stuck_after=4.0,
)


def integration_settings() -> Settings:
    """Short timeouts and beat periods so end-to-end tests settle in seconds."""
    return Settings(
        _env_file=None,
        http=HttpSettings(connect_timeout=1.0, read_timeout=2.0, short_retry_attempts=2),
        dispatch=FAST_DISPATCH,
        # a short cool-down, so a test sees the traffic come back in seconds
        health=HealthSettings(cool_down=2.0),
        rate_limits={
            "afilnet": RateLimit(rate=500, burst=100),
            "primotexto": RateLimit(rate=500, burst=100),
            "octopush": RateLimit(rate=500, burst=100),
        },
    )


@pytest.fixture(scope="package")
def stack_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of the stack's own, so its worker's polls never reach other tests' sandbox."""
    with SandboxServer(Sandbox(delivery_delay=0.5, seed=4321)) as server:
        yield server


@pytest.fixture
def sandbox(stack_sandbox: SandboxServer) -> Sandbox:
    """The stack's sandbox, emptied before the test (overrides the root fixture)."""
    stack_sandbox.sandbox.reset()
    return stack_sandbox.sandbox


@pytest.fixture(scope="package")
def stack(
    stack_sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Redis, the ledger, the webhook receiver, a worker and beat; stopped after the package."""
    workdir = tmp_path_factory.mktemp("stack")
    options = StackOptions(
        workdir=workdir,
        private_redis=True,
        sandbox_url=stack_sandbox.url,
        flower=False,
        worker_concurrency=4,
        settings=integration_settings(),
        log_level="info",
    )
    with Stack(options) as running:
        if not running.wait_for_worker(timeout=60):
            raise RuntimeError(f"the worker did not answer; see {workdir}/worker.log")
        yield running


@pytest.fixture(autouse=True)
def quiet_stack(request: pytest.FixtureRequest) -> None:
    """Each test starts on a quiet stack: what earlier tests left unsent is cancelled, their
    tasks purged from the broker, and no send is in flight."""
    if "stack" not in request.fixturenames:
        return
    stack: Stack = request.getfixturevalue("stack")
    engine: Engine = request.getfixturevalue("ledger")
    with session_scope(engine) as session:
        leftovers = session.exec(
            select(Message.id).where(
                col(Message.status).in_([MessageStatus.SCHEDULED, MessageStatus.QUEUED])
            )
        ).all()
        if leftovers:
            transition_many(
                session,
                list(leftovers),
                [MessageStatus.SCHEDULED, MessageStatus.QUEUED],
                MessageStatus.CANCELLED,
                detail="test isolation",
            )
    client = redis.Redis.from_url(stack.redis_url)
    client.delete(*tasknames.ALL_QUEUES)
    # provider health from earlier tests' faults: every provider starts closed
    health_keys = client.keys("postier:health:*")
    if health_keys:
        client.delete(*health_keys)
    client.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            in_flight = session.exec(
                select(Message.id).where(col(Message.status) == MessageStatus.SENDING)
            ).first()
        if in_flight is None:
            break
        time.sleep(0.1)
    request.getfixturevalue("sandbox").reset()


@pytest.fixture
def live_sandbox(stack: Stack, sandbox: Sandbox) -> Sandbox:
    """The sandbox the stack's worker talks to, reset for this test."""
    return sandbox


@pytest.fixture(scope="package")
def ledger(stack: Stack) -> Engine:
    return make_engine(stack.database_url)


@pytest.fixture(scope="package")
def producer(stack: Stack, ledger: Engine) -> Producer:
    return Producer(stack.settings, engine=ledger)


WaitFor = Callable[..., MessageStatus]


def wait_until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s: {what}"
        time.sleep(0.05)


#: queues whose tasks a test waits for: beat's passes (``postier.scheduled``) never stop coming
SETTLED_QUEUES = (tasknames.QUEUE_SEND, tasknames.QUEUE_BULK, tasknames.QUEUE_HOOKS)


def broker_idle(client: redis.Redis) -> bool:
    """Whether no send or hook task waits in a queue nor runs on a worker (tasks are acked
    late, so one being run stays in the transport's ``unacked`` hash until it ends; each entry
    there names the queue it came from). Beat's periodic passes are not waited for: with a
    release every 0.2 s the broker is never idle twice in a row."""
    waiting = sum(int(client.llen(queue)) for queue in SETTLED_QUEUES)
    if waiting:
        return False
    for raw in client.hvals("unacked"):
        try:
            _message, _exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            return False
        if routing_key in SETTLED_QUEUES:
            return False
    return True


Settle = Callable[..., None]


@pytest.fixture
def settle(stack: Stack) -> Iterator[Settle]:
    """Wait until every task published so far has run: the broker seen idle twice in a row
    (a task fetched by a worker is out of its queue an instant before it is in ``unacked``)."""
    client = redis.Redis.from_url(stack.redis_url)

    def wait(timeout: float = 20.0) -> None:
        seen = 0

        def idle_twice() -> bool:
            nonlocal seen
            seen = seen + 1 if broker_idle(client) else 0
            return seen >= 2

        wait_until(idle_twice, "the broker stays busy", timeout)

    yield wait
    client.close()


@pytest.fixture
def wait_for(ledger: Engine) -> WaitFor:
    """Wait until a message reaches one of ``statuses``; return the status it ended in."""

    def wait(message_id: str, *statuses: MessageStatus, timeout: float = 20.0) -> MessageStatus:
        deadline = time.monotonic() + timeout
        current: MessageStatus | None = None
        while time.monotonic() < deadline:
            with session_scope(ledger) as session:
                message = get_message(session, message_id)
                current = message.status if message else None
            if current in statuses:
                return current
            time.sleep(0.1)
        raise AssertionError(f"{message_id} stayed {current}, wanted one of {statuses}")

    return wait
