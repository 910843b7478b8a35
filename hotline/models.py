"""Imports every domain's tables so that ``Base.metadata`` (Alembic, tests) sees them all.

Each domain adds its ``models`` module here; nothing else needs to know the list.
"""

from hotline.auth import models as auth_models  # noqa: F401
from hotline.audit import models as audit_models  # noqa: F401
from hotline.calls import models as calls_models  # noqa: F401
from hotline.centres import models as centres_models  # noqa: F401
from hotline.live import models as live_models  # noqa: F401  (presence, record revisions)
from legal_library import models as legal_models  # noqa: F401
from directory import models as directory_models  # noqa: F401
from daily_log import models as daily_log_models  # noqa: F401
from referral import models as referral_models  # noqa: F401
from hotline.db import Base

metadata = Base.metadata
