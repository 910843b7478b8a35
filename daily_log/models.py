"""Tables of the daily_log domain."""

from __future__ import annotations
