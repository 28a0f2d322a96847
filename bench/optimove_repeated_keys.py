"""Optimove files: memory and time of the first pass, which tells the last row of each key.

An Optimove file is read twice so that a key repeated in it is sent once, with its last row.
The first pass (``optimove_delivery._last_of_each_key``, with ``martech.last_rows``) is measured on
CSV files of growing numbers of distinct customers, against a baseline in the same run that
holds every key with its last row in a dict. Each run is a fresh process reading the file
from disk, and its peak RSS is its own. What it shows: the first pass's peak memory stops
growing once a file has more keys than ``last_rows.EXACT_KEYS`` (the largest file against the
second largest, both past it), while the baseline's grows with the keys; and what that costs
in time per row.

    python bench/optimove_repeated_keys.py [--rows 500000 2000000 6000000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "bench")]

from monetate_file_throughput import peak_rss_mb  # noqa: E402
from recorded import record  # noqa: E402

KEY = "optimove/customers/upsert/customers.csv"


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as f:
        f.write("customer_id,tier,points\n")
        for start in range(0, rows, 100_000):
            f.write("".join(f"C{i:010d},gold,{i % 997}\n" for i in range(start, min(start + 100_000, rows))))
            if start % 1_000_000 == 0:
                f.write(f"C{start:010d},silver,1\n")  # a repeated key now and then


class EveryKey(dict):
    """The baseline: every key held with its last row."""

    def note(self, key: str, row: int) -> None:
        self[key] = row

    @property
    def held(self) -> int:
        return len(self)


def _first_pass(path: str, baseline: bool, queue: multiprocessing.Queue) -> None:
    from martech.last_rows import LastRows
    from martech.optimove_delivery import _row_key
    from martech.readers import read_records

    key_of = _row_key("customer_id", from_csv=True)  # as the function's first pass takes a row's key
    last = EveryKey() if baseline else LastRows()
    begin = time.perf_counter()
    with open(path, "rb") as stream:
        for number, record in enumerate(read_records(stream, KEY)):
            if (pk := key_of(record)) is not None:
                last.note(pk, number)
    queue.put({"seconds": round(time.perf_counter() - begin, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
               "keys_held": last.held})


def measure(path: Path, baseline: bool) -> dict:
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    process = spawn.Process(target=_first_pass, args=(str(path), baseline, queue))
    process.start()
    result = queue.get(timeout=3600)
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 2_000_000, 6_000_000])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-optimove-"))
    runs = []
    for rows in args.rows:
        path = work / f"{rows}.csv"
        write_csv(path, rows)
        ours, baseline = measure(path, baseline=False), measure(path, baseline=True)
        runs.append({"rows": rows, "file_mb": round(path.stat().st_size / 1e6, 1), "last_rows": ours, "dict_baseline": baseline,
                     "us_per_row": {"last_rows": round(ours["seconds"] / rows * 1e6, 2),
                                    "dict_baseline": round(baseline["seconds"] / rows * 1e6, 2)}})
        path.unlink()
    largest, second = runs[-1], runs[-2] if len(runs) > 1 else runs[-1]
    record("optimove_repeated_keys", {
        "runs": runs,
        "peak_rss_largest_vs_second": {side: round(largest[side]["peak_rss_mb"] / second[side]["peak_rss_mb"], 2)
                                       for side in ("last_rows", "dict_baseline")},
    })


if __name__ == "__main__":
    main()
