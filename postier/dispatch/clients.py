"""The provider clients of one process, built once and sharing one pooled ``httpx.Client``."""

from __future__ import annotations

import threading
from functools import cached_property

import httpx

from postier.config import Settings
from postier.providers.afilnet import AfilnetApi, AfilnetSms, AfilnetWhatsApp
from postier.providers.base import SmsProvider
from postier.providers.errors import UnsupportedFeatureError
from postier.providers.octopush import OctopushClient
from postier.providers.primotexto import PrimotextoClient
from postier.providers.transport import build_http_client


class ProviderClients:
    """Lazily built clients for every provider, one set per worker process."""

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http_client
        self._lock = threading.Lock()

    @cached_property
    def http(self) -> httpx.Client:
        return self._http if self._http is not None else build_http_client(self.settings.http)

    @cached_property
    def afilnet_api(self) -> AfilnetApi:
        return AfilnetApi(self.settings.afilnet, self.settings.http, self.http)

    @cached_property
    def whatsapp(self) -> AfilnetWhatsApp:
        return AfilnetWhatsApp(self.afilnet_api)

    @cached_property
    def afilnet_sms(self) -> AfilnetSms:
        return AfilnetSms(self.afilnet_api, self.settings.afilnet.sms_sender)

    @cached_property
    def primotexto(self) -> PrimotextoClient:
        return PrimotextoClient(self.settings.primotexto, self.settings.http, self.http)

    @cached_property
    def octopush(self) -> OctopushClient:
        return OctopushClient(self.settings.octopush, self.settings.http, self.http)

    def sms(self, provider: str) -> SmsProvider:
        """The SMS client of ``provider``."""
        with self._lock:
            if provider == "primotexto":
                return self.primotexto
            if provider == "octopush":
                return self.octopush
            if provider == "afilnet":
                return self.afilnet_sms
        raise UnsupportedFeatureError(f"no SMS client for {provider!r}", provider=provider)

    def close(self) -> None:
        if "http" in self.__dict__ and self._http is None:
            self.http.close()
