"""One test per settlement rule, on the fixture tables (tests/fixtures/tables), worked by hand."""
from decimal import Decimal as D
from pathlib import Path

import pytest

import ybcalc
from conftest import frame, make_bill
from ybcalc.i18n import language


def settle(fbook, *bills, **kw):
    return ybcalc.settle(frame(*bills), fbook, **kw)


def y(result, mid, field):
    b = result.bills()
    return b.loc[b["mdtrt_id"] == mid, field].iat[0]


# ---- 1. exclusions ------------------------------------------------------------------------------
def test_self_pay_class_is_fully_self_paid(fbook):
    r = settle(fbook, make_bill("A", [(1, 1000), (3, 250)]))
    assert y(r, "A", "fulamt_ownpay_amt") == D("250.00")
    assert y(r, "A", "inscp_scp_amt") == D("1000.00")


def test_catalogue_exclusion_overrides_a_class_A_label(fbook):
    # 救护车费 labelled 甲类 is still 不予支付 (exclusions.yaml: transport)
    r = settle(fbook, make_bill("A", [(1, 5000), {"chrgitm_lv": 1, "det_item_fee_sumamt": 300, "item_name": "救护车费"}]))
    assert y(r, "A", "fulamt_ownpay_amt") == D("300.00")
    text = str(r.explain("A"))
    assert "不予支付" in text and "救护车费" in text and "交通费" in text


def test_exclusion_exception_for_emergency(fbook):
    albumin = {"chrgitm_lv": 2, "det_item_fee_sumamt": 1000, "item_name": "人血白蛋白"}
    inpatient = settle(fbook, make_bill("A", [albumin]))
    emergency = settle(fbook, make_bill("B", [albumin], med_type="13"))
    assert y(inpatient, "A", "fulamt_ownpay_amt") == D("1000.00")
    assert y(emergency, "B", "fulamt_ownpay_amt") == D("0.00")


def test_warn_level_exclusion_keeps_the_line_and_warns(fbook):
    r = settle(fbook, make_bill("A", [{"chrgitm_lv": 1, "det_item_fee_sumamt": 200, "item_name": "洗牙"}],
                                med_type="11", hosp_lv=0))
    assert y(r, "A", "fulamt_ownpay_amt") == D("0.00")
    assert "possibly excluded: dental cleaning" in y(r, "A", "warnings")
    with language("zh"):
        r = settle(fbook, make_bill("A", [{"chrgitm_lv": 1, "det_item_fee_sumamt": 200, "item_name": "洗牙"}],
                                    med_type="11", hosp_lv=0))
    assert "可能不予支付: 洗牙" in y(r, "A", "warnings")


# ---- 2. price limit ----------------------------------------------------------------------------
def test_part_above_price_limit_is_self_paid(fbook):
    r = settle(fbook, make_bill("A", [{"chrgitm_lv": 1, "det_item_fee_sumamt": 1200, "pric_uplmt_amt": 100, "cnt": 10}]))
    assert y(r, "A", "overlmt_selfpay") == D("200.00")
    assert y(r, "A", "inscp_scp_amt") == D("1000.00")


# ---- 3. 乙类先行自付 --------------------------------------------------------------------------------
def test_class_B_copayment_from_table_by_fee_category_and_line_override(fbook):
    r = settle(fbook, make_bill("A", [
        {"chrgitm_lv": 2, "det_item_fee_sumamt": 1000, "med_chrgitm_type": "09"},   # 西药 5%
        {"chrgitm_lv": 2, "det_item_fee_sumamt": 1000, "med_chrgitm_type": "04"},   # default 10%
        {"chrgitm_lv": 2, "det_item_fee_sumamt": 1000, "selfpay_prop": "20%"},      # line's own share
    ]))
    assert y(r, "A", "preselfpay_amt") == D("350.00")
    assert y(r, "A", "inscp_scp_amt") == D("2650.00")


