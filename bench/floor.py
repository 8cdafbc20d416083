"""The floor under `ybcalc score`'s time: what the unavoidable steps alone cost, against the 2× target.

    python bench/floor.py            # 10M line items (the file bench_score.py uses, generated if missing)
    python bench/floor.py 1e6 --repeat 3

Any scorer of a file of itemized bills must at least: read the columns the settlement needs (as text,
so that amounts stay exact and codes keep their zeros), number the lines' visit ids to bring each
bill's lines together (extracts arrive in no order), number the member ids (a member's year is settled
in date order), read the amounts exactly, read the settlement dates, and write one row per bill. This
script times those steps with the fastest kernels at hand (Arrow's own, multi-threaded where Arrow
is; a compiled hash table too when numba is installed, which is no faster: the cost is the random
memory access of a million-entry table, not the code) and prints:

- the target: 2 × pyarrow's plain read of the same file (best of ``--repeat``, fresh process each);
- the floor: the CPU-seconds of the unavoidable steps, and the wall time they would take if they
  kept every core busy all the time (generous: numbering is one thread per column in Arrow);
- what is left of the target for everything else a settlement does (codes, checks and rejects,
  exclusion and price-limit rules, table values, the year's running state, the account, warnings,
  rendering), in nanoseconds of CPU per line item.

Like bench_score.py it measures, and asserts nothing: the machine is shared and noisy.
"""
import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench_score import _size        # the same sizes as the benchmark's (1e7, 10000000)

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

