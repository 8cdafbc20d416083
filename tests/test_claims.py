"""Direct settlement vs manual claim (issue 17): 结算方式 / 申报日期 on bills, each region's filing deadline
(manual_claim_deadline), a late claim gets nothing from the funds, and the bill says why."""
from pathlib import Path

import pandas as pd
import pytest

import ybcalc
from ybcalc import i18n
from ybcalc.cli import main
from ybcalc.policy.loader import load_book
from ybcalc.policy.schema import TableError

# 深圳: 「参保人应在医疗费用发生之日起12个月内办理，逾期不予受理」(深圳市医疗保障局 问答, 2020-11-23)
SZ = dict(insuplc="深圳", insutype="职工", psn_type="在职", contrib_tier="一档", med_type="21", hosp_lv=3,
          chrgitm_lv="甲", det_item_fee_sumamt="20000")
PARTS = ["hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay"]


def line(mid, day="2025-01-10", **kw):
    return {"mdtrt_id": mid, "psn_no": f"P{mid}", "setl_time": day, **SZ, **kw}


def adds_up(raw):
    assert (raw.fund_pay_sumamt == raw[PARTS].sum(axis=1)).all()
    assert (raw.medfee_sumamt == raw.fund_pay_sumamt + raw.psn_part_amt).all()
    assert (raw.psn_part_amt == raw.acct_pay + raw.psn_cash_pay).all()


def test_a_claim_filed_14_months_after_care_gets_nothing_where_the_deadline_is_12_months():
    """The issue's done-when: 深圳 (12 months from the day of care): filed at 14 months, no fund payment;
    filed at 11 months, paid as a direct settlement would be."""
    s = ybcalc.settle([line("LATE", settle_mode="手工报销", claim_date="2026-03-10"),
                       line("OK", settle_mode="手工报销", claim_date="2025-12-10"),
                       line("DIRECT")], strict=False)
    raw = s.raw.set_index("mdtrt_id")
    adds_up(raw)
    assert (raw.loc["LATE", PARTS + ["fund_pay_sumamt"]] == 0).all()
    assert raw.loc["LATE", "psn_part_amt"] == raw.loc["LATE", "medfee_sumamt"] == 2_000_000
    assert raw.loc["OK", "hifp_pay"] > 0
    assert raw.loc["OK", "hifp_pay"] == raw.loc["DIRECT", "hifp_pay"]
    bills = s.bills().set_index("mdtrt_id")
    assert bills.loc["LATE", "claim_in_time"] == "no: past the 12-month deadline (2026-01-10)"
    assert bills.loc["OK", "claim_in_time"] == "yes (by 2026-01-10)"
    assert bills.loc["DIRECT", "claim_in_time"] == ""
    zh = s.bills(lang="zh").set_index("就诊ID")
    assert zh.loc["LATE", "申报时限"] == "否：超过 12 个月申报时限（至 2026-01-10）"
    assert zh.loc["OK", "申报时限"] == "是（至 2026-01-10）"


def test_the_deadline_counts_as_the_civil_code_does():
    """12 months from 2025-01-10 end on 2026-01-10 (filed that day: in time; a day later: late); a month
    without the day ends on its last day (2024-03-31 + 11 months → 2025-02-28)."""
    s = ybcalc.settle([line("ON", settle_mode="手工报销", claim_date="2026-01-10"),
                       line("AFTER", settle_mode="手工报销", claim_date="2026-01-11")], strict=False)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["ON", "hifp_pay"] > 0 and raw.loc["AFTER", "hifp_pay"] == 0
    from ybcalc.members import add_months
    import numpy as np
    got = add_months(np.array(["2024-03-31", "2025-01-31"], "datetime64[D]"), np.array([11, 1]))
    assert [str(x) for x in got] == ["2025-02-28", "2025-02-28"]


def test_a_late_claim_is_no_admission_of_the_year():
    """深圳 住院: a second admission's 起付线 is halved; a late claim before it does not count as the first."""
    s = ybcalc.settle([line("L", day="2025-03-01", settle_mode="手工报销", claim_date="2026-06-01"),
                       {**line("N", day="2025-05-01"), "psn_no": "PL"}], strict=False)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["N", "act_pay_dedc"] == 60_000          # 三级 600 元: the year's first admission


def test_a_claim_without_a_filing_date_or_a_known_deadline_is_settled_and_warned():
    s = ybcalc.settle([line("UNDATED", settle_mode="零星报销"),
                       {**line("BJ", settle_mode="手工报销", claim_date="2030-01-01"),
                        "insuplc": "北京", "contrib_tier": ""}], strict=False)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["UNDATED", "hifp_pay"] > 0 and raw.loc["BJ", "hifp_pay"] > 0
    w = s.bills().set_index("mdtrt_id")
    assert "input: manual claim without a filing date" in w.loc["UNDATED", "warnings"]
    assert ("missing: 北京市职工基本医疗保险: no sourced manual-claim deadline, not checked, settled as filed in time"
            in w.loc["BJ", "warnings"])
    assert w.loc["UNDATED", "claim_in_time"] == "not checked: no filing date"
    assert w.loc["BJ", "claim_in_time"] == "not checked: deadline not in the tables"


