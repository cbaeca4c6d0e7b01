"""The retry rule of report steps: only transient warehouse/storage failures
(``orchestration.transient``) are retried, with exponential backoff; everything
else fails at once.

The steps raise :func:`transient_retry` themselves instead of carrying the
policy as the op's ``retry_policy``: Dagster applies an op's retry policy to
interrupts as well, so a run cancelled through the API (``DELETE /jobs/{id}``)
would be retried and end SUCCESS instead of CANCELED. Raised explicitly, a
``RetryRequested`` covers exactly the transient errors and a cancel stays a
cancel.
"""

import dagster as dg

#: Attempts and backoff of a transient failure (read by :func:`transient_retry`, never attached to an op).
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def transient_retry(context: dg.OpExecutionContext | dg.AssetExecutionContext) -> dg.RetryRequested:
    """The retry to raise (``from`` the transient error) for this step's next attempt."""
    return dg.RetryRequested(
        max_retries=TRANSIENT_RETRY.max_retries,
        seconds_to_wait=TRANSIENT_RETRY.calculate_delay(context.retry_number + 1),
    )
