"""Two centres with lines: the line's own centre (default) and an overflow centre."""

from __future__ import annotations

import pytest

from hotline.centres.service import add_line, create_centre, ensure_default_centre
from hotline.db import session_scope
from hotline.settings import get_settings
from tests.twilio.conftest import LINE, post  # noqa: F401 - a fixture

PASSWORD = "Mat-khau-dai-du-2026!"
API = {"Authorization": "Bearer test-api-token"}
DIALLED = "18001234"  # the Asterisk line's number as the trunk presents it


@pytest.fixture
def centres(env):
    """ids of the default centre (lines: Asterisk queue ``hotline``, number 18001234, the Twilio
    number) and of the overflow centre ``hcm`` (Asterisk queue ``hotline-hcm``)."""
    settings = get_settings()
    with session_scope() as db:
        home = ensure_default_centre(db, code=settings.default_centre_code, name="Trung tâm Quảng Nam",
                                     timezone=settings.default_timezone)
        other = create_centre(db, code="hcm", name="Trung tâm TP. Hồ Chí Minh")
        queue = add_line(db, centre=home, provider="asterisk", kind="queue", identifier="hotline")
        number = add_line(db, centre=home, provider="asterisk", kind="number", identifier=DIALLED, label="Đường dây 1800")
        twilio = add_line(db, centre=home, provider="twilio", kind="number", identifier=LINE)
        add_line(db, centre=other, provider="asterisk", kind="queue", identifier="hotline-hcm")
        return {"home": home.id, "other": other.id, "queue_line": queue.id, "number_line": number.id,
                "twilio_line": twilio.id}
