"""Getting a finished report to its requester, without Dagster.

The channels (platform webhook, SMTP e-mail), signed download links, report
storage and the delivery pass that ties them together over the notifications
of the request ledger (``orchestration.ledger``, ``Ledger.deliveries``). The API uses these directly (it stays free of
Dagster); on the Dagster side a notifier resource wraps them for the delivery
sensor (``orchestration.defs.delivery``).
"""
