"""Tables of the referral domain."""

from __future__ import annotations
