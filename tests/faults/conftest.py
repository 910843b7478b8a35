"""Fault tests reuse the AMI rig and the referral world (its local partner peers)."""

from __future__ import annotations

from tests.ami.conftest import rig  # noqa: F401  (fixture)
from tests.referral.conftest import _peers, peers, sqlite_world  # noqa: F401  (fixtures)
