"""Getting a finished report to its requester, without Dagster.

The outbox (durable notification rows), the channels (platform webhook,
SMTP e-mail), signed download links, report storage and the delivery pass
that ties them together. The API uses these directly (it stays free of
Dagster); on the Dagster side a notifier resource wraps them for the delivery
sensor (``orchestration.defs.delivery``).
"""
