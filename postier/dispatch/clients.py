"""The provider clients of one process, built once and sharing one connection pool.

SMS clients come from the providers' registry (``ProviderProfile.build_sms``); the typed
accessors below are for what only one provider offers (WhatsApp and contact groups on Afilnet,
Primotexto's lists and stats, Octopush's batch requests).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import httpx

from postier.config import Settings
from postier.providers.afilnet import AfilnetApi, AfilnetSms, AfilnetWhatsApp
from postier.providers.afilnet.profile import shared_api
from postier.providers.base import SmsProvider
from postier.providers.errors import UnsupportedFeatureError
from postier.providers.octopush import OctopushClient
from postier.providers.primotexto import PrimotextoClient
from postier.providers.registry import profile_of
from postier.providers.results import Provider
from postier.providers.transport import build_http_transport

T = TypeVar("T")
C = TypeVar("C")


class ProviderClients:
    """Lazily built clients for every provider, one set per worker process."""

    def __init__(self, settings: Settings, http: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._http = http
        self._lock = threading.RLock()
        self._sms: dict[Provider, SmsProvider] = {}
        self._shared: dict[type[Any], Any] = {}

    @cached_property
    def http(self) -> httpx.BaseTransport:
        """The process's connection pool (``transport.build_http_transport``) unless given."""
        return self._http if self._http is not None else build_http_transport(self.settings.http)

    def shared(self, key: type[T], build: Callable[[], T]) -> T:
        """The one ``key`` object of this process (``providers.profile.ClientContext``)."""
        with self._lock:
            if key not in self._shared:
                self._shared[key] = build()
            value: T = self._shared[key]
            return value

    def sms(self, provider: str) -> SmsProvider:
        """The SMS client of ``provider``, built by its profile on first use."""
        profile = profile_of(provider)
        if profile.build_sms is None:
            raise UnsupportedFeatureError(f"no SMS client for {provider!r}", provider=provider)
        with self._lock:
            client = self._sms.get(profile.provider)
            if client is None:
                client = self._sms[profile.provider] = profile.build_sms(self)
            return client

    def _typed_sms(self, provider: Provider, kind: type[C]) -> C:
        client = self.sms(provider)
        assert isinstance(client, kind)
        return client

    @property
    def afilnet_api(self) -> AfilnetApi:
        return shared_api(self)

    @cached_property
    def whatsapp(self) -> AfilnetWhatsApp:
        return AfilnetWhatsApp(self.afilnet_api)

    @property
    def afilnet_sms(self) -> AfilnetSms:
        return self._typed_sms(Provider.AFILNET, AfilnetSms)

    @property
    def primotexto(self) -> PrimotextoClient:
        return self._typed_sms(Provider.PRIMOTEXTO, PrimotextoClient)

    @property
    def octopush(self) -> OctopushClient:
        return self._typed_sms(Provider.OCTOPUSH, OctopushClient)

    def close(self) -> None:
        if "http" in self.__dict__ and self._http is None:
            self.http.close()
