"""What a campaign will cost before it is sent: messages, SMS parts, requests, price.

Built exactly as the fan-out builds (``rows.build_row``: personalisation, the STOP mention, the
producer's checks), so the parts counted are the parts sent; nothing is stored. The price is
``parts × campaigns.price_per_part[provider]``, a figure to set from the contract (the
defaults are assumptions: no provider publishes a price in the sources).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from postier.campaigns.audience import Audience, Rejection
from postier.campaigns.rows import RowFactory, build_row
from postier.campaigns.spec import CampaignSpec
from postier.config import Settings
from postier.rules.errors import RuleViolation
from postier.rules.segments import analyze

#: the campaign id rows are built under in an estimate (ids are not kept)
DRY_RUN_ID = "dry-run"


@dataclass(frozen=True, slots=True)
class Estimate:
    """A campaign's size and cost, as it would be sent now."""

    provider: str
    contacts: int
    messages: int
    invalid: int
    duplicates: int
    opted_out: int
    #: SMS parts of every message (0 for WhatsApp templates, which are not billed by part)
    parts: int
    #: messages by part count, and by encoding (gsm7 / ucs2)
    parts_histogram: dict[int, int]
    encodings: dict[str, int]
    #: provider requests: one per message, or one per batch of Octopush recipients
    requests: int
    price_per_part: Decimal | None
    cost: Decimal | None
    starts_at: datetime | None = None
    rejections: list[Rejection] = field(default_factory=list)


def estimate(
    settings: Settings,
    spec: CampaignSpec,
    audience: Audience,
    factory: RowFactory,
    opted_out: Callable[[Iterable[str]], set[str]],
    *,
    starts_at: datetime | None = None,
) -> Estimate:
    """The estimate of sending ``spec`` to ``audience``; ``opted_out`` filters numbers."""
    rejections = list(audience.rejections)
    bodies: dict[str, str] = {}
    parts_of: dict[str, int] = {}
    duplicates = 0
    for contact in audience.contacts:
        try:
            row = build_row(factory, spec, DRY_RUN_ID, contact)
        except RuleViolation as exc:
            rejections.append(Rejection.of(contact.line, exc))
            continue
        recipient = row["recipient"]
        if recipient in bodies:
            duplicates += 1
            continue
        bodies[recipient] = row["body"]
        parts_of[recipient] = int(row.get("parts") or 0)
    blocked = opted_out(bodies)
    kept = [recipient for recipient in bodies if recipient not in blocked]
    histogram = Counter(parts_of[recipient] for recipient in kept)
    encodings: Counter[str] = Counter()
    if spec.channel == "sms":
        texts = Counter(bodies[recipient] for recipient in kept)
        for text, count in texts.items():
            encodings[analyze(text).encoding.value] += count
    parts = sum(parts_of[recipient] for recipient in kept)
    batch = settings.campaigns.batch_size
    requests = math.ceil(len(kept) / batch) if spec.batched else len(kept)
    price = settings.campaigns.price_per_part.get(spec.provider)
    per_part = Decimal(str(price)) if price is not None and spec.channel == "sms" else None
    return Estimate(
        provider=spec.provider,
        contacts=len(audience.contacts) + len(audience.rejections),
        messages=len(kept),
        invalid=len(rejections),
        duplicates=duplicates,
        opted_out=len(bodies) - len(kept),
        parts=parts,
        parts_histogram=dict(sorted(histogram.items())),
        encodings=dict(encodings),
        requests=requests,
        price_per_part=per_part,
        cost=(per_part * parts).quantize(Decimal("0.01")) if per_part is not None else None,
        starts_at=starts_at,
        rejections=sorted(rejections, key=lambda r: r.line),
    )
