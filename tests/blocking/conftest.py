"""The signed-Twilio-request fixture, shared with tests/twilio."""

from tests.twilio.conftest import post  # noqa: F401 - a fixture
