"""Bulk campaigns from application code: create one in milliseconds, the worker fans it out.

    from producers.campaigns import create
    handle = create(
        "Soldes d'hiver",
        text="Bonjour {{prenom}}, -30% ce week-end !",
        csv=Path("clients.csv").read_text(),
        csv_columns={"mobile": "Téléphone", "prenom": "Prénom"},
        send_at=datetime(2027, 1, 9, 10, 0, tzinfo=ZoneInfo("Europe/Paris")),
    )

The public API only: the work is ``postier.campaigns.producer.CampaignProducer`` (checks,
storage, the plan task); the module-level functions use one built from the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from postier.campaigns import lifecycle
from postier.campaigns.estimate import Estimate
from postier.campaigns.producer import AudienceInput, CampaignHandle, CampaignProducer
from postier.config import get_settings


@lru_cache(maxsize=1)
def default_campaign_producer() -> CampaignProducer:
    """The process-wide campaign producer, built on first use from ``POSTIER_*`` settings."""
    return CampaignProducer(get_settings())


def _default() -> CampaignProducer:
    return default_campaign_producer()


def create(name: str, **options: Any) -> CampaignHandle:
    """Create a campaign; see ``CampaignProducer.create``."""
    return _default().create(name, **options)


def dry_run(**options: Any) -> Estimate:
    """Estimate a campaign without storing it; see ``CampaignProducer.estimate``."""
    return _default().estimate(**options)


def pause(campaign_id: str) -> lifecycle.ControlResult:
    return _default().pause(campaign_id)


def resume(campaign_id: str) -> lifecycle.ControlResult:
    return _default().resume(campaign_id)


def cancel(campaign_id: str) -> lifecycle.ControlResult:
    return _default().cancel(campaign_id)


def status(campaign_id: str) -> lifecycle.CampaignReport | None:
    return _default().status(campaign_id)


__all__ = [
    "AudienceInput",
    "CampaignHandle",
    "CampaignProducer",
    "cancel",
    "create",
    "default_campaign_producer",
    "dry_run",
    "pause",
    "resume",
    "status",
]
