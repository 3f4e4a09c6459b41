"""All of Postier's settings, in one pydantic-settings class.

Every value comes from the environment (prefix ``POSTIER_``, nested with ``__``, e.g.
``POSTIER_OCTOPUSH__API_KEY``) or a ``.env`` file; nothing else in the code reads
``os.environ``. Secrets are ``SecretStr`` so they never print in a repr or a log line.
"""

from __future__ import annotations

import json
from datetime import time
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from postier.stack_record import read_record


class HttpSettings(BaseModel):
    """Timeouts and the short in-process retry budget shared by every provider client."""

    #: seconds to open a connection to a provider
    connect_timeout: float = 3.0
    #: seconds to wait for a provider's answer once the request is sent
    read_timeout: float = 10.0
    #: seconds to wait for a free connection of the process's pool
    pool_timeout: float = 2.0
    #: connections the process's connection pool keeps open at most (every provider together;
    #: at least ``dispatch.max_in_flight``, or concurrent sends would wait for a connection)
    max_connections: int = 100
    #: attempts of one call (first included) for errors that surely did not reach the provider
    short_retry_attempts: int = 3
    #: a Retry-After longer than this is not waited for in-process: the caller reschedules
    max_inline_wait: float = 1.0
    #: an HTTP(S) proxy to reach the providers through (``http://host:port``); the
    #: HTTP_PROXY/HTTPS_PROXY variables are not read
    proxy: str | None = None

    @field_validator("proxy")
    @classmethod
    def _http_proxy(cls, value: str | None) -> str | None:
        """httpx reaches an HTTP(S) proxy without extra packages; say so before a send fails."""
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("http.proxy is an http:// or https:// URL")
        return value or None


class AfilnetSettings(BaseModel):
    """Afilnet account (WhatsApp, contacts, SMS): one endpoint, credentials in the POST body."""

    #: the HTTP API endpoint
    base_url: str = "https://www.afilnet.com/api/http/"
    #: the account's user (its e-mail)
    user: str = ""
    #: the account's password
    password: SecretStr = SecretStr("")
    #: "post": credentials as form fields; "basic": an Authorization header. Never the URL.
    auth: Literal["post", "basic"] = "post"
    #: WhatsApp channel ids to send from and to poll for inbound messages
    whatsapp_platform_ids: list[str] = Field(default_factory=list)
    #: sender id of SMS sent through Afilnet
    sms_sender: str = "Postier"
    #: SMS characters outside GSM 03.38: "unicode" sends them as UCS-2 (70 characters per
    #: part), "transliterate" replaces them by their closest GSM spelling, "refuse" refuses
    sms_text_policy: Literal["refuse", "transliterate", "unicode"] = "unicode"


class PrimotextoSettings(BaseModel):
    """Primotexto REST API v2."""

    #: the REST API root
    base_url: str = "https://api.primotexto.com/v2/"
    #: the account's API key
    api_key: SecretStr = SecretStr("")
    #: sender id of SMS (unset: the account's default)
    sender: str | None = None
    #: characters outside Primotexto's list (error 31): "transliterate" replaces them by their
    #: closest allowed spelling (ê→e, œ→oe, ’→') and records the change on the message;
    #: "refuse" refuses the message. Primotexto takes no UCS-2, so no "unicode" here.
    text_policy: Literal["refuse", "transliterate"] = "transliterate"


