"""Security tests reuse the live screen's staff fixture and call feeder."""

from __future__ import annotations

from tests.live.conftest import staff  # noqa: F401  (fixture)
