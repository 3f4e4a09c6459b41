"""What a campaign will cost before it is sent: messages, SMS parts, requests, price.

Built exactly as the fan-out builds (``rows.build_row``: personalisation, the STOP mention, the
route's text policy, the producer's checks), so the parts counted are the parts sent; nothing
is stored. Where the text policy transliterates, the estimate lists what changes (each
replacement and how often), one message before and after, and the parts the texts would
cost as written (UCS-2) beside the parts they cost as sent. The price is
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
from postier.dispatch.routing import text_policy_for
from postier.rules.errors import RuleViolation
from postier.rules.segments import analyze
from postier.rules.textpolicy import TextChange

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
    #: the route's text policy (SMS only), and what it changes in the messages kept
    text_policy: str | None = None
    changed_messages: int = 0
    #: every replacement, counted over all messages, in order of first use
    text_changes: list[TextChange] = field(default_factory=list)
    #: the SMS parts of the texts as written (UCS-2 where they need it): ``parts`` is as sent
    parts_as_written: int = 0
    #: one changed message: (as written, as sent)
    sample_change: tuple[str, str] | None = None


@dataclass
class _TextChanges:
    """The text policy's changes over the messages kept, added up."""

    messages: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    sample: tuple[str, str] | None = None

    def add(self, record: dict[str, object], sent: str) -> None:
        self.messages += 1
        changes = record.get("changes")
        for change in changes if isinstance(changes, list) else []:
            key = (str(change["from"]), str(change["to"]))
            self.counts[key] = self.counts.get(key, 0) + int(change["count"])
        if self.sample is None:
            self.sample = (str(record.get("original", "")), sent)

    def listed(self) -> list[TextChange]:
        return [TextChange(o, r, n) for (o, r), n in self.counts.items()]


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
    policy_records: dict[str, dict[str, object]] = {}
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
        record = (row.get("payload") or {}).get("text_policy")
        if isinstance(record, dict):
            policy_records[recipient] = record
    blocked = opted_out(bodies)
    kept = [recipient for recipient in bodies if recipient not in blocked]
    histogram = Counter(parts_of[recipient] for recipient in kept)
    encodings: Counter[str] = Counter()
    if spec.channel == "sms":
        texts = Counter(bodies[recipient] for recipient in kept)
        for text, count in texts.items():
            encodings[analyze(text).encoding.value] += count
    parts = sum(parts_of[recipient] for recipient in kept)
    changes = _TextChanges()
    parts_as_written = parts
    for recipient in kept:
        record = policy_records.get(recipient)
        if record is None:
            continue
        changes.add(record, bodies[recipient])
        written = analyze(str(record.get("original", ""))).parts
        parts_as_written += written - parts_of[recipient]
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
        text_policy=text_policy_for(settings, spec.provider) if spec.channel == "sms" else None,
        changed_messages=changes.messages,
        text_changes=changes.listed(),
        parts_as_written=parts_as_written,
        sample_change=changes.sample,
    )
