"""Queue and task names, in one place: producers and beat name worker tasks by these strings.

Roles never import each other's code (STYLE.md); they share these constants instead.
"""

from __future__ import annotations

QUEUE_SEND = "postier.send"
QUEUE_SCHEDULED = "postier.scheduled"
QUEUE_HOOKS = "postier.hooks"

SEND_MESSAGE = "postier.send_message"
SEND_MESSAGES = "postier.send_messages"
RELEASE_DUE_MESSAGES = "postier.release_due_messages"
REPUBLISH_UNPUBLISHED = "postier.republish_unpublished"
POLL_DELIVERY_STATES = "postier.poll_delivery_states"
POLL_WHATSAPP_INBOX = "postier.poll_whatsapp_inbox"
REAP_STUCK_SENDS = "postier.reap_stuck_sends"

ALL_QUEUES = (QUEUE_SEND, QUEUE_SCHEDULED, QUEUE_HOOKS)
