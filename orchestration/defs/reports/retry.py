"""The retry rule of report steps: only transient warehouse/storage failures
(``orchestration.transient``) are retried, with exponential backoff; everything
else fails at once.

The steps raise :func:`transient_retry` themselves instead of carrying the
policy as the op's ``retry_policy``: Dagster applies an op's retry policy to
interrupts as well, so a run cancelled through the API (``DELETE /jobs/{id}``)
would be retried and end SUCCESS instead of CANCELED. Raised explicitly, a
``RetryRequested`` covers exactly the transient errors and a cancel stays a
cancel.

The first delay is ``Settings.transient_retry_delay_seconds``: the builders
(``report_asset``, ``adhoc_job``) are given the policy made from the settings
``build_definitions`` received.
"""

import dagster as dg


def transient_policy(delay: float) -> dg.RetryPolicy:
    """Attempts and backoff of a transient failure (read by :func:`transient_retry`, never attached to an op):
    3 retries, exponential from ``delay`` (``LXP_TRANSIENT_RETRY_DELAY_SECONDS``, default 10 s), ±jitter."""
    return dg.RetryPolicy(max_retries=3, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def transient_retry(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, policy: dg.RetryPolicy
) -> dg.RetryRequested:
    """The retry to raise (``from`` the transient error) for this step's next attempt under ``policy``."""
    return dg.RetryRequested(
        max_retries=policy.max_retries,
        seconds_to_wait=policy.calculate_delay(context.retry_number + 1),
    )
