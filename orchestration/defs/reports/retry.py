"""The retry policy of report steps: only transient warehouse/storage failures
(``orchestration.transient``) are retried, with exponential backoff; the steps
raise ``dg.Failure(allow_retries=False)`` for everything else."""

import dagster as dg

TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
