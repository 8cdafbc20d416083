"""Hand-worked example bills per region (tests/cases/<region>.yaml), each citing its source document.

A case gives the member, the bill, the lines and the amounts the cited document determines; the
``working`` field shows the arithmetic. ``expect: {error: text}`` asserts the bill cannot be settled
(a parameter it needs has no sourced value) and that the error names it. ``expect: {parameters: {...}}``
checks the values the bill resolves to (``ybcalc.parameters``: deductible, ratio_rates, cap, hifmi_* …),
which also works for a sourced value whose table is not yet complete enough to settle a bill.
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
    expect = dict(case["expect"])
    if "parameters" in expect:
        # values the document gives, checked even where another parameter of the bill is still missing
        got = ybcalc.parameters(lines, book).iloc[0]
        for key, want in expect.pop("parameters").items():
            assert _same(got[key], want), f"{key}: expected {want}, got {got[key]}\n{case.get('working', '')}"
        if not expect:
            return
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


def _same(got, want) -> bool:
    if isinstance(want, list):
        return got is not None and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if want is None or isinstance(want, str):
        return got == want
    return got is not None and got != "unlimited" and Decimal(str(got)) == Decimal(str(want))


def test_parameters_are_reported_even_when_another_one_is_missing(tmp_path):
    """ybcalc.parameters() gives each bill's resolved values and names what stops it from settling."""
    import shutil
    root = tmp_path / "tables"
    shutil.copytree(Path(__file__).parent / "fixtures" / "tables", root)
    table = root / "testland" / "resident.yaml"
    text = table.read_text(encoding="utf-8").replace(
        "          - {value: 1000}\n", "          - {value: 1000}\n      - from: 2024-01-01\n"
        "        missing: not yet found\n", 1)
    table.write_text(text, encoding="utf-8")
    book = ybcalc.load_tables(root)
    bill = {"mdtrt_id": "b", "psn_no": "m", "insuplc": "testland", "insutype": "390", "psn_type": "学生儿童",
            "med_type": "21", "hosp_lv": "2", "chrgitm_lv": "1", "det_item_fee_sumamt": "100"}
    before, after = (ybcalc.parameters(pd.DataFrame([{**bill, "setl_time": d}]), book).iloc[0]
                     for d in ("2023-06-01", "2024-06-01"))
    assert before["deductible"] == Decimal("500.00") and before["missing"] == ""
    assert after["deductible"] is None and "起付线: missing from 2024-01-01" in after["missing"]
    for p in (before, after):      # the sourced values still resolve
        assert p["ratio_segments"] == [Decimal("0.00"), Decimal("30000.00")]
        assert p["ratio_rates"] == [Decimal("0.8"), Decimal("0.85")]
        assert p["cap"] == Decimal("200000.00")


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
