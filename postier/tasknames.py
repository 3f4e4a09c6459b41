"""Queue and task names, in one place: producers and beat name worker tasks by these strings.

Roles never import each other's code (STYLE.md); they share these constants instead.
"""

from __future__ import annotations

#: the transactional lane: single sends (codes, notifications, WhatsApp), their retries and
#: failovers; its workers never take bulk work (``postier.dispatch.lanes``)
QUEUE_SEND = "postier.send"
#: the bulk lane: large ``send_many`` chunks, campaigns (planning, fan-out, batches), marketing
QUEUE_BULK = "postier.bulk"
QUEUE_SCHEDULED = "postier.scheduled"
QUEUE_HOOKS = "postier.hooks"
#: status callbacks to the application, on a worker of their own (``postier.dispatch.callbacks``):
#: a slow or failing receiver holds only that worker's threads, never a send's
QUEUE_CALLBACKS = "postier.callbacks"

SEND_MESSAGE = "postier.send_message"
SEND_MESSAGES = "postier.send_messages"
RELEASE_DUE_MESSAGES = "postier.release_due_messages"
REPUBLISH_UNPUBLISHED = "postier.republish_unpublished"
POLL_DELIVERY_STATES = "postier.poll_delivery_states"
POLL_WHATSAPP_INBOX = "postier.poll_whatsapp_inbox"
REAP_STUCK_SENDS = "postier.reap_stuck_sends"
#: the retention pass (``postier.privacy.retention``)
REAP_EXPIRED_PERSONAL_DATA = "postier.reap_expired_personal_data"
#: keeps the ledger's planner statistics current (SQLite's PRAGMA optimize)
OPTIMIZE_LEDGER = "postier.optimize_ledger"
#: reads each provider account's balance for the metrics (``postier.dispatch.balances``)
REFRESH_PROVIDER_BALANCES = "postier.refresh_provider_balances"
#: folds the ledger's count deltas into its counters (``postier.ledger.counts``)
FOLD_LEDGER_COUNTS = "postier.fold_ledger_counts"

# campaigns (postier.campaigns): plan, fan-out and batches on the send queue; beat's passes
# match the scheduled queue's "postier.release_*" and "postier.reap_*" routes
PLAN_CAMPAIGN = "postier.campaigns.plan"
FAN_OUT_CAMPAIGN_CHUNK = "postier.campaigns.fan_out_chunk"
SEND_CAMPAIGN_BATCH = "postier.campaigns.send_batch"
RELEASE_DUE_CAMPAIGNS = "postier.release_due_campaigns"
#: one callback event's delivery attempt (its outbox row id)
DELIVER_CALLBACK = "postier.callbacks.deliver"
#: beat's pass handing due and never-published callback events to the broker
REPUBLISH_CALLBACKS = "postier.republish_callbacks"
#: every Octopush batch, campaigns' and bulk chunks' (``postier.dispatch.batches``)
REAP_BATCHES = "postier.reap_batches"

ALL_QUEUES = (QUEUE_SEND, QUEUE_BULK, QUEUE_SCHEDULED, QUEUE_HOOKS, QUEUE_CALLBACKS)
#: what the transactional worker consumes: its lane, beat's passes and the inbound hooks
TRANSACTIONAL_QUEUES = (QUEUE_SEND, QUEUE_SCHEDULED, QUEUE_HOOKS)
#: what the bulk worker consumes
BULK_QUEUES = (QUEUE_BULK,)
#: what the callbacks worker consumes
CALLBACK_QUEUES = (QUEUE_CALLBACKS,)