class OctopushSettings(BaseModel):
    """Octopush: the legacy form API (XML or JSON answers) or the v1 JSON API."""

    #: the legacy form API root
    base_url: str = "https://www.octopush-dm.com/api/"
    #: the v1 JSON API root
    v1_base_url: str = "https://api.octopush.com/v1/public/"
    #: the account's login (its e-mail)
    login: str = ""
    #: the account's API key
    api_key: SecretStr = SecretStr("")
    #: which API sends: the legacy form API or v1
    transport: Literal["legacy", "v1"] = "legacy"
    #: the legacy API's answer format
    answer_format: Literal["xml", "json"] = "json"
    #: legacy types: XXX low cost, FR premium, WWW world
    sms_type: Literal["XXX", "FR", "WWW"] = "FR"
    #: sender id of SMS (unset: the account's default)
    sender: str | None = "Postier"
    #: sign legacy requests with request_keys/request_sha1
    sign_requests: bool = True
    #: Octopush's simulation mode (legacy request_mode=simu, v1 simulation_mode): every send
    #: is validated, priced and answered, but neither sent nor charged; to check an account
    #: and these settings against the real service without sending anything
    simulation_mode: bool = False
    #: characters outside GSM 03.38: "unicode" sends them as UCS-2 (70 characters per part),
    #: "transliterate" replaces them by their closest GSM spelling, "refuse" refuses
    text_policy: Literal["refuse", "transliterate", "unicode"] = "unicode"
    #: the short number of the "STOP au XXXXX" mention French premium SMS must carry (the
    #: Octopush API refuses marketing without it, error 121); set the one Octopush gives you
    stop_short_code: str = "36111"


class SandboxSettings(BaseModel):
    """The local provider simulator."""

    #: address ``postier sandbox`` listens on
    host: str = "127.0.0.1"
    #: port ``postier sandbox`` listens on
    port: int = 8025
    #: seconds after which a sent message moves on to its final delivery state
    delivery_delay: float = 1.0


class WebhookSettings(BaseModel):
    """The receiver of pushed callbacks (Octopush receipts and inbound SMS).

    A callback is taken only at a URL holding a secret (``/webhooks/<secret>/octopush/…``):
    ``postier webhooks`` refuses to start without one. During a rotation both ``secret`` and
    ``previous_secret`` are accepted; drop the previous one once the provider's account uses
    the new URLs.
    """

    #: address ``postier webhooks`` listens on
    host: str = "127.0.0.1"
    #: port ``postier webhooks`` listens on
    port: int = 8026
    #: the secret in the callback URLs, at least 16 URL-safe characters (e.g. the output of
    #: ``python -c "import secrets; print(secrets.token_urlsafe(24))"``)
    secret: SecretStr = SecretStr("")
    #: the secret being rotated out, still accepted until it is removed
    previous_secret: SecretStr = SecretStr("")
    #: source networks allowed to call (CIDR, JSON list, e.g. ["203.0.113.0/24"]); empty: any
    allowed_networks: list[str] = Field(default_factory=list)
    #: bytes of a callback body at most (larger: 413)
    max_body_bytes: int = Field(default=16384, ge=256, le=1048576)
    #: characters of one field of a callback at most (larger: 400)
    max_field_chars: int = Field(default=2000, ge=64, le=65536)


class ApiSettings(BaseModel):
    """The HTTP API (``postier api``, ``postier.api``): keys sent as ``Authorization: Bearer``.

    Each key has its own rate limit (GCRA in Redis, like the providers'): ``rate`` requests per
    second, ``burst`` at once after an idle spell; above it, 429 with Retry-After. The support
    page (``/support/``) signs in with the same keys and keeps a signed session cookie.
    """

    #: address ``postier api`` listens on (0.0.0.0 in a container, behind TLS)
    host: str = "127.0.0.1"
    #: port ``postier api`` listens on
    port: int = 8027
    #: requests per second each API key may make, sustained
    rate: float = Field(default=20.0, gt=0)
    #: requests each API key may make at once after an idle spell
    burst: int = Field(default=40, ge=1)
    #: bytes of a request body at most (larger: 413); a campaign's CSV audience comes in it
    max_body_bytes: int = Field(default=33_554_432, ge=1024)
    #: key signing the support page's session cookies, at least 32 characters; set the same on
    #: every API replica. Unset: a random one per process (sessions end when it restarts)
    session_secret: SecretStr = SecretStr("")
    #: minutes a support session lasts without a request (each request renews it)
    session_idle_minutes: int = Field(default=30, ge=1, le=720)
    #: hours a support session lasts at most, however active (then sign in again)
    session_max_hours: int = Field(default=8, ge=1, le=24)


