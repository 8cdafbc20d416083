"""Output files: spreadsheet-safe CSV from every writer, outputs that never destroy an input, files
replaced together, and stopped runs that leave nothing behind."""
import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ybcalc
from ybcalc.batch import csv_rows, neutralise_formulas, write_table
from ybcalc.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"

# Cells a spreadsheet would run as a formula (OWASP's list), each with what ybcalc writes instead.
FORMULAS = {
    "=1+1": "'=1+1", "+1+1": "'+1+1", "-1+1": "'-1+1", "@SUM(A1)": "'@SUM(A1)",
    "\t=1": "'\t=1", "\r=cmd|' /C calc'!A0": "'\r=cmd|' /C calc'!A0", "\n=1": "'\n=1", "\tx": "'\tx",
    "\rx": "'\rx", "\nx": "'\nx",
    "＝1+1": "'＝1+1", "＋1": "'＋1", "－1": "'－1", "＠SUM(A1)": "'＠SUM(A1)",   # full-width
    " =1+1": "' =1+1", "  @x": "'  @x", " \t-1": "' \t-1", "\u3000＝1": "'\u3000＝1",  # after spaces
}
HARMLESS = ["-12.50", "+12", "-3", "12.30", "ok", "a=b", "北京", "'=1", " 1", "", "1e5"]


def raw_text(path) -> str:
    """A file's text with its line breaks as written (read_text would turn a CR into a LF)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def spreadsheet_cells(text: str) -> list[list[str]]:
    """The rows and cells a spreadsheet's CSV import sees (RFC 4180; a bare CR or LF ends a row)."""
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))


UNSAFE = re.compile(r"^(?:[\t\r\n]|[ \t\r\n\u3000]*[=+\-@＝＋－＠])")
NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")


def assert_safe(rows: list[list[str]], width: int) -> None:
    """Every row has the header's width and no cell would run as a formula."""
    for r in rows:
        assert len(r) == width, r
        for cell in r:
            assert not UNSAFE.match(cell) or NUMBER.fullmatch(cell), repr(cell)


def test_every_formula_start_is_neutralised_by_both_encoders():
    """OWASP's list: = + - @ TAB CR LF, their full-width forms, and any of them after spaces; plain
    numbers (-12.50, a refund) stay numbers. The Arrow encoder (BillWriter) and pandas agree."""
    texts = list(FORMULAS) + HARMLESS
    want = list(FORMULAS.values()) + HARMLESS
    df = pd.DataFrame({"mdtrt_id": pd.Series(texts, dtype=object)})
    assert neutralise_formulas(df)["mdtrt_id"].tolist() == want
    cats = df.assign(mdtrt_id=df["mdtrt_id"].astype("category"))
    for frame in (df, cats):
        body = csv_rows(frame.assign(n=1))
        got = [r[0] for r in spreadsheet_cells(body)]
        assert got == want


def test_a_carriage_return_cannot_start_a_row_in_any_csv_writer(tmp_path):
    """A cell "\\r=cmd…" was written by write_table (rejects, Dask output, diff -o) as '<CR>=cmd…:
    readers split the row at the bare CR and the formula began a new row."""
    attack = "\r=cmd|' /C calc'!A0"
    df = pd.DataFrame({"row": [2, 3], "mdtrt_id": ["b1", "b2"], "value": [attack, "x\ry"],
                       "reason": ["not a number", "a\nb"]})
    write_table(df, tmp_path / "rejects.csv")
    rows = spreadsheet_cells(raw_text(tmp_path / "rejects.csv"))
    assert rows == [["row", "mdtrt_id", "value", "reason"], ["2", "b1", "'" + attack, "not a number"],
                    ["3", "b2", "x\ry", "a\nb"]]
    assert_safe(rows, 4)


