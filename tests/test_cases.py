"""Hand-worked example bills per region (tests/cases/<region>.yaml), each citing its source document.

A case gives the member, the bill, the lines and the amounts the cited document determines; the
``working`` field shows the arithmetic. ``expect: {error: text}`` asserts the bill cannot be settled
(a parameter it needs has no sourced value) and that the error names it.
"""
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

import ybcalc

CASES_DIR = Path(__file__).parent / "cases"


def load_cases():
    out = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for i, case in enumerate(yaml.safe_load(path.read_text(encoding="utf-8")) or []):
            out.append(pytest.param(case, id=f"{path.stem}[{i}] {case.get('name', '')}"))
    return out


def case_lines(case) -> pd.DataFrame:
    rows = []
    for j, ln in enumerate(case["lines"]):
        row = {"mdtrt_id": case.get("mdtrt_id", "case"), "psn_no": "member", "setl_time": str(case["date"]),
               "insuplc": case["region"], "insutype": case["insutype"],
               "chrgitm_lv": ln["chrgitm_lv"], "det_item_fee_sumamt": str(ln["amount"])}
        row.update(case.get("member") or {})
        row.update(case.get("bill") or {})
        row.update({k: v for k, v in ln.items() if k not in ("chrgitm_lv", "amount")})
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("case", load_cases())
def test_region_case(case):
    book = ybcalc.load_tables()
    table = book.table(case["region"], "employee" if case["insutype"] in ("职工", "310") else "resident")
    assert case["cites"] in table.sources, f"case cites unknown source {case['cites']!r}"
    lines = case_lines(case)
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(ybcalc.SettlementError) as exc:
            ybcalc.settle(lines, book)
        assert expect["error"] in str(exc.value)
        return
    result = ybcalc.settle(lines, book, accounts=case.get("account"))
    for field, value in expect.items():
        got = result[field]
        assert got == Decimal(str(value)).quantize(Decimal("0.01")), (
            f"{field}: expected {value}, got {got}\n{case.get('working', '')}\n{result.explain()}")


def test_every_covered_region_scheme_and_visit_type_has_a_hand_worked_case():
    from ybcalc import codes
    from ybcalc.policy.coverage import VISITS, coverage
    cov = coverage(ybcalc.load_tables())
    covered = set(cov.loc[cov["status"] != "missing", ["region", "scheme", "visit"]].itertuples(index=False, name=None))
    have = set()
    for param in load_cases():
        case = param.values[0]
        if "error" in case["expect"]:
            continue
        mt = codes.parse_med_type(str(case["bill"]["med_type"]))
        have.add((case["region"], codes.parse_insutype(case["insutype"]), VISITS.get(mt, "普通门诊")))
    assert covered <= have, f"no hand-worked case for {sorted(covered - have)}"
