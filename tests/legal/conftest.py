from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def seeded(env):
    """The starter library loaded into an empty database of each backend."""
    from hotline.cli import main

    assert main(["legal", "seed"]) == 0
    return env
