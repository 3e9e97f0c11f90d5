"""Profile the durable ingest (memory bus + SQLite) with pyinstrument:
`python -m benchmarks.profile_ingest --tasks 2000 --out benchmarks/profiles/ingest.html`."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from benchmarks.ingest import run_ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/ingest.db"
        profiler = Profiler(async_mode="disabled")
        profiler.start()
        asyncio.run(run_ingest(url, args.tasks))
        profiler.stop()
    args.out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
