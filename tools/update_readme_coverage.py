"""Rewrite the coverage matrix in README.md from the tables (tests fail while it is stale)."""
from pathlib import Path

import ybcalc
from ybcalc.policy.coverage import LEGEND, coverage_markdown

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text(encoding="utf-8")
start = text.index("| 地区 | 险种 | 就诊 |")
end = text.index(LEGEND, start) + len(LEGEND)
readme.write_text(text[:start] + coverage_markdown(ybcalc.load_tables()) + text[end:], encoding="utf-8")
print("README coverage matrix updated")
