"""``hotline backup create | verify | restore`` against the real PostgreSQL with the real pg_dump and
pg_restore: a restore gives back the same data; damage, truncation and wrong keys are refused
before the database is touched; encryption streams in constant memory."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hotline.db import Base
from hotline.ops import backup
from tests.conftest import PG_ADMIN_URL
from tests.live.conftest import feed_call
from tests.ops.conftest import hotline_env, run_hotline

KEY = "backup-key-for-the-tests-" + "q" * 30


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*argv, KEY=value…)``: ``hotline.cli.main`` in this process with extra settings;
    returns (exit code, stdout, stderr)."""
    from hotline.cli import main
    from hotline.settings import reset_settings

    def run(*argv: str, **settings: str) -> tuple[int, str, str]:
        with monkeypatch.context() as m:
            for name, value in settings.items():
                m.setenv(name, value)
            reset_settings()
            code = main(list(argv))
        reset_settings()
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every table (and the migration state), in a stable order."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table in [*Base.metadata.sorted_tables]:
            rows = conn.execute(text(f'SELECT * FROM "{table.name}"')).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        out["alembic_version"] = sorted(tuple(r) for r in conn.execute(text("SELECT * FROM alembic_version")))
    engine.dispose()
    return out


@pytest.fixture
def scratch_db():
    """A new, empty PostgreSQL database to restore into."""
    name = f"hotline_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def some_data() -> None:
    from hotline.auth import service as auth
    from hotline.centres import service as centres
    from hotline.db import session_scope

    with session_scope() as db:
        centre = centres.create_centre(db, code="qn", name="Trung tâm CTXH Quảng Ninh")
        centres.add_line(db, centre=centre, provider="twilio", kind="number", identifier="+842873001234")
        auth.create_user(db, username="lan", password="Correct-Horse-Battery-9", role="counsellor", centre_id=centre.id)
    for i in range(3):
        feed_call(agent="PJSIP/tvv1", caller=f"09123456{i:02d}", answered=True, ended=i > 0)


@pytest.mark.slow
def test_backup_then_restore_gives_the_same_data(pg_env, scratch_db, tmp_path: Path, cli):
    some_data()
    before = snapshot(pg_env.database_url)
    assert len(before["calls"]) == 3 and len(before["raw_events"]) >= 9 and before["users"]
    env = hotline_env(HOTLINE_BACKUP_KEY=KEY)
    result = run_hotline("backup", "create", "--output", str(tmp_path) + "/", "--json", env=env)  # the real command
    assert result.returncode == 0, result.stderr
    [file] = list(tmp_path.glob("hotline-*.hlbk"))
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    content = file.read_bytes()
    assert b"Quang Ninh" not in content and "Quảng Ninh".encode() not in content and b"0912345600" not in content
    assert b"CREATE TABLE" not in content  # the dump is encrypted, not just wrapped

    code, out, _ = cli("backup", "verify", str(file), HOTLINE_BACKUP_KEY=KEY)
    assert code == 0 and "backup is intact" in out

    code, _, err = cli("backup", "restore", str(file), "--database-url", scratch_db, HOTLINE_BACKUP_KEY=KEY)
    assert code == 0, err
    assert snapshot(scratch_db) == before

    # Over a database that is not empty: refused unless --clean, then it goes back to the backup.
    feed_call(agent="PJSIP/tvv2", caller="0987654321")
    code, _, err = cli("backup", "restore", str(file), HOTLINE_BACKUP_KEY=KEY)
    assert code == 2 and "not empty" in err and "--clean" in err
    assert len(snapshot(pg_env.database_url)["calls"]) == 4
    code, _, err = cli("backup", "restore", str(file), "--clean", HOTLINE_BACKUP_KEY=KEY)
    assert code == 0, err
    assert snapshot(pg_env.database_url) == before


