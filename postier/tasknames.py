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
#: keeps the ledger's planner statistics current (SQLite's PRAGMA optimize)
OPTIMIZE_LEDGER = "postier.optimize_ledger"

# campaigns (postier.campaigns): plan, fan-out and batches on the send queue; beat's passes
# match the scheduled queue's "postier.release_*" and "postier.reap_*" routes
PLAN_CAMPAIGN = "postier.campaigns.plan"
FAN_OUT_CAMPAIGN_CHUNK = "postier.campaigns.fan_out_chunk"
SEND_CAMPAIGN_BATCH = "postier.campaigns.send_batch"
RELEASE_DUE_CAMPAIGNS = "postier.release_due_campaigns"
REAP_CAMPAIGN_BATCHES = "postier.reap_campaign_batches"

ALL_QUEUES = (QUEUE_SEND, QUEUE_SCHEDULED, QUEUE_HOOKS)
