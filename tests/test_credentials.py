"""Which credentials a provider lacks (postier/credentials.py), named as settings to set."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from postier.config import OctopushSettings, Settings
from postier.credentials import MissingCredentials, missing_credentials, require_credentials


def test_empty_settings_name_every_credential_of_each_provider() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert missing_credentials(settings, "afilnet") == [
        "POSTIER_AFILNET__USER",
        "POSTIER_AFILNET__PASSWORD",
    ]
    assert missing_credentials(settings, "primotexto") == ["POSTIER_PRIMOTEXTO__API_KEY"]
    with pytest.raises(MissingCredentials) as refused:
        require_credentials(settings, "octopush")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("Octopush has no credentials: set POSTIER_OCTOPUSH__LOGIN and ")
    assert "postier up" in message


def test_only_what_is_empty_is_named_and_the_sandbox_has_them_all() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, octopush=OctopushSettings(api_key=SecretStr("k"))
    )
    assert missing_credentials(settings, "octopush") == ["POSTIER_OCTOPUSH__LOGIN"]
    sandbox = settings.pointed_at_sandbox("http://127.0.0.1:8025")
    for provider in ("afilnet", "primotexto", "octopush"):
        require_credentials(sandbox, provider)