def test_copayment_rounds_half_up_per_line(fbook):
    # 0.05 × 10.10 = 0.505 → 0.51
    r = settle(fbook, make_bill("A", [{"chrgitm_lv": 2, "det_item_fee_sumamt": "10.10", "med_chrgitm_type": "09"}]))
    assert y(r, "A", "preselfpay_amt") == D("0.51")


# ---- 4/5. deductible and segments ------------------------------------------------------------------
def test_inpatient_segments_and_second_admission_half_deductible(fbook):
    # 2023: 三级 起付 1000; 起付以上 49000: 20000×80% + 29000×85% = 16000 + 24650 = 40650
    # 2nd admission: 起付 1000×50% = 500; 9500 continues the year's segments at [49000, 58500]:
    # 1000×85% + 8500×90% = 850 + 7650 = 8500
    r = settle(fbook, make_bill("A", [(1, 50000)], date="2023-03-01"), make_bill("B", [(1, 10000)], date="2023-07-01"))
    assert y(r, "A", "act_pay_dedc") == D("1000.00")
    assert y(r, "A", "hifp_pay") == D("40650.00")
    assert y(r, "B", "act_pay_dedc") == D("500.00")
    assert y(r, "B", "hifp_pay") == D("8500.00")


def test_new_year_restarts_admissions_and_segments(fbook):
    r = settle(fbook, make_bill("A", [(1, 50000)], date="2023-12-30"), make_bill("B", [(1, 10000)], date="2024-01-02"))
    # 2024 entry: 三级 起付 800 (first admission of 2024); 9200 × 80% = 7360
    assert y(r, "B", "act_pay_dedc") == D("800.00")
    assert y(r, "B", "hifp_pay") == D("7360.00")
    assert "secondary source" in y(r, "B", "notes")      # the 2024 entry cites a secondary source: a note
    assert "secondary source" not in y(r, "A", "notes") and "secondary source" not in y(r, "B", "warnings")


def test_retiree_adjustments_deductible_minus_100_and_plus_5_points(fbook):
    # 退休: 起付 1000−100 = 900; rates 85/90/95%: 20000×85% + 29100×90% = 17000 + 26190 = 43190
    r = settle(fbook, make_bill("A", [(1, 50000)], psn_type="退休"))
    assert y(r, "A", "act_pay_dedc") == D("900.00")
    assert y(r, "A", "hifp_pay") == D("43190.00")
    ex = r.explain("A").frame
    assert ex["规则与参数"].str.contains("减去（元） 100").any()


def test_yearly_deductible_accumulates_across_visits(fbook):
    # outpatient: yearly 1000; 二级 60%. Bills 600, 800, 300.
    bills = [make_bill(m, [(1, amt)], date=d, med_type="11", hosp_lv=2)
             for m, amt, d in (("A", 600, "2023-01-05"), ("B", 800, "2023-02-05"), ("C", 300, "2023-03-05"))]
    r = settle(fbook, *bills)
    assert [y(r, m, "act_pay_dedc") for m in "ABC"] == [D("600.00"), D("400.00"), D("0.00")]
    assert [y(r, m, "hifp_pay") for m in "ABC"] == [D("0.00"), D("240.00"), D("180.00")]


def test_yearly_deductible_tops_up_to_the_highest_level(fbook):
    # resident inpatient: yearly deductible at the highest level reached: 一级 200, then 三级 1000
    bills = [make_bill("A", [(1, 100)], date="2023-01-05", hosp_lv=1, insutype="居民", psn_type="成年"),
             make_bill("B", [(1, 2000)], date="2023-02-05", hosp_lv=3, insutype="居民", psn_type="成年"),
             make_bill("C", [(1, 500)], date="2023-03-05", hosp_lv=1, insutype="居民", psn_type="成年")]
    r = settle(fbook, *bills)
    assert [y(r, m, "act_pay_dedc") for m in "ABC"] == [D("100.00"), D("900.00"), D("0.00")]
    # B: cost axis includes the deductible: [900, 2000] × 70% = 770
    assert y(r, "B", "hifp_pay") == D("770.00")