class RoutingSettings(BaseModel):
    """Which provider sends what, and where a message goes when its provider gives up."""

    #: provider of notification SMS (codes, reminders)
    sms_notification: Literal["primotexto", "octopush", "afilnet"] = "primotexto"
    #: provider of marketing SMS
    sms_marketing: Literal["primotexto", "octopush", "afilnet"] = "octopush"
    #: provider -> fallback provider for the same channel (SMS only; WhatsApp has one provider)
    sms_fallback: dict[str, str] = Field(
        default_factory=lambda: {"primotexto": "octopush", "octopush": "primotexto"}
    )
    #: an SMS whose delivery failed for a temporary reason (network, handset off, expired) is
    #: sent once more, through the fallback; a permanent one (bad number, blacklist, STOP) never
    resend_undelivered: bool = True


class HealthSettings(BaseModel):
    """Provider health routing (``postier.dispatch.health``): a provider account that keeps
    failing is skipped for a cool-down, its traffic sent to the routing's fallback."""

    #: route around an unhealthy provider; off: every message spends its attempts on its own
    enabled: bool = True
    #: seconds of the sliding window in which retryable failures (5xx, timeouts, 429) count
    window: float = Field(default=30.0, gt=0)
    #: retryable failures in the window that open a provider (stop sending to it) …
    min_failures: int = Field(default=5, ge=1)
    #: … when they are at least this share of its outcomes in the window
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    #: seconds an open provider is skipped before probe sends test it (half-open)
    cool_down: float = Field(default=30.0, gt=0)
    #: seconds an account error (credentials refused, no credit) keeps the provider open
    account_cool_down: float = Field(default=300.0, gt=0)
    #: sends let through to a half-open provider; one success closes it, one failure reopens it
    probes: int = Field(default=3, ge=1)
    #: marketing may be moved onto the notification route (the default SMS provider) while
    #: its own provider is open; off, it waits (``scheduled``) until the cool-down ends
    reroute_marketing: bool = False


class DispatchSettings(BaseModel):
    """Retry budget and schedules of the workers and beat."""

    #: attempts of one message with one provider before it fails (or fails over)
    max_attempts: int = 5
    #: exponential backoff with full jitter for Celery retries: base * 2**n, capped
    backoff_base: float = 2.0
    #: the cap of that backoff, in seconds
    backoff_max: float = 300.0
    #: a rate-limit wait up to this many seconds blocks the worker; longer ones reschedule
    rate_limit_max_block: float = 1.0
    #: beat periods, in seconds: this one releases scheduled rows whose time has come
    release_interval: float = 0.5
    #: seconds between two passes publishing queued rows the broker never got
    republish_interval: float = 30.0
    #: a queued row unpublished for this many seconds is published again
    republish_after: float = 120.0
    #: seconds between two polls of the providers' delivery states
    poll_delivery_interval: float = 5.0
    #: seconds between two polls of the WhatsApp inbox
    poll_inbox_interval: float = 5.0
    #: seconds between two passes reconciling sends stuck in ``sending``
    reap_interval: float = 30.0
    #: a row in ``sending`` for longer than this is reconciled by a status lookup
    stuck_after: float = 120.0
    #: what to do with a send whose outcome no lookup can settle: keep it ``unknown`` for a
    #: person ("hold") or send it again ("resend", accepting a possible duplicate)
    ambiguous_policy: Literal["hold", "resend"] = "hold"
    #: Celery task name (or "module:function") called with each stored inbound message id
    inbound_hook: str | None = None
    #: a ``send_many`` of more messages than this goes on the bulk lane (unless ``priority=``)
    bulk_threshold: int = Field(default=20, ge=0)
    #: share of each provider's rate-limit burst that bulk sends leave to the transactional lane
    transactional_reserve: float = Field(default=0.2, ge=0.0, le=0.9)
    #: provider requests one worker process keeps in flight at once, per provider (a bulk
    #: chunk's messages that each need their own request go out concurrently up to this)
    max_in_flight: int = Field(default=48, ge=1, le=512)
    #: seconds a sent message waits for its delivery state before it becomes ``expired``
    #: (final: the poll stops asking; a receipt that still comes is applied): 72 hours
    receipt_window: float = Field(default=259_200.0, gt=0)
    #: provider -> its own receipt window in seconds, e.g. {"octopush": 172800}
    receipt_windows: dict[str, float] = Field(default_factory=dict)
    #: seconds between two passes keeping the ledger's planner statistics current (SQLite's
    #: PRAGMA optimize; nothing to do on PostgreSQL)
    optimize_interval: float = 3600.0
    #: seconds between two passes folding the ledger's count deltas into its counters
    #: (PostgreSQL; ``postier.ledger.counts``): a count reads the deltas not yet folded
    count_fold_interval: float = Field(default=5.0, gt=0)

    def receipt_window_for(self, provider: str | None) -> float:
        """The receipt window of ``provider``'s messages, in seconds."""
        return self.receipt_windows.get(provider or "", self.receipt_window)


