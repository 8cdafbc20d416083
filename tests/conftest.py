from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from ybcalc.policy.loader import load_book

# Property tests draw the same examples on every run (CI must not pass or fail by chance); to search
# new ones, run `pytest --hypothesis-profile=explore`.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("repeatable")

FIXTURES = Path(__file__).parent / "fixtures" / "tables"


@pytest.fixture(scope="session")
def fbook():
    """Fixture tables: made-up numbers that exercise every mechanism (tests/fixtures/tables)."""
    return load_book(FIXTURES)


def make_bill(mdtrt_id, lines, *, psn_no="m1", date="2023-05-01", region="testland", insutype="职工",
              psn_type="在职", med_type="21", hosp_lv=3, **attrs) -> list[dict]:
    """Rows of one bill; ``lines`` are (chrgitm_lv, amount) or dicts of extra line fields."""
    rows = []
    for ln in lines:
        if isinstance(ln, tuple):
            ln = {"chrgitm_lv": ln[0], "det_item_fee_sumamt": ln[1]}
        row = {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "setl_time": date, "insuplc": region,
               "insutype": insutype, "psn_type": psn_type, "med_type": med_type, "hosp_lv": hosp_lv}
        row.update(attrs)
        row.update(ln)
        rows.append(row)
    return rows


def frame(*bills) -> pd.DataFrame:
    return pd.DataFrame([r for b in bills for r in b])


@pytest.fixture(autouse=True)
def _english_locale(request, monkeypatch):
    """Tests read English unless they ask for Chinese (``--lang zh``, ``i18n.language("zh")``), never the
    machine's language: a C locale and YBCALC_LANG=en (the library alone would write Chinese). The
    notebooks' kernels are left alone: a notebook shows the library's own Chinese."""
    if request.node.path.suffix == ".ipynb":
        return
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("YBCALC_LANG", "en")
