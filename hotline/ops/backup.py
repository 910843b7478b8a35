"""Encrypted PostgreSQL backups: ``pg_dump`` piped through authenticated encryption, and back.

File format (``.hlbk``), streamed in both directions so a dump of any size needs ~1 MiB of memory:

* ``MAGIC`` (16 bytes), then a 4-byte big-endian length and a JSON header: the format version,
  how the key was derived (``hkdf`` from ``HOTLINE_BACKUP_KEY`` or ``scrypt`` from a passphrase
  file), the salt, a check value of the derived key (a wrong key is told apart from damage), a
  random nonce prefix, when and from which database the dump was made.
* Then chunks: a 4-byte length and the AES-256-GCM ciphertext of up to ``CHUNK`` bytes of the
  ``pg_dump --format=custom`` output.  Each chunk's 12-byte nonce is the 7-byte prefix, a 4-byte
  counter and a final-chunk flag, and every chunk authenticates the header, so chunks cannot be
  reordered, dropped, swapped between files, or cut off at the end without detection.

Restore first checks the whole file (nothing is touched if one byte is wrong), then streams it into
``pg_restore --single-transaction``: the database gets all of the backup or none of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.engine import make_url

MAGIC = b"HOTLINE-BACKUP\x00\x01"
VERSION = 1
CHUNK = 1 << 20
SUFFIX = ".hlbk"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_LEN = struct.Struct(">I")


class BackupError(Exception):
    """Something the operator must fix; the message says what."""


@dataclass(frozen=True)
class KeySource:
    kind: str  # "hkdf" (a key from settings) or "scrypt" (a passphrase file)
    secret: bytes
    origin: str  # for messages: which setting or file

    def derive(self, salt: bytes) -> bytes:
        if self.kind == "scrypt":
            return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(self.secret)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"hotline backup v1").derive(self.secret)


def key_source(*, backup_key: str = "", passphrase_file: str | Path | None = None) -> KeySource:
    """A passphrase file wins over the key setting; neither is an error that says what to set."""
    if passphrase_file:
        path = Path(passphrase_file)
        try:
            data = path.read_bytes().strip()
        except OSError as exc:
            raise BackupError(f"cannot read the passphrase file {path}: {exc.strerror or exc}") from None
        if len(data) < 12:
            raise BackupError(f"the passphrase in {path} is shorter than 12 characters; use a long one")
        return KeySource("scrypt", data, str(path))
    if backup_key:
        if len(backup_key) < 32:
            raise BackupError("HOTLINE_BACKUP_KEY is shorter than 32 characters; generate one with: "
                              "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
        return KeySource("hkdf", backup_key.encode(), "HOTLINE_BACKUP_KEY")
    raise BackupError("no backup key: set HOTLINE_BACKUP_KEY (a long random value) or HOTLINE_BACKUP_PASSPHRASE_FILE "
                      "(a file holding a passphrase), or pass --passphrase-file; keep a copy of it away from the "
                      "backups, without it they cannot be read")


def _key_check(derived: bytes) -> str:
    """Tells a wrong key from a damaged file before any part is decrypted (reveals nothing of the key)."""
    return base64.b64encode(hashlib.sha256(b"hotline backup key check\x00" + derived).digest()[:16]).decode()


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


# ---------------------------------------------------------------------- encryption
def encrypt_stream(source: IO[bytes], dest: IO[bytes], key: KeySource, meta: dict[str, Any]) -> int:
    """Encrypt ``source`` into ``dest``; returns the number of plaintext bytes."""
    salt = os.urandom(16)
    prefix = os.urandom(7)
    derived = key.derive(salt)
    header = json.dumps({"version": VERSION, "kdf": key.kind, "salt": base64.b64encode(salt).decode(),
                         "key_check": _key_check(derived), "nonce_prefix": base64.b64encode(prefix).decode(),
                         "chunk": CHUNK, **meta},
                        sort_keys=True).encode()
    dest.write(MAGIC + _LEN.pack(len(header)) + header)
    aad = hashlib.sha256(MAGIC + header).digest()
    aes = AESGCM(derived)
    total, counter = 0, 0
    current = _read_full(source, CHUNK)
    while True:
        following = _read_full(source, CHUNK) if len(current) == CHUNK else b""
        last = not following
        if counter >= 0xFFFFFFFF:
            raise BackupError("the dump is too large for one backup file (over 4 PiB)")
        sealed = aes.encrypt(_nonce(prefix, counter, last), current, aad)
        dest.write(_LEN.pack(len(sealed)) + sealed)
        total += len(current)
        counter += 1
        if last:
            return total
        current = following


def _read_full(stream: IO[bytes], size: int) -> bytes:
    parts, left = [], size
    while left:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_header(stream: IO[bytes]) -> tuple[dict[str, Any], bytes]:
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupError("this is not a hotline backup file (it does not start with the hotline backup marker)")
    raw_len = stream.read(4)
    if len(raw_len) != 4:
        raise BackupError("the backup file is cut short in its header")
    (length,) = _LEN.unpack(raw_len)
    if length > 1 << 16:
        raise BackupError("the backup file's header is damaged")
    raw = stream.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise BackupError("the backup file's header is damaged") from None
    if header.get("version") != VERSION:
        raise BackupError(f"backup format version {header.get('version')} is not supported by this hotline")
    return header, raw


def decrypt_stream(source: IO[bytes], key: KeySource) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; raises BackupError on any damage or a wrong key."""
    header, raw = read_header(source)
    if header["kdf"] != key.kind:
        want = "a passphrase file (HOTLINE_BACKUP_PASSPHRASE_FILE or --passphrase-file)" if header["kdf"] == "scrypt" \
            else "the key HOTLINE_BACKUP_KEY"
        raise BackupError(f"this backup was encrypted with {want}, but {key.origin} was given")
    aad = hashlib.sha256(MAGIC + raw).digest()
    derived = key.derive(base64.b64decode(header["salt"]))
    if header.get("key_check") != _key_check(derived):
        raise BackupError(f"cannot decrypt the backup with {key.origin}: it was made with another key or passphrase")
    aes = AESGCM(derived)
    prefix = base64.b64decode(header["nonce_prefix"])
    counter = 0
    while True:
        raw_len = source.read(4)
        if len(raw_len) != 4:
            raise BackupError("the backup file is incomplete: it ends before its last part (copy it again)")
        (length,) = _LEN.unpack(raw_len)
        if length > header["chunk"] + 16:
            raise BackupError(f"the backup file is damaged at part {counter + 1}")
        sealed = source.read(length)
        if len(sealed) != length:
            raise BackupError("the backup file is incomplete: it ends in the middle of a part (copy it again)")
        for last in (False, True):
            try:
                plain = aes.decrypt(_nonce(prefix, counter, last), sealed, aad)
                break
            except InvalidTag:
                continue
        else:
            raise BackupError(f"the backup file is damaged or was altered at part {counter + 1}")
        yield plain
        counter += 1
        if last:
            if source.read(1):
                raise BackupError("the backup file has unexpected data after its last part")
            return