def test_a_filing_date_alone_makes_a_manual_claim_and_no_column_means_direct():
    s = ybcalc.settle([line("A", claim_date="2026-03-10"), line("B", claim_date="")], strict=False)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["A", "fund_pay_sumamt"] == 0 and raw.loc["B", "fund_pay_sumamt"] > 0
    plain = ybcalc.settle([line("C")], strict=False)
    assert "claim_in_time" not in plain.bills().columns and "claim_status" not in plain.raw.columns


def test_explain_shows_the_claim_step_with_its_source():
    s = ybcalc.settle([line("LATE", settle_mode="手工报销", claim_date="2026-03-10")], strict=False)
    zh = str(s.explain("LATE", lang="zh"))
    assert "手工报销申报时限: 否" in zh
    assert "申报日期 2026-03-10；时限：费用发生之日起 12 个月（至 2026-01-10）：已超过时限，医保基金不予支付" in zh
    assert "hsa.sz.gov.cn" in zh and "shenzhen/employee:manual_claim_deadline[0]" in zh
    en = str(s.explain("LATE", lang="en"))
    assert "manual claim deadline: no" in en and "12 months from the day of care (by 2026-01-10)" in en


CLAIMS_CSV = """\
就诊ID,人员编号,结算时间,参保地,险种,人员类别,缴费档次,医疗类别,医院等级,收费项目等级,金额,结算方式,申报日期
A,P1,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,手工报销,2026-03-10
B,P2,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,手工报销,2025-12-10
C,P3,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,直接结算,
D,P4,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,零星报销,
E,P5,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,邮寄,
F,P6,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,直接结算,2025-02-01
G,P7,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,手工报销,2024-12-01
H,P8,2025-01-10,深圳,职工,在职,一档,住院,3,甲,20000,手工报销,2025-13-01
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_score_settles_claims_and_rejects_bad_values_with_row_and_column(tmp_path, jobs):
    src = tmp_path / "账单.csv"
    src.write_text(CLAIMS_CSV, encoding="utf-8")
    out, rej = tmp_path / "out.csv", tmp_path / "rej.csv"
    assert main(["score", str(src), "-o", str(out), "--rejects", str(rej), "--lang", "zh", "-q",
                 "--jobs", jobs]) == 3
    bills = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("就诊ID")
    assert list(bills.index) == ["A", "B", "C", "D"]
    assert bills.loc["A", "基金支付总额"] == "0.00" and bills.loc["A", "个人负担总金额"] == "20000.00"
    assert bills.loc["B", "基金支付总额"] == bills.loc["C", "基金支付总额"] != "0.00"
    assert bills.loc["A", "申报时限"] == "否：超过 12 个月申报时限（至 2026-01-10）"
    assert bills.loc["D", "申报时限"] == "未核对：未填申报日期"
    rejects = pd.read_csv(rej, dtype=str).set_index("就诊ID")
    assert rejects.loc["E", "列"] == "settle_mode" and "未知的结算方式" in rejects.loc["E", "原因"]
    assert rejects.loc["F", "列"] == "claim_date" and "直接结算的账单不填申报日期" in rejects.loc["F", "原因"]
    assert rejects.loc["G", "原因"] == "申报日期早于结算日期"
    assert rejects.loc["H", "行号"] == "9" and "无法读取的申报日期" in rejects.loc["H", "原因"]


def test_cli_explain_and_tables_show(tmp_path, capsys):
    src = tmp_path / "bills.csv"
    src.write_text(CLAIMS_CSV, encoding="utf-8")
    assert main(["explain", str(src), "--mdtrt-id", "A", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "手工报销申报时限: 否" in out and "医保基金不予支付" in out
    assert main(["tables", "show", "深圳", "--scheme", "职工", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "手工报销申报时限 自 2020-11-23 起：" in out and "期限（月）: 12" in out and "起算日: 费用发生之日" in out


def test_cli_dask_engine_settles_claims_as_the_local_path(tmp_path):
    pytest.importorskip("distributed")
    src = tmp_path / "bills.csv"
    src.write_text(CLAIMS_CSV, encoding="utf-8")
    a, b = tmp_path / "local.csv", tmp_path / "dask.csv"
    main(["score", str(src), "-o", str(a), "-q", "--rejects", str(tmp_path / "r1.csv")])
    main(["score", str(src), "-o", str(b), "-q", "--rejects", str(tmp_path / "r2.csv"), "--engine", "dask",
          "--workers", "2"])
    x = pd.read_csv(a, dtype=str, keep_default_na=False).sort_values("mdtrt_id").reset_index(drop=True)
    y = pd.read_csv(b, dtype=str, keep_default_na=False).sort_values("mdtrt_id").reset_index(drop=True)
    assert "claim_in_time" in y.columns
    pd.testing.assert_frame_equal(x[y.columns], y)


USER_TABLE = """\
region: 北京
scheme: 职工
sources:
  notice: {title: 示例通知, doc_no: 示例〔2024〕1号, issuer: 某市医疗保障局, date: 2024-01-01, grade: user}
