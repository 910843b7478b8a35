"""Every table, so that ``Base.metadata`` (Alembic, tests) sees them all.

The modules declaring tables are listed by each domain's record in ``hotline.domains`` (the
composition root); importing that module imports them.
"""

from hotline import domains
from hotline.db import Base

metadata = Base.metadata
TABLE_MODULES = [module for domain in domains.DOMAINS for module in domain.models]