class CallbackSettings(BaseModel):
    """Status callbacks: every move of a message to a status the application cares about
    (``sent``, ``delivered``, ``undelivered``, ``failed``, ``unknown``, ``cancelled``,
    ``expired``) and every inbound message, delivered at least once to the application
    (``postier.dispatch.callbacks``; the verifier for receivers is ``postier.callbacks``).

    A target is an ``https://`` URL (a signed JSON POST), a Celery task name, or
    ``module:function`` (called in the callbacks worker). A message's own ``callback_url``
    (given to ``send_sms``…, or its campaign's) comes before ``target``.
    """

    #: where every message's events go unless the message names its own URL; unset: only
    #: messages with a ``callback_url`` produce events
    target: str | None = None
    #: where inbound messages' events go; unset: ``target``
    inbound_target: str | None = None
    #: the queue a Celery task name target is sent to (the application's worker's)
    task_queue: str = "celery"
    #: the HMAC-SHA256 key of the ``Postier-Signature`` header (at least 16 characters); URL
    #: targets need one
    secret: SecretStr = SecretStr("")
    #: the key being rotated out: while set, each POST carries a second signature made with it
    previous_secret: SecretStr = SecretStr("")
    #: plain http:// targets on hosts other than loopback (127.0.0.1, ::1, localhost)
    allow_http: bool = False
    #: seconds to connect to the application
    connect_timeout: float = Field(default=3.0, gt=0)
    #: seconds the application has to answer a POST (a slower answer is a failed attempt)
    timeout: float = Field(default=10.0, gt=0)
    #: the first retry waits about this many seconds; each next one twice as long (jittered)
    backoff_base: float = Field(default=10.0, gt=0)
    #: the longest wait between two attempts, in seconds
    backoff_max: float = Field(default=3600.0, gt=0)
    #: seconds after the event during which it is retried; then it is given up (a day)
    max_age: float = Field(default=86_400.0, gt=0)
    #: seconds between two beat passes publishing events due for an attempt
    pass_interval: float = Field(default=1.0, gt=0)
    #: an event handed to the broker this long ago and still undelivered is handed again
    republish_after: float = Field(default=60.0, gt=0)

    @field_validator("secret", "previous_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        """A short key can be guessed from signed bodies; empty means unset."""
        if 0 < len(value.get_secret_value()) < 16:
            raise ValueError("a callbacks secret has at least 16 characters")
        return value


class FlowerSettings(BaseModel):
    """Flower, the live view of workers and tasks: behind authentication by default.

    ``postier flower`` (and ``postier up``) start ``celery -A worker flower`` with these. Basic
    auth is on unless OAuth is configured; ``postier up`` generates and prints a password when
    none is set, ``postier flower`` refuses to start without one. OAuth: set ``auth_provider``
    (e.g. ``flower.views.auth.GoogleAuth2LoginHandler``), ``auth`` (a regexp of the e-mails let
    in) and the ``oauth2_*`` values (deploy/README.md).
    """

    #: address Flower listens on
    host: str = "127.0.0.1"
    #: port Flower listens on
    port: int = 5555
    #: the basic-auth user
    user: str = "postier"
    #: the basic-auth password (``postier up`` generates one when empty)
    password: SecretStr = SecretStr("")
    #: OAuth handler class instead of basic auth, e.g. flower.views.auth.GithubLoginHandler
    auth_provider: str | None = None
    #: with OAuth: a regexp of the e-mail addresses allowed in
    auth: str | None = None
    #: with OAuth: the OAuth application's client id
    oauth2_key: str | None = None
    #: with OAuth: the OAuth application's client secret
    oauth2_secret: SecretStr = SecretStr("")
    #: with OAuth: the callback URL registered with the provider (…/login)
    oauth2_redirect_uri: str | None = None
    #: keep Flower's task history across restarts in ``db``
    persistent: bool = False
    #: the file of Flower's persistent state
    db: str = "var/flower.db"
    #: workers offline for this many seconds leave the page
    purge_offline_workers: int = 60
    #: serve Flower under this path prefix (behind a reverse proxy), e.g. "flower"
    url_prefix: str | None = None


class MetricsSettings(BaseModel):
    """The workers' Prometheus endpoint (``postier.metrics``)."""

    #: serve /metrics from each worker
    enabled: bool = True
    #: address the worker's /metrics listens on (0.0.0.0 in a container)
    host: str = "127.0.0.1"
    #: port of the worker's /metrics; one per worker on a host
    port: int = 9540
    #: directory of the per-process files of a prefork pool (unset: a temporary one)
    multiprocess_dir: str | None = None
    #: seconds a ledger count (live messages by provider and state) is reused; 0 turns it off
    ledger_interval: float = 30.0
    #: seconds between two beat passes reading each configured provider account's balance
    #: (one request per provider, nothing sent) for ``postier_provider_balance``; 0 turns it off
    balance_interval: float = Field(default=900.0, ge=0)


class RetentionSettings(BaseModel):
    """How long personal data stays in the ledger (``postier.privacy.retention``), in days.

    A beat pass redacts, in bounded batches, what is older than its category's period: the
    row stays (states, counts, costs, timings for statistics), the personal data goes. 0 keeps
    that category forever.
    """

    #: message texts, template parameters and file URLs
    texts_days: int = Field(default=30, ge=0)
    #: recipients' numbers of messages (replaced by a mark)
    numbers_days: int = Field(default=30, ge=0)
    #: the providers' answers kept with each delivery event, and error details
    provider_answers_days: int = Field(default=30, ge=0)
    #: inbound messages (text and sender)
    inbound_days: int = Field(default=30, ge=0)
    #: campaign audiences and rejected contacts, counted from the campaign's end
    audiences_days: int = Field(default=30, ge=0)
    #: the HTTP API's ``Idempotency-Key`` records (a key replayed later is a new request);
    #: not personal, but without an end the table grows with every API request
    idempotency_keys_days: int = Field(default=7, ge=0)
    #: rows one statement redacts at most (a pass repeats until none is left or time is up)
    batch_size: int = Field(default=500, ge=1, le=10000)
    #: seconds one beat pass may take before it stops (the next pass goes on)
    pass_budget: float = Field(default=20.0, gt=0)
    #: seconds between two passes
    interval: float = Field(default=300.0, gt=0)
    #: key of the hash an opt-out is kept as once its number is erased (``postier erase``), so
    #: the STOP is still honoured, and of each message's ``recipient_hash``, which lets the
    #: support page find a message by number after its number was redacted; at least 16
    #: characters, never changed once set. Unset: ``postier erase`` refuses, and a number finds
    #: only the messages still holding it
    hash_key: SecretStr = SecretStr("")


class LogSettings(BaseModel):
    """Logging of every role (``postier.logs``): numbers and secrets are masked."""

    #: the least severe level written (DEBUG, INFO, WARNING, ERROR); unset: Celery's
    #: --loglevel for the worker and beat, INFO for the other roles
    level: str | None = None
    #: "text" for people, "json" (one object per line) for a log collector
    format: Literal["text", "json"] = "text"


class CampaignSettings(BaseModel):
    """Bulk campaigns (``postier.campaigns``): fan-out sizes, French quiet hours, estimates."""

    #: contacts per fan-out task (a task builds, stores and publishes this many messages, in
    #: one transaction: on SQLite its commit writes every index page the rows touched, and
    #: random ids touch nearly one page per row in chunks of 1,000; 5,000 fanned 100,000
    #: out in 5.3 s of CPU instead of 6.7 s, holding the write lock some 0.2 s a chunk)
    chunk_size: int = Field(default=5000, ge=1, le=20000)
    #: recipients per Octopush request when every message of a campaign has the same text
    #: (at most 500, Octopush v1's limit)
    batch_size: int = Field(default=500, ge=1, le=500)
    #: marketing quiet hours, in this zone: nothing from ``quiet_start`` to ``quiet_end``
    timezone: str = "Europe/Paris"
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)
    #: no marketing on Sundays
    quiet_sundays: bool = True
    #: no marketing on this country's public holidays (``holidays`` package codes)
    holidays_country: str = "FR"
    #: a subdivision with extra holidays, e.g. "57" (Moselle: Good Friday, 26 December)
    holidays_subdivision: str | None = None
    #: price of one SMS part per provider, for estimates only (assumed; set your contract's)
    price_per_part: dict[str, float] = Field(
        default_factory=lambda: {"octopush": 0.055, "primotexto": 0.05, "afilnet": 0.06}
    )
    #: seconds between two passes of beat over the campaigns (start, release, finish)
    tick_interval: float = 1.0
    #: a plan or fan-out task not done after this many seconds is published again
    republish_after: float = 30.0
    #: an Octopush batch waits at most this long for a rate-limit token
    batch_max_block: float = 5.0
    #: a batch left in ``sending`` this long is settled by resending its request_id (kept
    #: below ``dispatch.stuck_after``, so the reaper never resends its rows one by one)
    batch_stuck_after: float = 30.0
    #: take Primotexto's unsubscribers into the opt-out list before each campaign
    sync_primotexto_unsubscribers: bool = True


