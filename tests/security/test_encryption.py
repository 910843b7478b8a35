"""Encryption at rest: the database holds ciphertext, the application shows plaintext; rows
written before encryption still read; the spool on disk is encrypted; production needs a key."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from hotline.calls.models import Call, CallRecord, DeadLetter, RawEvent
from hotline.db import session_scope
from hotline.ingest import spool
from hotline.ingest.events import CallEvent, Kind, RawIn
from hotline.security import crypto
from hotline.security.crypto import CryptoError, Keyring
from hotline.settings import Settings
from tests.live.conftest import call_id, feed_call, sign_in
from tests.security.helpers import raw_rows, raw_value, use_keys

JSON_H = {"Accept": "application/json"}
NOTES = "Chị Lan bị chồng đánh, đang ở nhà mẹ đẻ ở Hải Phòng"


def _complete(client, token: str, cid: int) -> int:
    rec = client.post(f"/records/for-call/{cid}", headers={**JSON_H, "X-CSRF-Token": token}).json()
    fields = {"caller_role": "survivor", "caller_sex": "female", "caller_age_group": "30_59",
              "issues": ["dv.physical"], "primary_issue": "dv.physical", "service_level": "3",
              "outcome": "resolved", "notes": NOTES, "consent_callback": True,
              "callback_safe_time": "sau 18 giờ khi chồng đi làm", "callback_safe_method": "phone_call",
              "consent_referral": True, "referral_to": "Nhà tạm lánh", "referral_data": "tên và địa chỉ nhà mẹ"}
    r = client.put(f"/records/{rec['id']}", json={"version": rec["version"], "fields": fields, "complete": True},
                   headers={**JSON_H, "X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    return rec["id"]


def test_database_holds_ciphertext_while_the_app_shows_plaintext(client, staff):
    token = sign_in(client, "tvv1")
    cid = call_id(feed_call(caller="0912345678", answered=True))
    rid = _complete(client, token, cid)

    # What someone with a copy of the database sees: no note text, no number.
    notes, safe_time, scope = raw_rows("SELECT notes, callback_safe_time, consent_referral_scope "
                                       "FROM call_records WHERE id = :id", id=rid)[0]
    for value in (notes, safe_time, scope):
        assert value.startswith("enc1:")
    assert NOTES not in notes and "sau 18 giờ" not in safe_time and "địa chỉ" not in scope  # whole words: base64 holds any 2 digits
    number, raw_caller, number_hash = raw_rows("SELECT caller_number, caller_raw, number_hash FROM calls "
                                               "WHERE id = :id", id=cid)[0]
    assert number.startswith("enc1:") and raw_caller.startswith("enc1:")
    assert "912345678" not in number + raw_caller + number_hash
    assert number_hash.startswith(crypto.hash_keyring().current + ":")
    changes = raw_value("SELECT changes FROM call_record_revisions WHERE record_id = :id", id=rid)
    assert changes.startswith("enc1:") and "bị chồng" not in changes
    for (payload,) in raw_rows("SELECT payload FROM raw_events"):
        assert payload.startswith("enc1:")
    # Two writes of the same value differ (fresh nonce): equality in SQL is impossible by design.
    with session_scope() as db:
        other = db.get(CallRecord, rid)
        assert other is not None and other.notes == NOTES

    # The application shows the plaintext to those allowed to see it.
    page = client.get(f"/records/{rid}")
    assert page.status_code == 200 and NOTES in page.text and "sau 18 giờ" in page.text
    hist = client.get(f"/records/{rid}/history")
    assert NOTES in hist.text
    gs_token = sign_in(client, "gs1")
    shown = client.post(f"/live/calls/{cid}/reveal", headers={**JSON_H, "X-CSRF-Token": gs_token})
    assert shown.status_code == 200 and "0912 345 678" in shown.text
    with session_scope() as db:
        call = db.get(Call, cid)
        assert call is not None and call.caller_number == "+84912345678" and call.caller_raw == "0912345678"


def test_raw_events_dead_letters_and_odd_bytes_are_encrypted(env, monkeypatch):
    body = b"Event: Newchannel\r\nCallerIDNum: 0987654321\r\nData: \xff\xfe"
    now = datetime.now(timezone.utc)
    good = RawIn("asterisk", "enc-1", now,
                 body.decode("utf-8", "replace"), event_type="Newchannel", payload_bytes=body,
                 events=[CallEvent(Kind.STARTED, "asterisk", "L-enc", now, caller="0987654321")])
    bad = RawIn("asterisk", "enc-2", good.received_at, "CallerIDNum: 0987654321 with no event", error="malformed")
    assert spool.submit([good, bad]) is not None
    for payload, payload_bytes in raw_rows("SELECT payload, payload_bytes FROM raw_events"):
        assert payload.startswith("enc1:") and "0987654321" not in payload
        if payload_bytes is not None:
            assert bytes(payload_bytes).startswith(b"enc1:") and b"0987654321" not in bytes(payload_bytes)
    dead = raw_value("SELECT payload FROM dead_letters")
    assert dead.startswith("enc1:") and "0987654321" not in dead
    with session_scope() as db:
        events = {e.dedupe_key: e for e in db.scalars(select(RawEvent))}
        assert events["enc-1"].payload_bytes == body and "CallerIDNum: 0987654321" in events["enc-1"].payload
        assert db.scalar(select(DeadLetter.payload)).startswith("CallerIDNum: 0987654321")
    # Binary values rotate like text.
    from hotline.security.service import rotate_keys

    old = ",".join(env.effective_encryption_keys)  # the development key generated into the data dir
    use_keys(monkeypatch, encryption=f"{crypto.generate_key()},{old}")
    new = crypto.keyring().current
    assert rotate_keys(hashes=False).reencrypted["raw_events.payload_bytes"] == 1
    [(stored,)] = [r for r in raw_rows("SELECT payload_bytes FROM raw_events") if r[0] is not None]
    assert bytes(stored).startswith(f"enc1:{new}:".encode())
    with session_scope() as db:
        assert db.scalar(select(RawEvent.payload_bytes).where(RawEvent.dedupe_key == "enc-1")) == body


def test_rows_written_before_encryption_still_read_and_rotation_encrypts_them(env):
    from hotline.cli import main
    from tests.security.helpers import raw_exec

    feed_call(caller="0912345678")
    with session_scope() as db:
        cid = db.scalar(select(Call.id))
    # As the columns were before this version: plaintext.
    raw_exec("UPDATE calls SET caller_number = '+84912345678', caller_raw = '0912345678' WHERE id = :id", id=cid)
    raw_exec("UPDATE raw_events SET payload = 'CallerIDNum: 0912345678'")
    with session_scope() as db:
        call = db.get(Call, cid)
        assert call is not None and call.caller_number == "+84912345678"
        assert all(e.payload == "CallerIDNum: 0912345678" for e in db.scalars(select(RawEvent)))
    with session_scope() as db:
        from hotline.security.service import key_status

        status = key_status(db)
    assert status.encryption["plaintext"]["calls.caller_number"] == 1
    assert main(["keys", "rotate", "--batch-size", "1"]) == 0
    assert raw_value("SELECT caller_number FROM calls").startswith("enc1:")
    with session_scope() as db:
        assert "plaintext" not in key_status(db).encryption
        assert db.get(Call, cid).caller_number == "+84912345678"


def test_spool_files_on_disk_are_encrypted_and_replay(env):

    at = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
    item = RawIn("asterisk", "spooled-1", at, "Event: Newchannel\r\nCallerIDNum: 0912000111", event_type="x",
                 events=[CallEvent(Kind.STARTED, "asterisk", "L-spool", at, caller="0912000111")])
    path = spool.write([item])
    on_disk = path.read_bytes()
    assert b"0912000111" not in on_disk and on_disk.startswith(b"enc1:")
    # A file spooled by an earlier version (plain JSON lines) still replays.
    legacy = spool.spool_dir() / "0-legacy.jsonl"
    legacy.write_text(json.dumps(spool._encode(RawIn("asterisk", "spooled-2", at, "x", event_type="x"))) + "\n")
    assert spool.drain() == 2
    with session_scope() as db:
        call = db.scalar(select(Call).where(Call.provider_key == "L-spool"))
        assert call is not None and call.caller_number == "+84912000111"
        assert db.scalar(select(RawEvent.payload).where(RawEvent.dedupe_key == "spooled-2")) == "x"


def test_production_without_a_key_refuses_to_start(tmp_path, monkeypatch):
    settings = Settings(_env_file=None, environment="production", secret_key="s" * 40, data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="HOTLINE_ENCRYPTION_KEYS is not set"):
        _ = settings.effective_encryption_keys
    assert not (tmp_path / "encryption_key").exists()
    monkeypatch.setenv("HOTLINE_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("HOTLINE_ENVIRONMENT", "production")
    monkeypatch.setenv("HOTLINE_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("HOTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HOTLINE_ENCRYPTION_KEYS", raising=False)
    use_keys(monkeypatch)
    from hotline.app import create_app

    with pytest.raises(RuntimeError, match="hotline keys generate"):
        create_app()
    monkeypatch.setenv("HOTLINE_ENCRYPTION_KEYS", "not-a-key")
    use_keys(monkeypatch)
    with pytest.raises(CryptoError, match="key number 1 is not 32 bytes"):
        create_app()
    use_keys(monkeypatch, encryption=crypto.generate_key())
    create_app()
    monkeypatch.setenv("HOTLINE_ENVIRONMENT", "test")
    use_keys(monkeypatch)


def test_development_key_is_generated_once_and_kept_private(tmp_path):
    one = Settings(_env_file=None, data_dir=tmp_path).effective_encryption_keys
    two = Settings(_env_file=None, data_dir=tmp_path).effective_encryption_keys
    assert one == two and len(one) == 1
    assert (tmp_path / "encryption_key").stat().st_mode & 0o077 == 0
    Keyring(one)  # a valid key


def test_a_value_under_a_removed_key_says_which_key_to_put_back():
    old, new = crypto.generate_key(), crypto.generate_key()
    sealed = Keyring([old]).encrypt_text("ghi chú")
    assert Keyring([new, old]).decrypt_text(sealed) == "ghi chú"
    with pytest.raises(CryptoError, match="put the old key back"):
        Keyring([new]).decrypt_text(sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(CryptoError, match="integrity"):
        Keyring([old]).decrypt_text(tampered)
