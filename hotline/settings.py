"""Settings from ``HOTLINE_*`` environment variables and an optional env file.

Every setting has a safe default so that ``hotline demo`` runs with nothing configured:
SQLite in ``var/``, an in-process queue and pub/sub, no telephony.  Secrets are never
defaulted to a constant: when ``HOTLINE_SECRET_KEY`` is unset outside production, a random key
is generated once and kept (mode 0600) in the data directory.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_",
        env_file=os.environ.get("HOTLINE_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: str = Field("development", description="development | production")
    data_dir: Path = Field(Path("var"), description="Where SQLite files, spools and generated keys live")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    redis_url: str = Field("", description="redis://…; empty means an in-process queue and pub/sub")

    secret_key: str = Field("", description="Signs sessions and tokens and keys the caller-number hash")
    api_token: str = Field("", description="Bearer token for /api until sign-in exists; empty disables the API")
    encryption_keys: str = Field("", description="Comma-separated keys for data at rest; the first encrypts, all decrypt")
    number_hash_keys: str = Field("", description="Comma-separated caller-number hash keys, newest first; default: the secret key")
    retention_notes_days: int = Field(730, ge=0, description="Free-text notes are removed after this many days (0: never)")
    retention_numbers_days: int = Field(180, ge=0, description="Full caller numbers are removed after this many days (0: never)")
    retention_raw_events_days: int = Field(
        90, ge=0, description="Provider events as received (raw_events) are deleted after this many days (0: never)")

    public_base_url: str = Field("http://127.0.0.1:8000", description="The URL Twilio calls, used to check signatures")
    twilio_auth_token: str = Field("", description="Twilio auth token (checks X-Twilio-Signature)")
    twilio_account_sid: str = ""
    twilio_recording_notice: bool = Field(False, description="Play a recording notice before enqueueing")
    block_refresh_seconds: float = Field(
        1.0, ge=0.2, le=10.0,
        description="Each web process re-reads the active blocks this often: a block set or lifted in another "
                    "process applies within this time")
    routes_refresh_seconds: float = Field(
        1.0, ge=0.2, le=10.0,
        description="Each web process re-reads the lines callers dial this often (the Twilio voice webhook routes "
                    "from its copy): a line changed in another process applies within this time")
    twilio_queue_prefix: str = "hotline"
    twilio_sms_from: str = Field("", description="The Twilio number (or messaging service SID) referral SMS come from")
    twilio_api_base_url: str = Field("", description="Empty: Twilio's own API; otherwise a stand-in (tests)")

    smtp_host: str = Field("", description="SMTP server for referral e-mails; empty: e-mail referrals fail with a reason")
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_from: str = "hotline@localhost"

    referral_escalation_minutes: int = Field(15, description="An emergency referral unanswered this long alerts supervisors")
    referral_link_hours: int = Field(72, description="How long a partner's single-use referral link stays valid")
    referral_retry_seconds: str = Field("10,30,90,270,810", description="Waits between delivery tries (backoff)")
    referral_allow_http_webhooks: bool = Field(
        False, description="Development only: also send referrals to plain http:// webhooks (names and notes in clear)")

    centre_phone: str = Field("", description="The centre's phone number for partners (shown on the partner's referral page and e-mail)")
    wrap_up_seconds: int = Field(60, ge=0, le=3600, description="After a call ends a counsellor is in wrap-up this long before available again")
    wallboard_answer_seconds: int = Field(20, ge=1, le=600, description="Service level: a call answered within this many seconds counts as answered in time")
    wallboard_service_level_min: int = Field(80, ge=0, le=100, description="Wallboard warns when fewer than this percent of today's calls were answered in time")
    wallboard_abandoned_max: int = Field(10, ge=0, le=100, description="Wallboard warns when more than this percent of today's calls were abandoned")
    wallboard_wait_max_seconds: int = Field(60, ge=1, le=3600, description="Wallboard warns when a caller has waited longer than this")

    pbx_ring_seconds: int = Field(30, ge=5, le=120, description="Calls hotline places (callbacks, listen-in): how long "
                                                                   "each phone rings before it counts as no answer")
    pbx_pending_seconds: int = Field(30, ge=5, le=600, description="A call to place that no AMI listener took "
                                                                     "within this time fails (is hotline ami running?)")
    pbx_callback_context: str = Field("hotline-callback", description="Asterisk dialplan context that dials the "
                                                                      "number of a callback through the trunk")
    callback_hours: str = Field("07:30-21:00", description="Local hours (HH:MM-HH:MM, the centre's time zone) in which callbacks and follow-up calls may be placed, for a centre that has not set its own (/callbacks/settings)")
    callback_max_attempts: int = Field(3, ge=1, le=20, description="Attempts to call a missed caller back before the item leaves the list (and a follow-up waits for its assignee to decide)")
    callback_spacing_minutes: int = Field(30, ge=0, le=1440, description="Minutes between two attempts to call the same caller back")
    callback_expiry_hours: int = Field(72, ge=1, le=24 * 30, description="A missed call leaves the callback list this many hours after it came in")
    callback_claim_minutes: int = Field(20, ge=1, le=240, description="A claimed callback nobody calls within this many minutes returns to the list")

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: str = ""
    ami_name: str = Field("", pattern=r"^[A-Za-z0-9_.:@-]{0,64}$",
                          description="This PBX's name (the hotline-ami@NAME unit sets it): the source of the calls "
                                      "it reports and the name centres and lines give to send their calls there; "
                                      "empty = ami:HOST:PORT")
    ami_keepalive_seconds: float = 10.0
    ami_reconnect_max_seconds: float = 30.0
    ami_queue_log: Path | None = Field(
        None, description="Asterisk's queue_log file (readable by hotline): calls that began and ended while "
                          "hotline ami was away are recovered from it on reconnect")
    ami_pbx_dir: Path | None = Field(
        None, description="Folder of per-PBX env files (NAME.env), one per hotline-ami@NAME unit; hotline check logs in to each")

    totp_required_roles: str = Field(
        "supervisor,administrator", description="Roles that must sign in with a second factor (TOTP), "
                                               "comma-separated; others may enrol (empty: nobody is forced)")

    caller_history_shared_centres: str = Field(
        "", description="Centres whose staff see each other's caller history, by centre code: groups separated "
                        "by ';', codes by ',' (a regional line serving several provinces). Empty: each centre its own")

    default_centre_code: str = "default"
    default_centre_name: str = "Trung tâm Công tác xã hội"
    default_timezone: str = "Asia/Ho_Chi_Minh"

    periodic_in_web: bool | None = Field(
        None, description="Without Redis, run periodic tasks in the web process (default: yes, except in tests)")

    # periodic reports (daily_log.reports): headers, recipients and reporting periods
    report_header: str = Field("", description="Report header lines, separated by ';' (issuing authority, centre)")
    report_recipients: str = Field("", description="Recipients of periodic reports, separated by ';'")
    report_signatory: str = Field("", description="Title of the person who signs periodic reports")
    report_year_start: str = Field("12-15", description="MM-DD: reporting year N starts on this day of year N-1 "
                                                        "(01-01: the calendar year)")
    report_half_year_start: str = Field("06-15", description="MM-DD: the second half of a reporting year starts here")
    report_due_half_year: str = Field("06-15", description="MM-DD: the six-monthly report is due before this day")
    report_due_annual: str = Field("12-15", description="MM-DD: the annual report is due before this day")

    log_level: str = "INFO"
    log_format: str = Field("json", description="json | console")

    # operations (hotline.ops): metrics access and encrypted backups
    metrics_token: str = Field("", description="Bearer token for /metrics; empty: readable only from this machine, directly")
    backup_key: str = Field("", description="Key that encrypts backups (32+ characters); keep a copy away from the backups")
    backup_passphrase_file: Path | None = Field(
        None, description="A file holding a backup passphrase, used instead of backup_key when set")

    @field_validator("environment")
    @classmethod
    def _env(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in {"development", "production", "test"}:
            raise ValueError("HOTLINE_ENVIRONMENT must be development, production or test")
        return v

    @field_validator("callback_hours")
    @classmethod
    def _callback_hours(cls, v: str) -> str:
        """``HH:MM-HH:MM`` as ``callbacks.service.parse_hours`` reads it (core imports no domain): a typo is
        refused at start, not met later by every page showing the callback strip (the live screen)."""
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", v or "")
        if m is not None:
            h1, m1, h2, m2 = (int(g) for g in m.groups())
            if h1 <= 23 and m1 <= 59 and m2 <= 59 and (h2 <= 23 or (h2, m2) == (24, 0)) and (h1, m1) != (h2, m2):
                return v
        raise ValueError(f"HOTLINE_CALLBACK_HOURS must look like 07:30-21:00 (24:00 may end the day; an end "
                         f"before the start runs past midnight), got {v!r}")

    # ------------------------------------------------------------------ derived values
    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def periodic_in_web_enabled(self) -> bool:
        if self.periodic_in_web is None:
            return self.environment != "test"
        return self.periodic_in_web

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'hotline.sqlite3').resolve()}"

    @property
    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        if self.is_production:
            raise RuntimeError(
                "HOTLINE_SECRET_KEY is not set. In production set it to a long random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')."
            )
        return _generated_secret(self.data_dir)

    @property
    def effective_encryption_keys(self) -> list[str]:
        from hotline.security.crypto import split_keys

        keys = split_keys(self.encryption_keys)
        if keys:
            return keys
        if self.is_production:
            raise RuntimeError(
                "HOTLINE_ENCRYPTION_KEYS is not set. In production set it to a key made with "
                "'hotline keys generate' (notes and full numbers are encrypted with it; keep a copy safe)."
            )
        return [_generated_secret(self.data_dir, "encryption_key")]

    @property
    def effective_number_hash_keys(self) -> list[str]:
        from hotline.security.crypto import split_keys

        return split_keys(self.number_hash_keys) or [self.effective_secret_key]

    @property
    def spool_dir(self) -> Path:
        path = self.data_dir / "spool"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _generated_secret(data_dir: Path, name: str = "secret_key") -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    if name == "encryption_key":
        from hotline.security.crypto import generate_key

        key = generate_key()
    else:
        key = secrets.token_urlsafe(48)
    # Written aside then linked into place: a process racing us reads a whole key, never half.
    tmp = data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
    from hotline import db
    from hotline.security import crypto

    crypto.reset()

    db.reset_engine()
