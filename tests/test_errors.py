"""Bad tables and bad bills give errors naming the file, the row or key path, and the value."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

import ybcalc
from conftest import FIXTURES, frame, make_bill
from ybcalc.policy.loader import load_book


@pytest.fixture(autouse=True)
def _library_in_english():
    """These tests read the library's messages in English (the library's default is Chinese)."""
    from ybcalc.i18n import language
    with language("en"):
        yield


@pytest.fixture
def tables_copy(tmp_path):
    dst = tmp_path / "tables"
    shutil.copytree(FIXTURES, dst)
    return dst


def edit(path: Path, old: str, new: str):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("old,new,key,words", [
    ("segments: [0, 20000, 50000]", "segments: [0, 50000, 20000]", "benefits.inpatient.ratio[0].segments", "increase"),
    ("value: [0.90, 0.92, 0.95]", "value: [0.90, 1.92, 0.95]", "benefits.inpatient.ratio[0].rates[0].value[1]", "0..1"),
    ("value: [0.90, 0.92, 0.95]", "value: [0.90, 0.92]", "benefits.inpatient.ratio[0].rates[0].value", "3 segment"),
    ("      - from: 2024-01-01\n        source: fx2", "      - from: 2019-01-01\n        source: fx2",
     "benefits.inpatient.deductible[1].from", "dates must increase"),
    ("        amount: 100000", "        amount: 500", "benefits.inpatient.cap[0].amount", "not above deductible"),
    ("        source: fx\n        basis: per_year", "        source: nosuch\n        basis: per_year",
     "benefits.outpatient.deductible[0].source", "unknown source"),
    ("{when: {psn_type: 退休}, subtract: 100", "{when: {psn_tipe: 退休}, subtract: 100",
     "benefits.inpatient.deductible[0].adjust[0].when.psn_tipe", "unknown condition"),
    ("basis: per_admission", "basis: per_visit", "benefits.inpatient.deductible[0].basis", "per_admission, per_year"),
])
def test_bad_table_names_file_key_and_value(tables_copy, old, new, key, words):
    path = tables_copy / "testland" / "employee.yaml"
    edit(path, old, new)
    book = load_book(tables_copy, strict=False)
    hits = [p for p in book.problems if p.path == key]
    assert hits, f"no problem at {key}: {[str(p) for p in book.problems]}"
    assert words in hits[0].message
    assert hits[0].file.endswith("testland/employee.yaml")
    with pytest.raises(ybcalc.TableError) as exc:
        load_book(tables_copy)
    assert key in str(exc.value) and "employee.yaml" in str(exc.value)


def test_value_without_source_is_rejected(tables_copy):
    edit(tables_copy / "testland" / "employee.yaml", "      - from: 2020-01-01\n        source: fx\n        basis: fund",
         "      - from: 2020-01-01\n        basis: fund")
    problems = load_book(tables_copy, strict=False).problems
    assert any(p.path == "benefits.inpatient.cap[0]" and "source" in p.message for p in problems)


def test_source_needs_address_and_grade(tables_copy):
    edit(tables_copy / "testland" / "employee.yaml", 'url: "file://tests/fixtures", date: 2024-01-01, grade: secondary',
         "date: 2024-01-01, grade: rumour")
    msgs = [str(p) for p in load_book(tables_copy, strict=False).problems]
    assert any("sources.fx2" in m and "url" in m for m in msgs)
    assert any("sources.fx2.grade" in m for m in msgs)


def test_cli_validate_lists_every_problem(tables_copy, capsys):
    from ybcalc.cli import main
    edit(tables_copy / "testland" / "employee.yaml", "segments: [0, 20000, 50000]", "segments: [10, 20000, 50000]")
    edit(tables_copy / "testland" / "resident.yaml", "rate: 0.10", "rate: 10")
    assert main(["--tables", str(tables_copy), "tables", "validate"]) == 1
    out = capsys.readouterr().out
    assert "testland/employee.yaml: benefits.inpatient.ratio[0].segments: the first segment must start at 0" in out
    assert "testland/resident.yaml: selfpay_prop[0].rate: ratio must be within 0..1, got 10" in out


# ---- bad bills ---------------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,column,words", [
    ("det_item_fee_sumamt", "abc", "det_item_fee_sumamt", "amount"),
    ("det_item_fee_sumamt", "", "det_item_fee_sumamt", "amount"),
    ("chrgitm_lv", "丁", "chrgitm_lv", "catalogue class"),
    ("med_type", "99", "med_type", "visit type"),
    ("setl_time", "2025-13-45", "setl_time", "date"),
    ("insuplc", "火星", "insuplc", "region"),
    ("hosp_lv", "特级", "hosp_lv", "hospital level"),
    ("selfpay_prop", "1.5", "selfpay_prop", "0..1"),
    ("det_item_fee_sumamt", "-50", "det_item_fee_sumamt", "refund"),
])
def test_bad_line_names_source_row_and_column(fbook, field, value, column, words):
    rows = make_bill("A", [(1, 100), (1, 200)]) + make_bill("B", [(1, 300)])
    rows[1][field] = value
    with pytest.raises(ybcalc.BillError) as exc:
        ybcalc.settle(pd.DataFrame(rows), fbook, source="bills.csv")
    msg = str(exc.value)
    assert f"bills.csv, row 2, column {column}" in msg and words in msg
    # the rest of bill A is rejected with it; bill B is untouched
    rej = exc.value.rejects
    assert set(rej["row"]) == {1, 2}
    assert "another line of this bill was rejected" in set(rej["reason"])


def test_refund_line_of_the_same_item_is_accepted(fbook):
    rows = make_bill("A", [{"chrgitm_lv": 1, "det_item_fee_sumamt": 500, "item_name": "CT"},
                           {"chrgitm_lv": 1, "det_item_fee_sumamt": -200, "item_name": "CT"}], med_type="11")
    r = ybcalc.settle(pd.DataFrame(rows), fbook)
    assert str(r["medfee_sumamt"]) == "300.00"


def test_bill_whose_lines_disagree_is_rejected_whole(fbook):
    rows = make_bill("A", [(1, 100), (1, 200)])
    rows[1]["hosp_lv"] = 2
    with pytest.raises(ybcalc.BillError) as exc:
        ybcalc.settle(pd.DataFrame(rows), fbook)
    assert "disagree on hosp_lv" in str(exc.value)


def test_missing_required_column(fbook):
    df = frame(make_bill("A", [(1, 100)])).drop(columns=["chrgitm_lv"])
    with pytest.raises(ybcalc.BillError, match="required column chrgitm_lv is missing"):
        ybcalc.settle(df, fbook)


def test_chinese_headers_and_words_are_understood(fbook):
    df = pd.DataFrame([{"就诊ID": "A", "人员编号": "m", "结算日期": "2023/5/1", "参保地": "999901", "险种": "职工",
                        "人员类别": "在职", "医疗类别": "普通住院", "医院等级": "三级甲等", "收费项目等级": "甲类",
                        "金额": "¥50,000.00"}])
    r = ybcalc.settle(df, fbook)
    assert str(r["hifp_pay"]) == "40650.00"


def test_unsourced_parameter_error_names_region_and_parameter():
    lines = pd.DataFrame([{"mdtrt_id": "x", "psn_no": "p", "setl_time": "2025-03-01", "insuplc": "攀枝花",
                           "insutype": "职工", "psn_type": "在职", "med_type": "21", "hosp_lv": 3, "chrgitm_lv": 1,
                           "det_item_fee_sumamt": 1000}])
    with pytest.raises(ybcalc.SettlementError) as exc:
        ybcalc.settle(lines)
    assert "攀枝花 职工 住院 起付线: missing" in str(exc.value)
