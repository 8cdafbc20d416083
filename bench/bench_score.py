"""Benchmark `ybcalc score` against pyarrow's read of the same CSV.

    python bench/bench_score.py            # 1M and 10M line items (generated under bench/data/)
    python bench/bench_score.py 1e6        # one size
    python bench/bench_score.py 1e7 --jobs 1   # passed on to `ybcalc score` (default: one job per core)
    python bench/bench_score.py 1e7 --csv      # write settlements.csv instead of .parquet
    python bench/bench_score.py 1e7 --repeat 5 # runs of each command (default 3)
    python bench/bench_score.py 1e7 --parquet-in   # the same bills as a Parquet input

Prints, per size: line items per second, wall time, CPU time (user + system, the scoring process and
its workers together: a second measure beside wall time, which a shared machine moves), peak memory (resident memory
of the scoring process and its worker processes together, sampled),
and the ratios the performance target is stated in: time / pyarrow read time, and peak memory /
the file's in-memory Arrow size. Figures go into README's performance section.

Shared machines are noisy (the same command can take 30% longer from one minute to the next), so
pyarrow's read and then ``ybcalc score`` each run ``--repeat`` times: the ratio is best time over best
time, the median score time is printed beside it, and peak memory is the highest seen. The reads run
back to back before the scoring, never right after a scoring run: a read that follows one takes up to
twice as long (the kernel is still reclaiming the run's memory), which would flatter the ratio.
"""
import argparse
import os
import statistics
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


def measure_child(cmd: list[str]) -> tuple[float, float, float]:
    """(seconds, peak MB, CPU seconds) of a command: the peak of the summed resident memory of the
    command and its worker processes, sampled every 20 ms, and the CPU time (user + system) of the
    command and of every worker it waited for. A shared machine moves both: compare changes by both."""
    import resource
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.02)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dt, peak, cpu


def pyarrow_read(path: Path) -> tuple[float, float]:
    """(seconds, Arrow MB) of pyarrow's plain read of the CSV (or Parquet file), in a fresh process."""
    if path.suffix == ".parquet":
        # pyarrow.dataset is imported before the clock starts: read_table imports it on first use (0.26 s)
        setup, call = "import pyarrow.parquet as pq, pyarrow.dataset", "pq.read_table"
    else:
        setup, call = "import pyarrow.csv as pacsv", "pacsv.read_csv"
    code = (f"{setup}; import time; t = time.perf_counter(); tb = {call}({str(path)!r}); "
            "print(time.perf_counter() - t, tb.nbytes / 2**20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def run(n: int, extra: list[str], suffix: str = ".parquet", repeat: int = 3, source: str = ".csv") -> dict:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bills_{n}{source}"
    if not path.exists():
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(n), str(path)], check=True)
    out = DATA / f"settlements_{n}{suffix}"
    reads = [pyarrow_read(path) for _ in range(repeat)]
    arrow_mb = reads[0][1]
    scores, peaks, cpus = [], [], []
    for _ in range(repeat):
        score_s, peak_mb, cpu_s = measure_child(["ybcalc", "score", str(path), "-o", str(out), "--allow-rejects",
                                                 "-q", *extra])
        scores.append(score_s)
        peaks.append(peak_mb)
        cpus.append(cpu_s)
    reads = [r[0] for r in reads]
    read_s, score_s, peak_mb = min(reads), min(scores), max(peaks)
    return {"lines": n, "csv_mb": path.stat().st_size / 2**20, "pyarrow_read_s": read_s, "arrow_mb": arrow_mb,
            "score_s": score_s, "score_median_s": statistics.median(scores), "cpu_s": min(cpus),
            "lines_per_s": n / score_s,
            "peak_mb": peak_mb, "time_ratio": score_s / read_s, "memory_ratio": peak_mb / arrow_mb}


def _size(text: str) -> int:
    try:
        n = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of line items: {text!r} (e.g. 1e6)") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"need at least one line item: {text!r}")
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Figures go into README's performance section.")
    ap.add_argument("sizes", nargs="*", type=_size, default=[1_000_000, 10_000_000],
                    help="line items per file, e.g. 1e6 1e7 (default: both)")
    ap.add_argument("--jobs", type=int, help="worker processes, passed on to `ybcalc score` (default: one per core)")
    ap.add_argument("--csv", action="store_true", help="write settlements as CSV instead of Parquet")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (default 3)")
    ap.add_argument("--parquet-in", action="store_true",
                    help="score the bills as a Parquet file (the ratio is then to pyarrow's Parquet read)")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    extra = ["--jobs", str(a.jobs)] if a.jobs is not None else []
    suffix, repeat, sizes = (".csv" if a.csv else ".parquet"), a.repeat, a.sizes
    source = ".parquet" if a.parquet_in else ".csv"
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; input {source}; output {suffix}; "
          f"best of {repeat} runs (median score time beside it)")
    print(f"{'lines':>11} {'file MB':>7} {'read s':>7} {'Arrow MB':>9} {'score s':>8} {'median':>7} {'CPU s':>7} "
          f"{'lines/s':>9} {'peak MB':>8} {'time×read':>9} {'mem×Arrow':>9}")
    for n in sizes:
        r = run(n, extra, suffix, repeat, source)
        print(f"{r['lines']:>11,} {r['csv_mb']:>7.0f} {r['pyarrow_read_s']:>7.2f} {r['arrow_mb']:>9.0f} "
              f"{r['score_s']:>8.1f} {r['score_median_s']:>7.1f} {r['cpu_s']:>7.1f} {r['lines_per_s']:>9,.0f} "
              f"{r['peak_mb']:>8.0f} "
              f"{r['time_ratio']:>9.1f} {r['memory_ratio']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