def test_the_rejects_file_of_score_is_safe_end_to_end(tmp_path):
    """An amount cell holding CR + formula, read from the user's file, comes back in the rejects file
    as one quoted, neutralised cell."""
    src = tmp_path / "bills.csv"
    lines = (EXAMPLES / "bills.csv").read_text(encoding="utf-8").splitlines()
    head, first = lines[0], lines[1].split(",")
    first[-1] = '"\r=cmd|\' /C calc\'!A0"'
    src.write_text("\n".join([head, ",".join(first)] + lines[2:]) + "\n", encoding="utf-8")
    out, rej = tmp_path / "out.csv", tmp_path / "rejects.csv"
    assert main(["score", str(src), "-o", str(out), "--rejects", str(rej), "-q"]) == 3
    rows = spreadsheet_cells(raw_text(rej))
    assert_safe(rows, 5)
    assert "'\r=cmd|' /C calc'!A0" in [r[3] for r in rows]
    bills = spreadsheet_cells(raw_text(out))
    assert_safe(bills, len(bills[0]))


def test_negative_money_stays_a_number_in_every_writer(tmp_path):
    """A refund (-12.50) in a money column is a number for the spreadsheet, written as fen or text or
    Decimal (diff -o)."""
    fen = pd.DataFrame({"mdtrt_id": ["a", "b"], "hifp_pay": np.array([-1250, 30], dtype=np.int64)})
    assert csv_rows(fen) == "a,-12.50\nb,0.30\n"
    text = pd.DataFrame({"mdtrt_id": ["a"], "hifp_pay": ["-12.50"], "psn_part_amt_delta": [Decimal("-3.10")]})
    write_table(text, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "mdtrt_id,hifp_pay,psn_part_amt_delta\na,-12.50,-3.10\n"


def test_write_table_writes_every_kind_of_column_as_pandas_would(tmp_path):
    """The compare table has floats (NaN when a scenario cannot be settled) and booleans, the rejects
    file integers: written as pandas writes them."""
    df = pd.DataFrame({"region": ["北京", "=x"], "medfee_sumamt": [1827.15, np.nan], "settled": [True, False],
                       "row": np.array([2, 3], dtype=np.int64), "note": [None, "a,b"]})
    write_table(df, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text(encoding="utf-8-sig") == (
        "region,medfee_sumamt,settled,row,note\n北京,1827.15,True,2,\n'=x,,False,3,\"a,b\"\n")


def test_explain_as_csv_is_spreadsheet_safe(capsys):
    """`explain --format csv` (redirected to a file by users) goes through the same encoder."""
    assert main(["explain", str(EXAMPLES / "bills.csv"), "--mdtrt-id", "BJ001-20250315", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    rows = spreadsheet_cells(out)
    assert len(rows) > 3
    assert_safe(rows, len(rows[0]))


def copy_of_examples(tmp_path) -> Path:
    src = tmp_path / "bills.csv"
    src.write_bytes((EXAMPLES / "bills.csv").read_bytes())
    return src


@pytest.mark.parametrize("command", [
    ["diff", "{bills}", "--a", "2024-01-01", "--b", "2025-01-01", "-o", "{bills}"],
    ["diff", "{bills}", "--a", "2024-01-01", "--b", "2025-01-01", "-o", "{link}"],
    ["compare", "{bills}", "--mdtrt-id", "BJ001-20250315", "--csv", "{bills}"],
    ["compare", "{bills}", "--mdtrt-id", "BJ001-20250315", "--out", "{bills}"],
    ["compare", "{bills}", "--mdtrt-id", "BJ001-20250315", "--out", "{png}", "--csv", "{png}"],
    ["score", "{bills}", "-o", "{link}"],
])
def test_no_command_writes_over_its_input(tmp_path, capsys, command):
    """`diff bills.csv … -o bills.csv` exited 0 with the bills replaced by the comparison: every
    command that writes checks its outputs before any work, as score does (a link to the input is
    the input)."""
    src = copy_of_examples(tmp_path)
    (tmp_path / "link.csv").symlink_to(src)
    before = src.read_bytes()
    names = {"bills": str(src), "link": str(tmp_path / "link.csv"), "png": str(tmp_path / "c.png")}
    assert main([a.format(**names) for a in command]) == 2
    err = capsys.readouterr().err
    assert "would overwrite" in err or "give" in err, err
    assert "Traceback" not in err
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bills.csv", "link.csv"]


@pytest.mark.parametrize("command", [
    ["diff", "{bills}", "--a", "2024-01-01", "--b", "2025-01-01", "-o", "{out}"],
    ["compare", "{bills}", "--mdtrt-id", "BJ001-20250315", "--csv", "{out}"],
    ["score", "{bills}", "-o", "{out}"],
])
def test_an_output_that_is_not_a_plain_file_is_refused(tmp_path, capsys, command):
    """An output is written beside itself and renamed over it: over a folder that fails at the end,
    over a device (-o /dev/null) it would replace the device."""
    src = copy_of_examples(tmp_path)
    (tmp_path / "out.csv").mkdir()
    assert main([a.format(bills=src, out=tmp_path / "out.csv") for a in command]) == 2
    assert "not a plain file" in capsys.readouterr().err
    assert (tmp_path / "out.csv").is_dir()


def unwritable_folder(tmp_path) -> Path:
    """A folder that takes no new file: read-only by its mode, or, for root (whom no mode stops),
    /proc, where no file can be created."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").touch()
    except OSError:
        return ro
    (ro / "probe").unlink()
    if not Path("/proc/self").exists():
        pytest.skip("no read-only folder to try as root")
    return Path("/proc")


@pytest.mark.parametrize("flag", ["-o", "--rejects"])
def test_an_output_folder_that_takes_no_file_is_refused_before_any_bill_is_read(tmp_path, capsys, monkeypatch,
                                                                                 flag):
    """A read-only -o folder failed after the whole run, with a traceback."""
    import ybcalc.batch as batch

    def never(*a, **kw):
        raise AssertionError("bills were read")
    monkeypatch.setattr(batch, "score_file", never)
    folder = unwritable_folder(tmp_path)
    outputs = {"-o": str(tmp_path / "out.csv"), "--rejects": str(tmp_path / "rejects.csv")}
    outputs[flag] = str(folder / "out.csv")
    argv = ["score", str(EXAMPLES / "bills.csv"), "-q"] + [a for kv in outputs.items() for a in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flag} {folder / 'out.csv'}: cannot write a file in folder {folder}" in err
    assert "Traceback" not in err
    for cmd in (["diff", str(EXAMPLES / "bills.csv"), "--a", "2024-01-01", "--b", "2025-01-01"],
                ["compare", str(EXAMPLES / "bills.csv"), "--mdtrt-id", "BJ001-20250315", "--csv"]):
        assert main(cmd + ([] if cmd[0] == "compare" else ["-o"]) + [str(folder / "out.csv")]) == 2
        assert f"cannot write a file in folder {folder}" in capsys.readouterr().err


def test_settlements_and_rejects_are_replaced_together(tmp_path, capsys, monkeypatch):
    """score renamed -o into place before writing the rejects: when that failed (disk full), the new
    settlements sat beside the previous run's rejects, which claimed nothing was rejected."""
    import ybcalc.batch as batch
    out, rej = tmp_path / "out.csv", tmp_path / "rejects.csv"
    out.write_text("the previous run's settlements\n")
    rej.write_text("the previous run's rejects\n")
    src = copy_of_examples(tmp_path)
    real_open = open

    def disk_full_for_rejects(file, *a, **kw):
        if Path(str(file)).name.startswith(".rejects.csv."):
            raise OSError(28, "No space left on device")
        return real_open(file, *a, **kw)
    monkeypatch.setattr("builtins.open", disk_full_for_rejects)
    assert main(["score", str(src), "-o", str(out), "--rejects", str(rej), "-q", "--allow-rejects"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert f"--rejects {rej}: cannot be written (No space left on device)" in err and "Traceback" not in err
    assert out.read_text() == "the previous run's settlements\n"
    assert rej.read_text() == "the previous run's rejects\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bills.csv", "out.csv", "rejects.csv"]
    assert main(["score", str(src), "-o", str(out), "--rejects", str(rej), "-q", "--allow-rejects"]) == 0
    assert out.read_text(encoding="utf-8-sig").startswith("mdtrt_id") and rej.read_text().startswith("row")


# A run of `ybcalc score -j 2` whose workers take a partition each and wait: small partitions make a
# small file use workers (as a 2M-line file does with the default 250,000 lines a partition). This
# file is the workers' main module too (spawn imports it), so they wait as well.
STOPPABLE_RUN = '''
import os, sys, time
import ybcalc.batch as batch

real_partition, real_score_file = batch.score_partition, batch.score_file


def waiting_partition(chunk, *a, **kw):
    if os.environ.get("YBCALC_TEST_WAIT") and not str(chunk).endswith("/0.arrows"):
        time.sleep(600)                      # the first partition is written, the others wait
    return real_partition(chunk, *a, **kw)


batch.score_partition = waiting_partition
batch.score_file = lambda *a, **kw: real_score_file(*a, **dict(kw, partition_lines=20))

if __name__ == "__main__":
    from ybcalc.cli import main
    sys.exit(main(sys.argv[1:]))
'''


def leftovers(pid: int, tmp: Path, out: Path) -> list[str]:
    """The temporary files of process ``pid``: partition folders (in /dev/shm or the temporary folder,
    named with the pid), table pickles (in its own temporary folder ``tmp``), unfinished outputs."""
    found = [p.name for p in tmp.iterdir() if p.name.startswith("ybcalc-")]
    if Path("/dev/shm").is_dir():
        found += [p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(f"ybcalc-partitions-{pid}-")]
    return found + [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.{pid}.")]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="process checks read /proc (Linux)")
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_stopped_run_leaves_no_process_and_no_file_behind(tmp_path, how):
    """After SIGTERM or SIGKILL of `ybcalc score` on 2M lines, two workers and the resource tracker
    stayed alive holding ~750 MB, beside a partition folder, a table pickle and a hidden .partial
    output. Now: stopped, it stops its workers and removes its files; killed, its workers die with
    it (the resource tracker then exits) and the next run removes its files."""
    import os
    import signal
    import subprocess
    import sys
    import time
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "run.py"
    script.write_text(STOPPABLE_RUN)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out.csv"
    out.write_text("an earlier complete run\n")
    env = dict(os.environ, TMPDIR=str(tmp), YBCALC_TEST_WAIT="1")
    argv = [sys.executable, str(script), "score", str(EXAMPLES / "bills.csv"), "-o", str(out), "-j", "2", "-q"]
    run = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(run.pid)
    helpers = []
    try:
        deadline = time.monotonic() + 120
        while not (any(n.startswith(f".{out.name}.") for n in os.listdir(tmp_path)) and len(parent.children()) >= 3):
            # under way: the first partition written, two workers and the resource tracker started
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "the run did not get under way"
            time.sleep(0.2)
        helpers = parent.children(recursive=True)
        assert len([p for p in helpers if "resource_tracker" in " ".join(p.cmdline())]) == 1
        assert len(leftovers(run.pid, tmp, out)) == 3
        run.send_signal(getattr(signal, how))
        status = run.wait(timeout=120)
        err = run.stderr.read()
        gone, alive = psutil.wait_procs(helpers, timeout=60)
        assert not alive, [p.cmdline() for p in alive]
        assert out.read_text() == "an earlier complete run\n"
        if how == "SIGKILL":
            assert status == -signal.SIGKILL
            assert leftovers(run.pid, tmp, out)              # nothing could remove them but the next run
            env.pop("YBCALC_TEST_WAIT")
            again = subprocess.run(argv + ["--allow-rejects"], env=env, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0, again.stderr
            assert out.read_text(encoding="utf-8-sig").startswith("mdtrt_id")
        else:
            assert status == (143 if how == "SIGTERM" else 130), err
            assert "Traceback" not in err and "stopped" in err
        assert leftovers(run.pid, tmp, out) == []
    finally:                                  # a failed check leaves nothing running either
        for p in helpers + [parent]:
            try:
                p.kill()
            except psutil.Error:
                pass