STEPS = ["read as text", "number visit ids", "number member ids", "exact amounts", "settlement dates",
         "write bills (Parquet)"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _fresh(code: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return [float(x) for x in out]


def plain_read(path: Path) -> tuple[float, float]:
    """(wall s, CPU s) of pyarrow's plain read in a fresh process, as bench_score.py measures it."""
    return tuple(_fresh(
        "import pyarrow.csv as pacsv, resource, time\n"
        "r = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])\n"
        f"t, c = time.perf_counter(), r(); tb = pacsv.read_csv({str(path)!r})\n"
        "print(time.perf_counter() - t, r() - c)"))


def floor_steps(path: Path) -> dict:
    """{step: (wall s, CPU s)} of the unavoidable steps, run in this process on one read of the file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ybcalc.batch import arrow_allocator, read_arrow
    from ybcalc.money import fen_to_arrow_decimal
    out = {}

    def step(name, fn):
        t, c = time.perf_counter(), _cpu()
        value = fn()
        out[name] = (time.perf_counter() - t, _cpu() - c)
        return value

    with arrow_allocator():
        # ybcalc's own reader, every column as plain text: the least any exact reading can do
        table, _ = step("read as text", lambda: read_arrow(path, known_only=True))
        bills = step("number visit ids", lambda: pc.dictionary_encode(table["mdtrt_id"].combine_chunks()))
        nb = len(bills.dictionary)
        first = np.zeros(nb, np.int64)              # a bill's first line
        first[bills.indices.to_numpy()[::-1]] = np.arange(len(bills.indices))[::-1]
        first = pa.array(first)

        def members():    # numbered per bill; every line checked against its bill's (lines must agree)
            per_bill = table["psn_no"].take(first)
            pc.dictionary_encode(per_bill)
            return pc.all(pc.equal(table["psn_no"], per_bill.take(bills.indices)))
        step("number member ids", members)
        amounts = step("exact amounts", lambda: pc.cast(table["det_item_fee_sumamt"].combine_chunks(),
                                                        pa.decimal128(18, 2)))

        def dates():      # one per bill: the lines of a bill may differ only in the time of day
            per_bill = pc.utf8_slice_codeunits(table["setl_time"].take(first), 0, 10)
            pc.strptime(per_bill, "%Y-%m-%d", "s").cast(pa.date32())
            return per_bill
        day = step("settlement dates", dates)
        fen = np.frombuffer(amounts.buffers()[1], np.int64)[2 * amounts.offset::2]     # low words: fen
        total = np.bincount(bills.indices.to_numpy(), weights=fen, minlength=nb).astype(np.int64)
        # one row per bill in the shape ybcalc writes (ids, repeated texts as dictionaries, 14 money
        # fields as exact decimals, parts of each bill's total)
        cols = {"mdtrt_id": bills.dictionary, "psn_no": table["psn_no"].take(first),
                "setl_date": pc.dictionary_encode(day),
                "insuplc": pc.dictionary_encode(table["insuplc"].take(first)),
                **{f"money_{i}": fen_to_arrow_decimal(total * i // 14) for i in range(1, 15)}}
        bill_table = pa.table(cols)
        target = DATA / f"floor_bills_{os.getpid()}.parquet"
        try:
            # the options ybcalc's writer settles on (dictionaries for the repeated texts only), without
            # the count of distinct ids that parquet_options makes on a writer's first partition
            options = {"use_dictionary": ["setl_date", "insuplc"], "store_schema": False}
            step("write bills (Parquet)", lambda: pq.write_table(bill_table, target, **options))
        finally:
            target.unlink(missing_ok=True)
        try:
            compiled = _compiled_numbering(table["mdtrt_id"].combine_chunks())
        except ImportError:
            compiled = None
        if compiled is not None:
            out["number visit ids (numba)"] = compiled
    return out, table.num_rows, nb


def _compiled_numbering(arr):
    """(wall s, CPU s) of numbering the visit ids with a compiled open-addressing hash table (numba)."""
    import numba
    import numpy as np

    @numba.njit(nogil=True)
    def number(offsets, data, bits):
        size = 1 << bits
        mask = np.uint64(size - 1)
        slot_row = np.full(size, -1, np.int64)
        slot_hash = np.zeros(size, np.uint64)
        codes = np.empty(len(offsets) - 1, np.int64)
        k = 0
        for i in range(len(offsets) - 1):
            a, b = offsets[i], offsets[i + 1]
            h = np.uint64(14695981039346656037)
            for j in range(a, b):
                h = (h ^ np.uint64(data[j])) * np.uint64(1099511628211)
            s = h & mask
            while True:
                r = slot_row[s]
                if r < 0:
                    slot_row[s], slot_hash[s], codes[i] = i, h, k
                    k += 1
                    break
                if slot_hash[s] == h and offsets[r + 1] - offsets[r] == b - a:
                    ra = offsets[r]
                    same = True
                    for t in range(b - a):
                        if data[ra + t] != data[a + t]:
                            same = False
                            break
                    if same:
                        codes[i] = codes[r]
                        break
                s = (s + np.uint64(1)) & mask
        return codes, k

    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    number(offsets[:2], data, 4)                         # compile before the clock starts
    bits = max(4, int(2 * len(arr)).bit_length())
    t, c = time.perf_counter(), _cpu()
    number(offsets, data, bits)
    return time.perf_counter() - t, _cpu() - c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("size", nargs="?", type=_size, default=10_000_000, help="line items (default 1e7)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts (default 3)")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bills_{a.size}.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(a.size), str(path)], check=True)
    cores = os.cpu_count() or 1
    reads = [plain_read(path) for _ in range(a.repeat)]
    read_wall = min(r[0] for r in reads)
    runs = []
    for _ in range(a.repeat):
        steps, n, nb = floor_steps(path)
        runs.append(steps)
    best = {k: (min(r[k][0] for r in runs), min(r[k][1] for r in runs)) for k in runs[0]}
    print(f"machine: {cores} cores; {n:,} line items in {nb:,} bills; {path.stat().st_size / 2**20:,.0f} MB CSV; "
          f"best of {a.repeat}")
    print(f"{'step':<28} {'wall s':>7} {'CPU s':>7}")
    print(f"{'pyarrow plain read':<28} {read_wall:>7.2f} {min(r[1] for r in reads):>7.2f}   (the reference)")
    for k, (w, c) in best.items():
        note = "   (instead of Arrow's: not counted)" if "numba" in k else ""
        print(f"{k:<28} {w:>7.2f} {c:>7.2f}{note}")
    floor_cpu = sum(best[k][1] for k in STEPS)
    floor_wall = max(floor_cpu / cores, max(best[k][0] for k in STEPS))
    target = 2 * read_wall
    left = target - floor_wall
    print(f"target (2 × plain read): {target:.2f} s wall = {target * cores:.1f} CPU-s on {cores} cores")
    print(f"floor (the steps above): {floor_cpu:.2f} CPU-s = {floor_wall:.2f} s wall with every core busy")
    per_line = max(left, 0) * cores / n * 1e9
    print(f"left for all settlement logic: {left:.2f} s wall = {per_line:,.0f} ns of CPU per line item "
          f"({per_line * n / nb / 1000:,.2f} µs per bill)")


if __name__ == "__main__":
    main()