def test_segments_on_fund_paid(fbook):
    # resident outpatient: fund-paid segments 0–500 at 50%, then 30%: cost 1000 reaches 500 paid.
    # 起付 100; 2900 above: 1000×50% + 1900×30% = 1070
    r = settle(fbook, make_bill("A", [(1, 3000)], med_type="11", hosp_lv=1, insutype="居民", psn_type="成年"))
    assert y(r, "A", "hifp_pay") == D("1070.00")


# ---- 6. caps and 7. 大额/大病 ------------------------------------------------------------------------
def test_fund_cap_and_large_expense_supplement(fbook):
    # 200000 at 三级: uncapped 16000 + 25500 + 134100 = 175600 → cap 100000.
    # cost covered by the capped fund: 50000 + (100000 − 41500)/0.9 = 115000; above cap 84000.
    # 大额 (hifob): 84000 × 85% = 71400. Patient: 1000 + 15000 + 84000 − 71400 = 28600
    r = settle(fbook, make_bill("A", [(1, 200000)]))
    assert y(r, "A", "hifp_pay") == D("100000.00")
    assert y(r, "A", "hifob_pay") == D("71400.00")
    assert y(r, "A", "psn_part_amt") == D("28600.00")


def test_cap_is_shared_across_the_years_bills(fbook):
    a = make_bill("A", [(1, 100000)], date="2023-02-01")
    b = make_bill("B", [(1, 100000)], date="2023-06-01")
    r = settle(fbook, a, b)
    paid = y(r, "A", "hifp_pay") + y(r, "B", "hifp_pay")
    assert paid == D("100000.00")
    alone = settle(fbook, b)
    assert y(alone, "B", "hifp_pay") > y(r, "B", "hifp_pay")


def test_cost_cap_resident_critical_illness_and_low_income_terms(fbook):
    # resident 三级, 250000 eligible: 起付 1000; cost above 200000 not paid by the fund (50000);
    # fund: (30000−1000)×70% + (200000−30000)×75% = 20300 + 127500 = 147800; coinsurance 51200.
    # 大病 base = 1000 + 51200 + 50000 = 102200. Ordinary: threshold 15000 → 87200:
    #   50000×60% + 37200×70% = 30000 + 26040 = 56040
    # 低保: threshold 7500 → 94700: 50000×65% + 44700×75% = 32500 + 33525 = 66025;
    #   医疗救助: (102200 − 66025 − 1000) × 70% = 24622.50
    common = dict(hosp_lv=3, insutype="居民", psn_type="成年")
    r = settle(fbook, make_bill("A", [(1, 250000)], psn_no="p1", **common),
               make_bill("B", [(1, 250000)], psn_no="p2", psn_idet_type="低保", **common))
    assert y(r, "A", "hifp_pay") == D("147800.00")
    assert y(r, "A", "hifmi_pay") == D("56040.00")
    assert y(r, "A", "maf_pay") == D("0.00")
    assert y(r, "B", "hifmi_pay") == D("66025.00")
    assert y(r, "B", "maf_pay") == D("24622.50")


def test_critical_illness_cap(fbook):
    # hifob cap 300000 (fixture): 2,000,000 of cost → above cap is huge; hifob stops at 300000
    r = settle(fbook, make_bill("A", [(1, 2000000)]))
    assert y(r, "A", "hifob_pay") == D("300000.00")


# ---- 5. out-of-area ----------------------------------------------------------------------------
@pytest.mark.parametrize("fil_type,med_type,expected", [
    ("long_term", "21", "40650.00"),        # settles like local care
    ("referral", "21", "38200.00"),         # −5 points: 20000×75% + 29000×80% = 15000 + 23200
    ("temporary", "21", "35750.00"),        # −10 points: 14000 + 21750
    ("未备案", "21", "30850.00"),            # −20 points: 12000 + 18850
])
def test_out_of_area_adjustments(fbook, fil_type, med_type, expected):
    r = settle(fbook, make_bill("A", [(1, 50000)], mdtrt_area="testcity", fil_type=fil_type, med_type=med_type))
    assert y(r, "A", "hifp_pay") == D(expected)


