"""The signed-Twilio-request fixture, shared with tests/twilio; a private PostgreSQL that a test may
stop and start, shared with tests/faults."""

from tests.faults.conftest import own_pg  # noqa: F401 - a fixture
from tests.twilio.conftest import post  # noqa: F401 - a fixture
