"""The real services a production topology needs (PostgreSQL, Redis, moto S3) and the
delivery fixtures of the stack tests (people, webhook receiver, SMTP), shared, not copied."""

from tests.e2e.conftest import people, receiver, smtp  # noqa: F401 - fixtures
from tests.services.postgres import postgres_url  # noqa: F401 - fixture
from tests.services.redis import redis_url  # noqa: F401 - fixture
from tests.services.s3 import s3_client, s3_endpoint  # noqa: F401 - fixtures
