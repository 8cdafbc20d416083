"""Refresh the command outputs of the READMEs' section "用自己的参数结算" (the worked example of a user's
own table): runs each `$ ybcalc …` command of the section in a temporary folder, as a Chinese user would
(YBCALC_LANG=zh), after typing the example notice's figures into the starter table, and writes each
output under its command. tests/test_user_tables.py checks the README against the same run.

    python tools/update_readme_user_tables.py
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from user_table_example import fill  # noqa: E402

from ybcalc.cli import main  # noqa: E402

SECTION = "## 用自己的参数结算"


def run(argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"ybcalc {' '.join(argv)} exited {code}:\n{err.getvalue()}")
    return (out.getvalue() + err.getvalue()).rstrip("\n")


def main_() -> None:
    for name in ("README.md", "README.zh.md"):
        refresh(ROOT / name)


def refresh(path: Path) -> None:
    readme = path.read_text(encoding="utf-8")
    head, rest = readme.split(SECTION, 1)
    section, sep, tail = rest.partition("\n## ")
    section, sub, subsections = section.partition("\n### ")   # the worked example comes before them
    tail = sub + subsections + sep + tail
    sep = ""
    os.environ["YBCALC_LANG"] = "zh"
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            (Path(tmp) / "攀枝花账单.csv").write_bytes((ROOT / "examples" / "攀枝花账单.csv").read_bytes())

            def refresh(m: re.Match) -> str:
                command = m.group(1)
                output = run(shlex.split(command)[2:])
                if shlex.split(command)[2:4] == ["tables", "new"]:
                    table = Path(tmp) / "ybcalc-tables" / "攀枝花-职工.yaml"
                    table.write_text(fill(table.read_text(encoding="utf-8")), encoding="utf-8")
                return f"```\n{command}\n{output}\n```"

            section = re.sub(r"```\n(\$ ybcalc [^\n]*)\n.*?\n```", refresh, section, flags=re.S)
        finally:
            os.chdir(cwd)
    path.write_text(head + SECTION + section + sep + tail, encoding="utf-8")


if __name__ == "__main__":
    main_()