@pytest.mark.slow
def test_damaged_truncated_or_foreign_files_and_wrong_keys_are_refused(pg_env, scratch_db, tmp_path: Path, cli):
    some_data()
    target = tmp_path / "b.hlbk"
    assert cli("backup", "create", "--output", str(target), HOTLINE_BACKUP_KEY=KEY)[0] == 0
    data = target.read_bytes()

    flipped = tmp_path / "flipped.hlbk"
    middle = len(data) // 2
    flipped.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:])
    cut = tmp_path / "cut.hlbk"
    cut.write_bytes(data[: len(data) - 100])
    foreign = tmp_path / "foreign.hlbk"
    foreign.write_bytes(b"PGDMP" + data[5:])
    cases = [(flipped, KEY, "damaged or was altered at part 1"), (cut, KEY, "incomplete"),
             (foreign, KEY, "not a hotline backup file"),
             (target, "another-key-" + "z" * 40, "made with another key or passphrase")]
    for path, key, message in cases:
        code, _, err = cli("backup", "restore", str(path), "--database-url", scratch_db, HOTLINE_BACKUP_KEY=key)
        assert code == 2 and message in err, (path.name, err)
    engine = create_engine(scratch_db)
    with engine.connect() as conn:  # nothing reached the target database
        assert conn.execute(text("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")).scalar() == 0
    engine.dispose()

    code, _, err = cli("backup", "create", "--output", str(target), HOTLINE_BACKUP_KEY=KEY)
    assert code == 2 and "already exists" in err
    code, _, err = cli("backup", "create", HOTLINE_BACKUP_KEY="")
    assert code == 2 and "HOTLINE_BACKUP_KEY" in err


def test_a_passphrase_file_and_pruning(pg_env, tmp_path: Path, cli):
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple vietnam\n")
    os.chmod(secret, 0o600)
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        (folder / f"hotline-{stamp}.hlbk").write_bytes(b"old")
    code, out, err = cli("backup", "create", "--output", str(folder), "--keep", "2",
                         HOTLINE_BACKUP_PASSPHRASE_FILE=str(secret))
    assert code == 0, err
    assert out.count("old backup deleted") == 2
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 2 and left[0] == "hotline-20260103T000000Z.hlbk"
    newest = folder / left[1]
    assert cli("backup", "verify", str(newest), HOTLINE_BACKUP_PASSPHRASE_FILE=str(secret))[0] == 0
    code, _, err = cli("backup", "verify", str(newest), HOTLINE_BACKUP_KEY=KEY)
    assert code == 2 and "passphrase file" in err


def test_sqlite_is_refused_with_what_to_do_instead(sqlite_env, tmp_path: Path, cli):
    code, _, err = cli("backup", "create", "--output", str(tmp_path) + "/", HOTLINE_BACKUP_KEY=KEY)
    assert code == 2 and "PostgreSQL" in err and "copy the data directory" in err
    assert not list(tmp_path.glob("*.hlbk")) and not list(tmp_path.glob(".partial-*"))


class _Source(io.RawIOBase):
    """``size`` pseudo-random bytes produced as they are read, never held in memory at once."""

    def __init__(self, size: int):
        self.left = size
        self.digest = hashlib.sha256()
        self.counter = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left, 65536)
        block = b""
        while len(block) < n:
            self.counter += 1
            block += hashlib.sha256(str(self.counter).encode()).digest() * 64
        block = block[:n]
        buf[:n] = block
        self.left -= n
        self.digest.update(block)
        return n


def test_encryption_streams_in_constant_memory(tmp_path: Path):
    key = backup.key_source(backup_key=KEY)
    size = 24 * (1 << 20) + 12345  # 24 MiB and a bit: many chunks and a short last one
    source = _Source(size)
    path = tmp_path / "big.hlbk"
    tracemalloc.start()
    with open(path, "wb") as dest:
        assert backup.encrypt_stream(io.BufferedReader(source), dest, key, {"kind": "test"}) == size
    _, peak_encrypt = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in backup.decrypt_stream(fh, key):
            digest.update(chunk)
    _, peak_decrypt = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert digest.hexdigest() == source.digest.hexdigest()
    assert path.stat().st_size < size + 4096
    assert peak_encrypt < 8 * (1 << 20) and peak_decrypt < 8 * (1 << 20), (peak_encrypt, peak_decrypt)
