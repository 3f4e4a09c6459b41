"""What application code calls to send: validate, store in the ledger, publish after commit.

The public API only: the work is ``postier.dispatch.producer.Producer``.
"""

from __future__ import annotations

from postier.dispatch.lanes import Priority
from postier.dispatch.producer import BulkResult, MessageHandle, Producer
from postier.dispatch.rows import Category, Row, SmsRequest

__all__ = [
    "BulkResult",
    "Category",
    "MessageHandle",
    "Priority",
    "Producer",
    "Row",
    "SmsRequest",
]