class RateLimit(BaseModel):
    """A provider account's global send rate: GCRA with ``rate`` per second and ``burst``.

    Enforced across every worker by :class:`postier.ratelimit.RateLimiter` in Redis.
    """

    #: sustained requests per second
    rate: float = Field(gt=0)
    #: requests that may go at once after an idle spell (at least 1)
    burst: int = Field(ge=1)


def _default_rate_limits() -> dict[str, RateLimit]:
    """Assumed per-account limits: none of the providers publishes one.

    Conservative guesses, to be overridden per deployment, e.g.
    ``POSTIER_RATE_LIMITS__OCTOPUSH__RATE=5``.
    """
    return {
        "afilnet": RateLimit(rate=20.0, burst=20),
        "primotexto": RateLimit(rate=20.0, burst=20),
        "octopush": RateLimit(rate=10.0, burst=10),
    }


class Settings(BaseSettings):
    """Postier's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="POSTIER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    http: HttpSettings = Field(default_factory=HttpSettings)
    afilnet: AfilnetSettings = Field(default_factory=AfilnetSettings)
    primotexto: PrimotextoSettings = Field(default_factory=PrimotextoSettings)
    octopush: OctopushSettings = Field(default_factory=OctopushSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    flower: FlowerSettings = Field(default_factory=FlowerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    callbacks: CallbackSettings = Field(default_factory=CallbackSettings)
    #: the country of numbers written without a country code (national form)
    default_region: str = "FR"
    #: the ledger: ``sqlite:///var/postier.db`` (relative to the working directory; the
    #: directory is created) or ``postgresql+psycopg://user@host/db`` for several hosts
    database_url: str = "sqlite:///var/postier.db"
    #: when set (e.g. http://127.0.0.1:8025), every provider URL and credential is the sandbox's
    sandbox_url: str | None = None
    #: the broker and the shared rate limiter's store; must run with maxmemory-policy noeviction
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: global rate limit per provider account, keyed by provider name
    rate_limits: dict[str, RateLimit] = Field(default_factory=_default_rate_limits)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment first, then the stack ``postier up`` recorded here, then ``.env``.

        So a command run in a second terminal beside ``postier up`` reaches that stack's Redis,
        ledger and sandbox (``postier.stack_record``) unless the environment names others.
        No record is read when no ``.env`` is (``Settings(_env_file=None)``: no files at all).
        """
        sources = [init_settings, env_settings]
        if getattr(dotenv_settings, "env_file", None) is not None:
            record = read_record()
            if record is not None:
                sources.append(InitSettingsSource(settings_cls, init_kwargs=record.settings()))
        return (*sources, dotenv_settings, file_secret_settings)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _merge_rate_limits(cls, value: object) -> object:
        """Overlay what is given on the defaults, field by field.

        So ``POSTIER_RATE_LIMITS__OCTOPUSH__RATE=5`` changes one number instead of replacing
        every provider's limit.
        """
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {
            name: limit.model_dump() for name, limit in _default_rate_limits().items()
        }
        for name, given in value.items():
            base = merged.get(name)
            if isinstance(given, dict) and isinstance(base, dict):
                merged[name] = {**base, **given}
            else:
                merged[name] = given
        return merged

    def to_env(self) -> dict[str, str]:
        """These settings as ``POSTIER_*`` variables, to start another role with exactly them."""
        env: dict[str, str] = {}

        def walk(prefix: str, model: BaseModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                key = f"{prefix}{name.upper()}"
                if isinstance(value, BaseModel) and not isinstance(value, SecretStr):
                    walk(f"{key}__", value)
                elif isinstance(value, SecretStr):
                    env[key] = value.get_secret_value()
                elif value is None:
                    continue
                elif isinstance(value, (dict, list)):
                    env[key] = json.dumps(
                        {
                            k: v.model_dump() if isinstance(v, BaseModel) else v
                            for k, v in value.items()
                        }
                        if isinstance(value, dict)
                        else value
                    )
                else:
                    env[key] = str(value)

        walk("POSTIER_", self)
        return env

    def pointed_at_sandbox(self, base_url: str) -> Settings:
        """A copy whose provider URLs and credentials are the sandbox's at ``base_url``."""
        from postier.sandbox.accounts import SANDBOX_ACCOUNTS

        root = base_url.rstrip("/")
        acc = SANDBOX_ACCOUNTS
        return self.model_copy(
            update={
                "afilnet": self.afilnet.model_copy(
                    update={
                        "base_url": f"{root}/api/http/",
                        "user": acc.afilnet_user,
                        "password": SecretStr(acc.afilnet_password),
                        "whatsapp_platform_ids": self.afilnet.whatsapp_platform_ids
                        or [acc.afilnet_platform_id],
                    }
                ),
                "primotexto": self.primotexto.model_copy(
                    update={
                        "base_url": f"{root}/v2/",
                        "api_key": SecretStr(acc.primotexto_api_key),
                    }
                ),
                "octopush": self.octopush.model_copy(
                    update={
                        "base_url": f"{root}/api/",
                        "v1_base_url": f"{root}/v1/public/",
                        "login": acc.octopush_login,
                        "api_key": SecretStr(acc.octopush_api_key),
                    }
                ),
            }
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (pointed at the sandbox when ``sandbox_url`` is set)."""
    settings = Settings()
    if settings.sandbox_url:
        return settings.pointed_at_sandbox(settings.sandbox_url)
    return settings
