"""Data shapes the accounts service hands to views and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hotline.auth.models import User, UserSession


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked_until: datetime | None = None
    reason: str = ""  # "" (signed in) | "locked" | "bad_credentials" | "disabled"
    account_id: int | None = None  # the account a refused attempt named, when it exists


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    row: UserSession


@dataclass(frozen=True)
class CentreChoice:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class AgentRow:
    id: int
    provider: str
    identity: str
    centre_id: int
    user_id: int | None
