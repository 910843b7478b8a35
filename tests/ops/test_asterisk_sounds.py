"""#17: the out-of-hours and blocked messages are "a sound file on Asterisk, sample provided".  Every prompt
the sample dialplan plays (``Playback``/``Background``/``Read``/``ControlPlayback`` of ``hotline/…``, and
the out-of-hours sounds hotline hands it, ``routing.CLOSED_MESSAGES``) has a machine-voiced sample in
``deploy/asterisk/sounds/vi/hotline/`` (``scripts/asterisk/make_sounds.sh``) that Asterisk plays as is:
an 8 kHz mono 16-bit WAV, a few seconds long, and a text to re-record it from."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest

from hotline.centres.routing import CLOSED_MESSAGES

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy/asterisk/extensions.conf"
SOUNDS = ROOT / "deploy/asterisk/sounds/vi"
PLAYS = re.compile(r"\b(?:Playback|Background|BackGround|Read|ControlPlayback)\(([^)]*)\)")


def played() -> set[str]:
    text = "\n".join(line for line in CONF.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith(";"))
    names = {m for args in PLAYS.findall(text) for m in re.findall(r"\bhotline/[a-z0-9-]+", args)}
    return names | {str(m["sound"]) for m in CLOSED_MESSAGES.values()}


def texts() -> dict[str, str]:
    return dict(re.findall(r'^;\s+(hotline/[a-z0-9-]+)\s+"(.+)"\s*$', CONF.read_text(encoding="utf-8"), re.M))


def test_the_dialplan_plays_the_prompts_we_know():
    assert {"hotline/closed", "hotline/blocked", "hotline/overflow", "hotline/welcome"} <= played()


@pytest.mark.parametrize("prompt", sorted(played()))
def test_every_prompt_has_a_sample_asterisk_plays_and_a_text(prompt):
    assert prompt in texts(), f"{prompt}: no Vietnamese text in extensions.conf's header to record it from"
    path = SOUNDS / f"{prompt}.wav"
    assert path.is_file(), f"{path} missing: run scripts/asterisk/make_sounds.sh"
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype()) == (8000, 1, 2, "NONE")
        seconds = w.getnframes() / w.getframerate()
        frames = w.readframes(w.getnframes())
    assert 1 <= seconds <= 25, seconds
    assert max(abs(int.from_bytes(frames[i:i + 2], "little", signed=True)) for i in range(0, len(frames), 2)) > 3000


def test_no_stray_samples():
    kept = {f"hotline/{p.stem}" for p in (SOUNDS / "hotline").glob("*")}
    assert kept <= set(texts()), kept - set(texts())