def test_unfiled_emergency_counts_as_emergency(fbook):
    # emergency outpatient away, not filed: treated as emergency (−5), not unfiled (−20).
    # outpatient: 起付 1000, 4000 × (60% − 5%) = 2200
    r = settle(fbook, make_bill("A", [(1, 5000)], med_type="13", hosp_lv=2, mdtrt_area="testcity"))
    assert y(r, "A", "hifp_pay") == D("2200.00")


def test_out_of_area_reduction_excluded_from_critical_illness_base(fbook):
    # resident unfiled: deductible ×1.5 = 1500; rates −20 points → 50%/55%
    common = dict(hosp_lv=3, insutype="居民", psn_type="成年", mdtrt_area="testcity", fil_type="unfiled")
    r = settle(fbook, make_bill("A", [(1, 100000)], **common))
    assert y(r, "A", "act_pay_dedc") == D("1500.00")
    # fund: (30000−1500)×50% + 70000×55% = 14250 + 38500 = 52750
    assert y(r, "A", "hifp_pay") == D("52750.00")
    # reduction = 28500×20% + 70000×20% = 19700; base = 1500 + 45750 − 19700 = 27550
    # 大病: (27550 − 15000) × 60% = 7530
    assert y(r, "A", "hifmi_pay") == D("7530.00")


# ---- 9. personal account -----------------------------------------------------------------------
def test_personal_account_pays_up_to_the_balance_in_date_order(fbook):
    a = make_bill("A", [(1, 600), (3, 100)], date="2023-01-05", med_type="11", hosp_lv=2)
    b = make_bill("B", [(1, 800)], date="2023-02-05", med_type="11", hosp_lv=2)
    r = settle(fbook, b, a, accounts={"m1": 1000})
    # A: personal 700 (600 deductible + 100 self-pay) all from the account
    assert y(r, "A", "acct_pay") == D("700.00")
    assert y(r, "A", "psn_cash_pay") == D("0.00")
    # B: personal 800 − 240 = 560; account has 300 left
    assert y(r, "B", "acct_pay") == D("300.00")
    assert y(r, "B", "psn_cash_pay") == D("260.00")


def test_residents_have_no_account_payments(fbook):
    r = settle(fbook, make_bill("A", [(1, 600)], insutype="居民", psn_type="成年", med_type="11", hosp_lv=1),
               accounts={"m1": 1000})
    assert y(r, "A", "acct_pay") == D("0.00")


# ---- provincial baseline ------------------------------------------------------------------------
def test_city_extends_province_and_overrides_one_parameter(fbook):
    r = settle(fbook, make_bill("A", [(1, 10000)], region="测试县", date="2022-01-01"))
    # city deductible 400; province ratio 80%: 9600 × 80% = 7680
    assert y(r, "A", "act_pay_dedc") == D("400.00")
    assert y(r, "A", "hifp_pay") == D("7680.00")
    t = fbook.tables[("testcity", "employee")]
    assert t.benefits["inpatient"].params["ratio"].entries[0].source.id == "prov"


def test_date_before_any_value_fails_naming_the_parameter(fbook):
    with pytest.raises(ybcalc.SettlementError) as exc:
        settle(fbook, make_bill("A", [(1, 10000)], region="测试县", date="2020-06-01"))
    msg = str(exc.value)
    assert "测试县" in msg and "起付线" in msg and "2021-01-01" in msg


def test_on_date_overrides_each_bills_date(fbook):
    bill = make_bill("A", [(1, 10000)], date="2024-03-01")
    own = settle(fbook, bill)
    pinned = settle(fbook, bill, on="2023-06-01")
    assert y(own, "A", "act_pay_dedc") == D("800.00")
    assert y(pinned, "A", "act_pay_dedc") == D("1000.00")


