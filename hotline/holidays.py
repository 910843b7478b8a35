"""Vietnam's public holidays, shared by the directory's "open now" and the lines' opening hours.

``hotline/data/holidays.json`` lists the statutory holidays (Labour Code 45/2019/QH14 Art. 112,
lunar dates converted); add the government's yearly day swaps there when they are published.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path

HOLIDAYS_FILE = Path(__file__).parent / "data" / "holidays.json"


@lru_cache(maxsize=1)
def public_holidays() -> dict[date, tuple[str, str]]:
    """Each public holiday → (Vietnamese name, English name)."""
    raw = json.loads(HOLIDAYS_FILE.read_text(encoding="utf-8"))
    return {date.fromisoformat(h["date"]): (h["vi"], h["en"]) for h in raw["holidays"]}


def is_public_holiday(day: date) -> bool:
    return day in public_holidays()