# ---------------------------------------------------------------------- PostgreSQL
def pg_env(url: str) -> tuple[dict[str, str], str]:
    """libpq environment for a SQLAlchemy URL (the password never goes on a command line)."""
    u = make_url(url)
    if not u.drivername.startswith("postgresql"):
        raise BackupError(f"backups work with PostgreSQL; HOTLINE_DATABASE_URL is {u.drivername}. For the SQLite demo, "
                          "stop the service and copy the data directory instead")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for var, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value is not None:
            env[var] = str(value)
    for key, query_value in u.query.items():
        if key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "host", "port"):
            env[{"host": "PGHOST", "port": "PGPORT"}.get(key, "PG" + key.upper())] = str(query_value)
    return env, u.database or ""


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        raise BackupError(f"{name} is not installed: apt-get install postgresql-client (the same major version as "
                          "the server, or newer)")
    return path


def create(url: str, output: Path, key: KeySource) -> dict[str, Any]:
    """Dump the database into an encrypted file written atomically (mode 0600)."""
    env, database = pg_env(url)
    pg_dump = _tool("pg_dump")
    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True).stdout.strip()
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=SUFFIX, dir=output.parent)
    tmp = Path(tmp_name)
    meta = {"kind": "postgresql-custom", "database": database, "pg_dump": version,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([pg_dump, "--format=custom", "--no-owner", "--no-privileges"], env=env,
                                stdout=subprocess.PIPE, stderr=errors)
        try:
            with os.fdopen(fd, "wb") as dest:
                assert proc.stdout is not None
                size = encrypt_stream(proc.stdout, dest, key, meta)
                dest.flush()
                os.fsync(dest.fileno())
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            tmp.unlink(missing_ok=True)
            raise
        if code != 0:
            tmp.unlink(missing_ok=True)
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            raise BackupError(f"pg_dump failed (exit {code}): {message[-600:]}")
    tmp.rename(output)
    return {**meta, "file": str(output), "bytes": output.stat().st_size, "dump_bytes": size}


def verify(path: Path, key: KeySource) -> dict[str, Any]:
    """Read and authenticate the whole file without restoring it."""
    try:
        with open(path, "rb") as fh:
            size = sum(len(chunk) for chunk in decrypt_stream(fh, key))
            fh.seek(0)
            header, _ = read_header(fh)
    except FileNotFoundError:
        raise BackupError(f"no such backup file: {path}") from None
    return {**{k: header[k] for k in ("kind", "database", "created_at", "pg_dump") if k in header},
            "dump_bytes": size}


def database_has_tables(url: str) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")).scalar())
    finally:
        engine.dispose()


def restore(path: Path, url: str, key: KeySource, *, clean: bool = False) -> dict[str, Any]:
    """Restore a backup into the database at ``url``, all or nothing."""
    info = verify(path, key)  # a damaged or foreign file never reaches the database
    env, _database = pg_env(url)
    if not clean and database_has_tables(url):
        raise BackupError("the target database is not empty: restore into a new empty database (createdb …), "
                          "or pass --clean to replace the objects in the backup (the data now in them is lost)")
    pg_restore = _tool("pg_restore")
    args = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            "--dbname", env.get("PGDATABASE", "")]
    if clean:
        args[1:1] = ["--clean", "--if-exists"]
    with tempfile.TemporaryFile() as errors, open(path, "rb") as fh:
        proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=errors, stderr=errors)
        assert proc.stdin is not None
        try:
            for chunk in decrypt_stream(fh, key):
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            raise BackupError(f"pg_restore failed (exit {code}); nothing was changed: {message[-600:]}")
    return info


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder``; returns what was deleted."""
    files = sorted((p for p in folder.glob(f"hotline-*{SUFFIX}") if p.is_file()), key=lambda p: p.name)
    gone = files[:-keep] if keep > 0 else []
    for p in gone:
        p.unlink()
    return gone
