"""Personal data in the ledger: how long it stays (``retention``), and one person's access and
erasure (``erasure``: ``postier export`` and ``postier erase``).

What is personal here: numbers, message texts and template values, providers' answers (they
echo numbers), inbound texts and senders, campaign audiences. What is kept for statistics once
those are gone: the rows themselves with their states, counts, parts, costs and timings.
"""

from postier.privacy.erasure import (
    NOT_REACHABLE,
    ErasureReport,
    erase_number,
    export_number,
    find_traces,
    number_forms,
    opt_out_hash,
)
from postier.privacy.retention import REDACTED, RetentionReport, redact_expired

__all__ = [
    "NOT_REACHABLE",
    "REDACTED",
    "ErasureReport",
    "RetentionReport",
    "erase_number",
    "export_number",
    "find_traces",
    "number_forms",
    "opt_out_hash",
    "redact_expired",
]
