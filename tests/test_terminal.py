"""Terminal output as a user sees it: piped into `head`, columns with Chinese text."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bills.csv"
COMMANDS = [
    ["explain", str(EXAMPLE), "--mdtrt-id", "BJ002-20251115"],
    ["tables", "show", "北京"],
    ["tables", "coverage"],
    ["tables", "list"],
    ["diff", str(EXAMPLE), "--a", "2024-01-01", "--b", "2025-06-01"],
    ["--help"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_piped_into_a_reader_that_left_ends_quietly(argv):
    """`ybcalc … | head -1`: the reader closes the pipe; the command stops without a traceback. The
    read end is closed before the command starts, so every write meets a closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "ybcalc", *argv], stdout=write_end, stderr=subprocess.PIPE,
                           text=True, timeout=300)
    finally:
        os.close(write_end)
    assert "Traceback" not in r.stderr and "Error" not in r.stderr, r.stderr
    assert r.returncode in (0, 141)


# ---- compare as a user runs it ------------------------------------------------------------------
def test_compare_without_matplotlib_says_which_install_brings_it(tmp_path, capsys, monkeypatch):
    from ybcalc.cli import main
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # as after a plain `pip install .`
    out = tmp_path / "x.png"
    assert main(["compare", str(EXAMPLE), "--mdtrt-id", "BJ002-20251115", "--out", str(out), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "ybcalc[chart]"' in err and "Traceback" not in err and not out.exists()


def test_compare_on_a_file_of_many_bills_asks_for_one_and_draws_nothing(tmp_path, capsys):
    from ybcalc.cli import main
    out = tmp_path / "x.png"
    assert main(["compare", str(EXAMPLE), "--out", str(out), "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "holds 39 bills: pick one with --mdtrt-id" in err and "BJ001-20250315" in err
    assert not out.exists()


def test_compare_draws_no_chart_when_nothing_settles(tmp_path, capsys):
    from ybcalc.cli import main
    out = tmp_path / "x.png"
    assert main(["compare", str(EXAMPLE), "--mdtrt-id", "SZ002-20250920", "--regions", "攀枝花,泸州",
                 "--out", str(out), "--lang", "zh"]) == 1
    assert "不画图" in capsys.readouterr().err and not out.exists()


def test_compare_chart_gives_every_series_its_own_colour():
    import pandas as pd

    from ybcalc.plotting import scenario_bars
    from ybcalc.scenarios import compare_scenarios
    bill = pd.read_csv(EXAMPLE, dtype=str).query("mdtrt_id == 'BJ002-20251115'")
    import ybcalc
    table = compare_scenarios(bill, ["北京", "攀枝花"], ["在职"], [3], "2025-11-15", ybcalc.load_tables())
    assert table["settled"].any() and not table["settled"].all()
    legend = scenario_bars(table).axes[0].get_legend()
    colours = [tuple(h.get_facecolor()) for h in legend.legend_handles]
    assert [t.get_text() for t in legend.get_texts()] == ["基金支付", "个人负担", "无法结算"]
    assert len(set(colours)) == len(colours)
    failed_only = scenario_bars(table[~table["settled"]]).axes[0].get_legend()
    assert [t.get_text() for t in failed_only.get_texts()] == ["无法结算"]
