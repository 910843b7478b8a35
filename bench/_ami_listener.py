"""Shared by the AMI benchmarks: start ``hotline ami`` as its own process against a simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_listener(url: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    """``hotline ami`` on database ``url``, logging in to the simulator on ``port`` as bench/bench-secret."""
    env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_DATA_DIR": data_dir,
           "HOTLINE_SECRET_KEY": "bench-secret-key", "HOTLINE_ENV_FILE": os.path.join(data_dir, "none.env"),
           "HOTLINE_REDIS_URL": "", "HOTLINE_AMI_HOST": "127.0.0.1", "HOTLINE_AMI_PORT": str(port),
           "HOTLINE_AMI_USERNAME": "bench", "HOTLINE_AMI_SECRET": "bench-secret", "HOTLINE_LOG_LEVEL": "WARNING",
           "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hotline", "ami"], env=env, cwd=ROOT)
