"""Flower's options from Postier's settings: authentication on unless someone turns it off.

Flower reads every option from a ``FLOWER_<OPTION>`` environment variable, so the role is still
started the ordinary way (``celery -A worker flower``) with these variables added; secrets go
through the environment rather than the command line, which ``ps`` shows to every user.
Only message ids cross the broker (docs/ARCHITECTURE.md), so the task arguments Flower shows are
ids.
"""

from __future__ import annotations

import secrets

from postier.config import FlowerSettings

#: ``celery`` arguments of the role (the environment carries the options)
FLOWER_ARGS = ("-A", "worker", "flower")
#: the task list shows the arguments: they are message ids, and finding a message's task by
#: its id is what people come to Flower for
TASKS_COLUMNS = "name,uuid,state,args,received,runtime,worker"


class FlowerAuthError(ValueError):
    """Flower would start without authentication."""


def uses_oauth(flower: FlowerSettings) -> bool:
    """Whether OAuth replaces basic auth (an auth provider and its e-mail regexp are set)."""
    return bool(flower.auth_provider and flower.auth)


def with_generated_password(flower: FlowerSettings) -> FlowerSettings:
    """``flower`` with a random basic-auth password when neither a password nor OAuth is set."""
    from pydantic import SecretStr

    if uses_oauth(flower) or flower.password.get_secret_value():
        return flower
    return flower.model_copy(update={"password": SecretStr(secrets.token_urlsafe(12))})


def flower_environment(flower: FlowerSettings) -> dict[str, str]:
    """The ``FLOWER_*`` variables for ``flower``; raises :class:`FlowerAuthError` without auth.

    Basic auth is ``user:password`` in ``FLOWER_BASIC_AUTH``, which Flower splits on commas,
    so neither may contain one (nor the user a colon).
    """
    env = {
        "FLOWER_ADDRESS": flower.host,
        "FLOWER_PORT": str(flower.port),
        "FLOWER_PURGE_OFFLINE_WORKERS": str(flower.purge_offline_workers),
        "FLOWER_TASKS_COLUMNS": TASKS_COLUMNS,
    }
    if flower.url_prefix:
        env["FLOWER_URL_PREFIX"] = flower.url_prefix
    if flower.persistent:
        env["FLOWER_PERSISTENT"] = "true"
        env["FLOWER_DB"] = flower.db
    if uses_oauth(flower):
        assert flower.auth_provider is not None and flower.auth is not None
        env["FLOWER_AUTH_PROVIDER"] = flower.auth_provider
        env["FLOWER_AUTH"] = flower.auth
        if flower.oauth2_key:
            env["FLOWER_OAUTH2_KEY"] = flower.oauth2_key
        if flower.oauth2_secret.get_secret_value():
            env["FLOWER_OAUTH2_SECRET"] = flower.oauth2_secret.get_secret_value()
        if flower.oauth2_redirect_uri:
            env["FLOWER_OAUTH2_REDIRECT_URI"] = flower.oauth2_redirect_uri
        return env
    password = flower.password.get_secret_value()
    if not password:
        raise FlowerAuthError(
            "Flower needs authentication: set POSTIER_FLOWER__PASSWORD (basic auth) or "
            "POSTIER_FLOWER__AUTH_PROVIDER and POSTIER_FLOWER__AUTH (OAuth)"
        )
    if "," in flower.user or ":" in flower.user or "," in password:
        raise FlowerAuthError("the Flower user may not contain ',' or ':', the password no ','")
    env["FLOWER_BASIC_AUTH"] = f"{flower.user}:{password}"
    return env


__all__ = [
    "FLOWER_ARGS",
    "TASKS_COLUMNS",
    "FlowerAuthError",
    "flower_environment",
    "uses_oauth",
    "with_generated_password",
]
