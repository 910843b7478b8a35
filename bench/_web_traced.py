"""Bench only: run the web app under uvicorn with memory snapshots on a signal.

    python bench/_web_traced.py PORT DUMP_DIR [--tracemalloc]

Not part of the application: production starts ``uvicorn hotline.app:create_app`` (or
``hotline web``) and has no way to turn any of this on.  Here, ``SIGUSR1`` writes to DUMP_DIR:

* ``types-<n>.txt``: live objects counted by type (objgraph's ``most_common_types``, by hand):
  what kinds of objects the process holds, whatever allocated them;
* ``trace-<n>.txt`` (with ``--tracemalloc``): the top allocation sites still alive, grouped by
  traceback (10 frames), and the difference from the previous dump.
"""

from __future__ import annotations

import collections
import gc
import signal
import sys
import threading
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    port, dump_dir = int(sys.argv[1]), Path(sys.argv[2])
    trace = "--tracemalloc" in sys.argv
    dump_dir.mkdir(parents=True, exist_ok=True)
    if trace:
        tracemalloc.start(10)
    state: dict[str, object] = {"n": 0, "previous": None}

    def dump() -> None:
        n = int(state["n"]) + 1  # type: ignore[call-overload]
        state["n"] = n
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        lines = [f"{count:>10} {name}" for name, count in counts.most_common(60)]
        lines.append(f"threads: {threading.active_count()}")
        (dump_dir / f"types-{n}.txt").write_text("\n".join(lines) + "\n")
        if trace:
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            out = [f"traced: current {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB, "
                   f"peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB", "", "== top (traceback) =="]
            for stat in snap.statistics("traceback")[:25]:
                out.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:>8} blocks")
                out.extend("      " + line for line in stat.traceback.format()[-12:])
            previous = state["previous"]
            if previous is not None:
                out.append("")
                out.append("== growth since the previous dump (line) ==")
                for diff in snap.compare_to(previous, "lineno")[:25]:  # type: ignore[arg-type]
                    out.append(f"{diff.size_diff / 2**20:+8.2f} MiB {diff.count_diff:+8} {diff.traceback[0]}")
            state["previous"] = snap
            (dump_dir / f"trace-{n}.txt").write_text("\n".join(out) + "\n")
        (dump_dir / f"done-{n}").write_text("")

    # The signal handler only starts the work: it runs between bytecodes on the main thread.
    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=dump, daemon=True).start())

    import uvicorn

    uvicorn.run("hotline.app:create_app", factory=True, host="127.0.0.1", port=port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
