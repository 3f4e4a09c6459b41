"""Bulk campaigns: one personalised text (or WhatsApp template) to a group, a CSV or a list.

Modules, one job each:

- ``spec``: what a campaign sends, checked once at creation (``resolve_spec``);
- ``compliance``: each provider route, and what it demands of marketing (STOP mention,
  notification-only routes);
- ``quiet_hours``: no marketing 20:00–08:00, on Sundays or French public holidays;
- ``audience``: reading a group, a CSV (column mapping, line numbers) or a list;
- ``personalise``: ``{{field}}`` placeholders;
- ``rows``: one contact -> one ledger row, with the producer's validation and a derived id;
- ``optout``: the opt-out table and its sources (Primotexto, Octopush STOPs, local);
- ``estimate``: parts and cost before sending (``--dry-run``);
- ``fanout``: the worker's plan and chunk tasks;
- ``batch``: Octopush multi-recipient sends for campaigns with one text;
- ``lifecycle``: start, quiet hours, pause, resume, cancel, done, and the status report;
- ``queries``: the ledger statements of all the above;
- ``tasks`` / ``context``: publishing campaign tasks; what one process shares;
- ``contacts``: Afilnet groups from a CSV; ``cli``: ``postier campaign`` and ``postier contacts``.

Application code creates campaigns with ``producers.campaigns.create``.
"""
