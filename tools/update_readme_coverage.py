"""Rewrite the coverage matrix in docs/coverage.md and its summary in README.md from the tables
(tests fail while either is stale)."""
from pathlib import Path

import ybcalc
from ybcalc.policy.coverage import coverage_markdown, coverage_summary_markdown

ROOT = Path(__file__).resolve().parents[1]


def replace_block(path: Path, name: str, body: str) -> None:
    """Replace the text between <!-- NAME:begin --> and <!-- NAME:end --> in one file."""
    text = path.read_text(encoding="utf-8")
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start = text.index(begin) + len(begin)
    stop = text.index(end, start)
    path.write_text(text[:start] + "\n" + body + "\n" + text[stop:], encoding="utf-8")


book = ybcalc.load_tables()
replace_block(ROOT / "docs" / "coverage.md", "coverage-matrix", coverage_markdown(book))
replace_block(ROOT / "README.md", "coverage-summary", coverage_summary_markdown(book))
print("docs/coverage.md matrix and README coverage summary updated")