manual_claim_deadline:
  - {from: 2024-01-01, source: notice, days: 90, counts_from: discharge}
"""


def test_a_users_table_states_a_deadline_in_days(tmp_path):
    folder = tmp_path / "ybcalc-tables"
    folder.mkdir()
    (folder / "北京-职工.yaml").write_text(USER_TABLE, encoding="utf-8")
    book = ybcalc.load_tables(folder)
    base = {"psn_no": "P", "setl_time": "2025-01-10", "insuplc": "北京", "insutype": "职工", "psn_type": "在职",
            "med_type": "21", "hosp_lv": 3, "chrgitm_lv": "甲", "det_item_fee_sumamt": "5000", "settle_mode": "手工报销"}
    s = ybcalc.settle([{**base, "mdtrt_id": "IN", "claim_date": "2025-04-10"},
                       {**base, "mdtrt_id": "OUT", "psn_no": "Q", "claim_date": "2025-04-11"}], book, strict=False)
    texts = s.bills().set_index("mdtrt_id")["claim_in_time"]
    assert texts["IN"] == "yes (by 2025-04-10)"
    assert texts["OUT"] == "no: past the 90-day deadline (2025-04-10)"
    assert s.raw.set_index("mdtrt_id").loc["OUT", "fund_pay_sumamt"] == 0
    with i18n.language("zh"):
        assert "出院之日起 90 天" in str(s.explain("OUT", lang="zh"))


@pytest.mark.parametrize("entry, message", [
    ("{from: 2024-01-01, source: notice, months: 6, days: 30, counts_from: care}", "either months or days"),
    ("{from: 2024-01-01, source: notice, counts_from: care}", "either months or days"),
    ("{from: 2024-01-01, source: notice, months: 6, counts_from: admission}", "must be one of care, discharge"),
    ("{from: 2024-01-01, source: notice, months: 0, counts_from: care}", "cannot be 0"),
])
def test_a_bad_deadline_entry_is_a_table_error(tmp_path, entry, message):
    folder = tmp_path / "t"
    folder.mkdir()
    text = USER_TABLE.replace("  - {from: 2024-01-01, source: notice, days: 90, counts_from: discharge}", f"  - {entry}")
    (folder / "x.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(TableError, match=message):
        load_book(folder)


def test_lines_of_one_bill_must_agree_on_the_claim():
    s = ybcalc.settle([line("A", settle_mode="手工报销", claim_date="2025-06-01"),
                       line("A", settle_mode="手工报销", claim_date="2025-07-01"),
                       line("B", settle_mode="手工报销", claim_date="2025-06-01"),
                       line("B", settle_mode="直接结算")], strict=False)
    assert len(s.raw) == 0
    reasons = set(s.rejects["reason"])
    assert "lines of this bill disagree on claim_date" in reasons
    assert "a direct settlement has no filing date (the filing date is for manual claims only)" not in reasons
    assert set(s.rejects["mdtrt_id"]) == {"A", "B"}


def test_a_late_claim_is_not_accepted_so_no_account_pays_it_either(tmp_path):
    """逾期不予受理: a claim past its deadline gets nothing, from the funds or from the member's account; one
    filed in time is paid from the account as a direct settlement would be (北京 职工's account, sourced, with a
    user's 90-day deadline)."""
    folder = tmp_path / "ybcalc-tables"
    folder.mkdir()
    # the user's account rule also pays the 自费 parts, so a late claim's whole bill would be payable
    (folder / "北京-职工.yaml").write_text(USER_TABLE + """\
personal_account:
  - {from: 2024-01-01, source: notice, pays: [selfpay, ownpay], med_types: [11]}
""", encoding="utf-8")
    book = ybcalc.load_tables(folder)
    base = {"setl_time": "2025-01-10", "insuplc": "北京", "insutype": "职工", "psn_type": "在职",
            "med_type": "11", "hosp_lv": 3, "chrgitm_lv": "丙", "det_item_fee_sumamt": "500", "settle_mode": "手工报销"}
    s = ybcalc.settle([{**base, "mdtrt_id": "OK", "psn_no": "P", "claim_date": "2025-04-10"},
                       {**base, "mdtrt_id": "LATE", "psn_no": "Q", "claim_date": "2025-04-11"}], book, strict=False,
                      accounts={"P": 1000, "Q": 1000})
    raw = s.raw.set_index("mdtrt_id")
    adds_up(raw)
    assert raw.loc["OK", "acct_pay"] == raw.loc["OK", "psn_part_amt"] > 0
    assert raw.loc["LATE", "acct_pay"] == 0 and raw.loc["LATE", "psn_cash_pay"] == raw.loc["LATE", "medfee_sumamt"]
