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
