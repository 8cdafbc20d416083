"""ybcalc.scenarios: sample bills, scenario tables, out-of-pocket curves, parameter tables (no drawing)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ybcalc
from ybcalc import scenarios as S

DATE = "2025-06-01"


@pytest.fixture(scope="module")
def book():
    return ybcalc.load_tables()


@pytest.fixture(scope="module")
def bill():
    return S.sample_bill(50000, class_b_share=0.3, self_pay_share=0.05, excluded=0.01)


# ---- sample bills ------------------------------------------------------------------------------
def test_sample_bill_splits_the_total_exactly_by_class():
    lines = S.sample_bill(12345.67, class_b_share=0.3, self_pay_share=0.05, excluded=0.02)
    amounts = {(r["chrgitm_lv"], r["item_name"]): r["det_item_fee_sumamt"] for r in lines}
    fen = sum(round(float(v) * 100) for v in amounts.values())
    assert fen == 1234567
    assert amounts[(2, "乙类药品及诊疗项目")] == f"{round(1234567 * 0.3) / 100:.2f}"
    assert amounts[(3, "丙类（自费）药品")] == f"{round(1234567 * 0.05) / 100:.2f}"
    assert (1, "陪护费") in amounts
    b_lines = [r for r in lines if r["chrgitm_lv"] == 2]
    assert [r["selfpay_prop"] for r in b_lines] == [0.10]          # 乙类 carries its own co-payment share
    assert all("selfpay_prop" not in r for r in lines if r["chrgitm_lv"] != 2)
    assert {r["mdtrt_id"] for r in lines} == {"S1"}


def test_sample_bill_member_fields_and_bad_shares():
    lines = S.sample_bill(1000, region="杭州", scheme="居民", psn_type="城乡一档", age=30, med_type="门诊", hosp_lv=2,
                          date="2024-03-05", mdtrt_id="X")
    r = lines[0]
    assert (r["insuplc"], r["insutype"], r["psn_type"], r["age"], r["med_type"], r["hosp_lv"], r["setl_time"]) == \
        ("杭州", "居民", "城乡一档", 30, "门诊", 2, "2024-03-05")
    assert len(S.sample_bill(1000, 0, 0)) == 1                   # all 甲类: one line
    with pytest.raises(ValueError):
        S.sample_bill(1000, class_b_share=0.8, self_pay_share=0.3)
    with pytest.raises(ValueError):
        S.bill_from_amounts(-5)


def test_sample_bill_settles_and_the_excluded_item_is_self_paid(book, bill):
    st = ybcalc.settle(bill, book)
    r = st.raw.iloc[0]
    assert r["medfee_sumamt"] == 5_000_000
    # 丙类 2,500 + 陪护费 500 (labelled 甲类, moved by the 不予支付 catalogue)
    assert r["fulamt_ownpay_amt"] == 250_000 + 50_000
    assert r["preselfpay_amt"] == round(1_500_000 * 0.10)          # 乙类 × selfpay_prop


# ---- compare_scenarios ---------------------------------------------------------------------------
def test_compare_keeps_the_order_asked_and_balances(book, bill):
    t = S.compare_scenarios(bill, ["北京", "上海", "杭州"], ["在职", "退休"], [2, 3], DATE, book)
    assert list(zip(t["region"], t["status"], t["hosp_lv"])) == [
        (r, s, lv) for r in ("北京", "上海", "杭州") for s in ("在职", "退休") for lv in (2, 3)]
    assert t["settled"].all()
    assert (t["medfee_sumamt"] == 50000).all()
    np.testing.assert_allclose(t["fund_pay_sumamt"] + t["psn_part_amt"], t["medfee_sumamt"], atol=0.005)
    np.testing.assert_allclose(t["fund_share"] + t["patient_share"], 1, atol=2e-4)
    np.testing.assert_allclose(t["acct_pay"] + t["psn_cash_pay"], t["psn_part_amt"], atol=0.005)
    assert (t["reason"] == "").all()


def test_compare_equals_settling_each_scenario_alone(book, bill):
    t = S.compare_scenarios(bill, ["北京", "深圳"], ["退休"], [3], DATE, book)
    for r in t.itertuples():
        one = S.sample_bill(50000, 0.3, 0.05, 0.01, region=r.region, scheme="职工", psn_type="退休", age=65,
                            hosp_lv=3, date=DATE)
        st = ybcalc.settle(one, book)
        assert float(st["psn_part_amt"]) == pytest.approx(r.psn_part_amt, abs=0.001)
        assert float(st["hifp_pay"]) == pytest.approx(r.hifp_pay, abs=0.001)


def test_retired_pay_less_than_employed_in_beijing(book, bill):
    t = S.compare_scenarios(bill, ["北京"], ["在职", "退休"], [3], DATE, book).set_index("status")
    assert t.loc["退休", "psn_part_amt"] < t.loc["在职", "psn_part_amt"]
    assert t.loc["退休", "fund_share"] > t.loc["在职", "fund_share"]


def test_scenarios_that_cannot_settle_are_listed_with_the_reason(book, bill):
    t = S.compare_scenarios(bill, ["北京", "莆田", "河北", "Atlantis"], ["在职", "居民"], [3], DATE, book)
    assert len(t) == 8                                            # nothing dropped
    by = t.set_index(["region", "status"])
    assert by.loc[("北京", "在职"), "settled"]
    assert not by.loc[("莆田", "在职"), "settled"]
    assert "起付线" in by.loc[("莆田", "在职"), "reason"] and "missing" in by.loc[("莆田", "在职"), "reason"]
    assert np.isnan(by.loc[("莆田", "在职"), "psn_part_amt"])
    assert by.loc[("莆田", "居民"), "settled"]                    # 莆田 居民 住院 2024+ is sourced
    assert "no table for resident insurance" in by.loc[("河北", "居民"), "reason"]
    assert "unknown region" in by.loc[("Atlantis", "在职"), "reason"]


def test_resident_status_uses_the_tables_adult_group(book, bill):
    t = S.compare_scenarios(bill, ["北京", "上海", "杭州", "深圳"], ["居民"], [3], DATE, book)
    assert list(t["scheme"]) == ["居民"] * 4
    assert list(t["psn_type"]) == ["劳动年龄内居民", "成年", "城乡一档", "居民"]
    assert t["settled"].all()


def test_hospital_level_changes_the_deductible_as_the_table_says(book, bill):
    t = S.compare_scenarios(bill, ["杭州"], ["在职"], [1, 2, 3], DATE, book).set_index("hosp_lv")
    p = S.policy_parameter_table(book, "inpatient.deductible", 3, [2025], regions=["杭州"], scheme="职工")
    p2 = S.policy_parameter_table(book, "inpatient.deductible", 2, [2025], regions=["杭州"], scheme="职工")
    assert t.loc[3, "act_pay_dedc"] == p["value_num"].iat[0]
    assert t.loc[2, "act_pay_dedc"] == p2["value_num"].iat[0]
    assert t.loc[3, "act_pay_dedc"] != t.loc[2, "act_pay_dedc"]


def test_compare_accepts_chinese_headers_and_replaces_member_columns(book):
    lines = pd.DataFrame({"就诊ID": ["A", "A"], "参保地": ["上海", "上海"], "人员类别": ["在职", "在职"],
                          "医疗类别": ["住院", "住院"], "收费项目等级": ["甲", "乙"], "自付比例": ["", "0.1"],
                          "金额": ["8000", "2000"]})
    t = S.compare_scenarios(lines, ["北京"], ["退休"], [3], DATE, book)
    assert t["settled"].all() and t["region"].iat[0] == "北京" and t["psn_type"].iat[0] == "退休"
    assert t["medfee_sumamt"].iat[0] == 10000


def test_display_table_is_rounded_text(book, bill):
    t = S.compare_scenarios(bill, ["北京", "莆田"], ["在职"], [3], DATE, book)
    d = S.display_table(t, reason_width=20)
    assert list(d.columns)[:5] == ["地区", "险种", "人员", "人员类别", "医院等级"]
    assert d["医院等级"].iat[0] == "三级"
    assert d["医疗费总额"].iat[0] == "50,000.00" and d["医疗费总额"].iat[1] == ""
    assert d["个人占比"].iat[0].endswith("%")
    assert len(d["无法结算原因"].iat[1]) <= 20


# ---- out-of-pocket curves -----------------------------------------------------------------------
def test_oop_curve_is_one_batch_call_and_monotone(book, monkeypatch):
    calls = []
    real = S._settle

    def counting(lines, bk, accounts=None):
        calls.append(lines["mdtrt_id"].nunique())
        return real(lines, bk, accounts)

    monkeypatch.setattr(S, "_settle", counting)
    totals = np.arange(0, 500001, 10000, dtype=float)
    c = S.oop_curve("北京", "职工", "在职", 3, totals, DATE, book)
    assert calls == [len(totals)]                                 # one call, one bill (member) per point
    assert list(c["total"]) == list(totals)
    assert c["settled"].all()
    np.testing.assert_allclose(c["medfee_sumamt"], totals)
    assert (np.diff(c["psn_part_amt"]) >= -0.005).all()           # more cost never lowers what the patient pays
    assert c["psn_part_amt"].iat[0] == 0


def test_oop_curve_grid_settles_all_curves_together(book, monkeypatch):
    calls = []
    real = S._settle
    monkeypatch.setattr(S, "_settle", lambda lines, bk, accounts=None: calls.append(1) or real(lines, bk, accounts))
    totals = [10000.0, 100000.0, 400000.0]
    c = S.oop_curve_grid(["北京", "上海", "广州"], ["在职", "退休", "居民"], 3, totals, DATE, book)
    assert len(calls) == 1
    assert len(c) == 9 * len(totals)
    g = c.set_index(["region", "status", "total"])
    assert g.loc[("北京", "退休", 100000.0), "psn_part_amt"] < g.loc[("北京", "在职", 100000.0), "psn_part_amt"]
    assert not g.loc[("广州", "居民", 10000.0), "settled"]         # 广州 居民 住院: no sourced deductible
    assert "起付线" in g.loc[("广州", "居民", 10000.0), "reason"]
    s = S.curve_summary(c, at=(10000, 100000))
    assert list(s.columns[-3:]) == ["1万", "10万", "reason"] and len(s) == 9


def test_oop_curve_matches_compare_for_the_same_bill(book):
    c = S.oop_curve("上海", "职工", "退休", 3, [50000.0], DATE, book)
    t = S.compare_scenarios(S.sample_bill(50000), ["上海"], ["退休"], [3], DATE, book)
    assert c["psn_part_amt"].iat[0] == pytest.approx(t["psn_part_amt"].iat[0])


# ---- batch report -------------------------------------------------------------------------------
def test_bill_shares_and_summary_add_up(book):
    from ybcalc.batch import read_bills, score_frame
    from pathlib import Path
    df, rows = read_bills(Path(__file__).parents[1] / "examples" / "bills.csv")
    res = score_frame(df, book, row_numbers=rows)
    bills = S.bill_shares(res.settlement)
    assert len(bills) == len(res.settlement)
    tot = res.settlement.totals()
    assert bills["total"].sum() == pytest.approx(float(tot["medfee_sumamt"]))
    assert bills["patient"].sum() == pytest.approx(float(tot["psn_part_amt"]))
    assert bills["patient_share"].between(0, 1).all()
    summ = S.share_summary(bills, ("region", "scheme"))
    assert summ["bills"].sum() == len(bills)
    assert summ["patient"].sum() == pytest.approx(bills["patient"].sum())
    assert S.reject_summary(res.rejects).empty


def test_reject_summary_one_row_per_bill():
    rej = pd.DataFrame({"row": [5, 3, 4], "mdtrt_id": ["B", "A", "A"], "column": ["x", "amount", "(policy)"],
                        "value": ["", "", ""], "reason": ["r2", "bad amount", "r1"]})
    out = S.reject_summary(rej)
    assert list(out["mdtrt_id"]) == ["A", "B"] and out["rows"].iat[0] == "3,4"


# ---- policy parameter table ---------------------------------------------------------------------
def test_parameter_table_has_every_region_year_with_source_and_grade(book):
    t = S.policy_parameter_table(book, "inpatient.deductible", 3, (2023, 2024, 2025))
    keys = set(zip(t["region"], t["scheme"]))
    assert len(keys) == len(book.tables)
    for (rid, sch), _ in book.tables.items():
        k = (book.region_label(rid), {"employee": "职工", "resident": "居民"}[sch])
        assert set(t.loc[(t["region"] == k[0]) & (t["scheme"] == k[1]), "year"]) == {2023, 2024, 2025}
    ok = t[t["status"].isin(["sourced", "secondary"])]
    assert len(ok) and (ok["source"] != "").all() and (ok["grade"] != "").all() and (ok["url"] != "").all()
    assert set(ok.loc[ok["status"] == "secondary", "grade"]) == {"二手"}
    miss = t[t["status"] == "missing"]
    assert (miss["value"] == "missing").all() and miss["value_num"].isna().all() and (miss["note"] != "").all()
    putian = t[(t["region"] == "莆田") & (t["scheme"] == "职工")]
    assert (putian["status"] == "missing").all()


def test_parameter_table_mid_year_change_and_levels(book):
    cap = S.policy_parameter_table(book, "inpatient.cap", 3, [2025], regions=["上海"], scheme="职工")
    assert list(cap["from"]) == ["2025-01-01", "2025-07-01"]      # a rule starting mid-year: two rows
    assert cap["value_num"].iat[0] != cap["value_num"].iat[1]    # 上海's 医保年度 cap changes on 07-01
    hz = {lv: S.policy_parameter_table(book, "inpatient.deductible", lv, [2025], regions=["杭州"], scheme="职工")
          for lv in (2, 3)}
    assert hz[2]["value_num"].iat[0] != hz[3]["value_num"].iat[0]
    ratio = S.policy_parameter_table(book, "inpatient.ratio", 3, [2025], regions=["北京"], scheme="职工",
                                     psn_type="退休")
    assert "share_factor" in ratio["rule"].iat[0]                # the 退休 adjustment is applied and shown
    assert 0 < ratio["value_num"].iat[0] <= 1
    with pytest.raises(ValueError):
        S.policy_parameter_table(book, "inpatient.nonsense")


def test_parameter_matrix_is_region_by_year(book):
    t = S.policy_parameter_table(book, "inpatient.deductible", 3, (2024, 2025), regions=["北京", "莆田"])
    m = S.parameter_matrix(t)
    assert list(m.columns) == ["地区", "险种", "2024", "2025"]
    assert m.set_index(["地区", "险种"]).loc[("莆田", "职工"), "2025"] == "✖ missing"


def test_explanation_text_hides_the_table_hash(book, bill):
    ex = ybcalc.settle(bill, book).explain()
    assert "政策版本" in str(ex)
    assert "政策版本" not in S.explanation_text(ex)
