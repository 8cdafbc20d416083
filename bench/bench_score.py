"""Benchmark `ybcalc score` against pyarrow's read of the same CSV.

    python bench/bench_score.py            # 1M and 10M line items (generated under bench/data/)
    python bench/bench_score.py 1e6        # one size
    python bench/bench_score.py 1e7 --jobs 1   # passed on to `ybcalc score` (default: one job per core)
    python bench/bench_score.py 1e7 --csv      # write settlements.csv instead of .parquet

Prints, per size: line items per second, wall time, peak memory (resident memory of the scoring
process and its worker processes together, sampled),
and the ratios the performance target is stated in: time / pyarrow read time, and peak memory /
the file's in-memory Arrow size. Figures go into README's performance section.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (worker processes count too), from /proc."""
    parent, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{d}/statm") as f:
                rss[int(d)] = int(f.read().split()[1]) * page
            parent[int(d)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += [c for c, pp in parent.items() if pp == p]
    return total / 2**20


def measure_child(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak MB) of a command: the peak of the summed resident memory of the command and its
    worker processes, sampled every 20 ms."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.02)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    return dt, peak


def pyarrow_read(path: Path) -> tuple[float, float]:
    code = ("import time, pyarrow.csv as c; t = time.perf_counter(); tb = c.read_csv(%r); "
            "print(time.perf_counter() - t, tb.nbytes / 2**20)" % str(path))
    best = None
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        dt, mb = float(out[0]), float(out[1])
        best = (dt, mb) if best is None or dt < best[0] else best
    return best


def run(n: int, extra: list[str], suffix: str = ".parquet") -> dict:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bills_{n}.csv"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(path)], check=True)
    read_s, arrow_mb = pyarrow_read(path)
    out = DATA / f"settlements_{n}{suffix}"
    score_s, peak_mb = measure_child(["ybcalc", "score", str(path), "-o", str(out), "--allow-rejects", "-q", *extra])
    return {"lines": n, "csv_mb": path.stat().st_size / 2**20, "pyarrow_read_s": read_s, "arrow_mb": arrow_mb,
            "score_s": score_s, "lines_per_s": n / score_s, "peak_mb": peak_mb,
            "time_ratio": score_s / read_s, "memory_ratio": peak_mb / arrow_mb}


def main():
    args = sys.argv[1:]
    extra = args[args.index("--jobs"):args.index("--jobs") + 2] if "--jobs" in args else []
    suffix = ".csv" if "--csv" in args else ".parquet"
    sizes = [int(float(a)) for a in args if a not in extra and a != "--csv"] or [1_000_000, 10_000_000]
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; output {suffix}")
    print(f"{'lines':>11} {'CSV MB':>7} {'read s':>7} {'Arrow MB':>9} {'score s':>8} {'lines/s':>9} "
          f"{'peak MB':>8} {'time×read':>9} {'mem×Arrow':>9}")
    for n in sizes:
        r = run(n, extra, suffix)
        print(f"{r['lines']:>11,} {r['csv_mb']:>7.0f} {r['pyarrow_read_s']:>7.2f} {r['arrow_mb']:>9.0f} "
              f"{r['score_s']:>8.1f} {r['lines_per_s']:>9,.0f} {r['peak_mb']:>8.0f} {r['time_ratio']:>9.1f} "
              f"{r['memory_ratio']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