# ---- balance -----------------------------------------------------------------------------------
def test_every_settlement_balances_to_the_fen(fbook):
    r = settle(fbook, make_bill("A", [(1, "12345.67"), (2, "2345.01"), (3, "99.99"),
                                      {"chrgitm_lv": 1, "det_item_fee_sumamt": "333.33", "item_name": "交通费"}]),
               accounts={"m1": 5000})
    b = r.raw.iloc[0]
    assert b.medfee_sumamt == b.fulamt_ownpay_amt + b.overlmt_selfpay + b.preselfpay_amt + b.inscp_scp_amt
    assert b.medfee_sumamt == b.fund_pay_sumamt + b.psn_part_amt
    assert b.fund_pay_sumamt == b.hifp_pay + b.hifmi_pay + b.hifob_pay + b.maf_pay
    assert b.psn_part_amt == b.acct_pay + b.psn_cash_pay


# ---- 异地 terms stated as amounts, and depending on where care happens ------------------------------
@pytest.mark.parametrize("area,fil_type,expected_deductible,expected_fund", [
    ("testland", "unfiled", "600.00", "8460.00"),     # a listed neighbour: local terms, (10000−600)×90%
    ("testprov", "referral", "1500.00", "6460.00"),   # 转外: 起付 1500, 76% → (10000−1500)×76%
    ("testprov", "temporary", "600.00", "4700.00"),   # 临时外出 to another province: 50% → 9400×50%
    ("testprov", "emergency", "600.00", "7614.00"),   # 急诊抢救: local terms × 90% → 9400×(90%×90%)
])
def test_out_of_area_absolute_terms_by_destination(fbook, area, fil_type, expected_deductible, expected_fund):
    r = settle(fbook, make_bill("A", [(1, 10000)], region="testnorth", mdtrt_area=area, fil_type=fil_type))
    assert y(r, "A", "act_pay_dedc") == D(expected_deductible)
    assert y(r, "A", "hifp_pay") == D(expected_fund)


def test_out_of_area_term_not_in_the_table_fails_naming_it(fbook):
    with pytest.raises(ybcalc.SettlementError) as exc:
        settle(fbook, make_bill("A", [(1, 10000)], region="testnorth", mdtrt_area="testprov", fil_type="unfiled"))
    assert "异地就医调整" in str(exc.value) and "out_of_area[0].rate" in str(exc.value)


# ---- 缴费档次 (contribution tier) ------------------------------------------------------------------
def test_contribution_tier_selects_rules_and_an_unlisted_tier_warns(tmp_path):
    """Rules may name `contrib_tier`; a table listing `contrib_tiers` warns for a bill without one."""
    import shutil
    root = tmp_path / "tables"
    shutil.copytree(Path(__file__).parent / "fixtures" / "tables", root)
    table = root / "testnorth" / "employee.yaml"
    text = table.read_text(encoding="utf-8")
    text = text.replace("psn_types: [在职, 退休]\n", "psn_types: [在职, 退休]\ncontrib_tiers: [一档, 二档]\n", 1)
    text = text.replace("      - {from: 2020-01-01, source: fx, rates: [0.90]}",
                        "      - from: 2020-01-01\n        source: fx\n        rates:\n"
                        "          - {when: {contrib_tier: 二档}, value: [0.80]}\n          - {value: [0.90]}", 1)
    table.write_text(text, encoding="utf-8")
    book = ybcalc.load_tables(root)
    bills = [make_bill(m, [(1, 10000)], psn_no=m, region="testnorth", contrib_tier=t)
             for m, t in (("A", "2"), ("B", "一档"), ("C", ""))]
    r = ybcalc.settle(frame(*bills), book)
    assert y(r, "A", "hifp_pay") == D("7520.00")        # 二档: (10000 − 600) × 80%
    assert y(r, "B", "hifp_pay") == D("8460.00")        # 一档: × 90%
    assert y(r, "C", "hifp_pay") == D("8460.00")        # no tier: the rules without one, and a warning
    assert "contribution tier (not given)" in y(r, "C", "warnings") and "contribution tier" not in y(r, "B", "warnings")
