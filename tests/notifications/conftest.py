"""Accounts of every role (tests/live's staff) for the inbox tests."""

from tests.live.conftest import staff  # noqa: F401 - a fixture
