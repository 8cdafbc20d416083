"""A member's year (issue 17, first part): enrolment spans, waiting periods, the members file."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ybcalc
from ybcalc import i18n
from ybcalc.batch import score_file, score_frame
from ybcalc.cli import main
from ybcalc.members import MembersError, add_months, read_members
from ybcalc.policy.loader import load_book

ROOT = Path(__file__).resolve().parents[1]
MONEY = ["medfee_sumamt", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt",
         "acct_pay", "psn_cash_pay"]


def bill(mid, day, psn="P1", amount=20000, region="北京", scheme="居民", psn_type="成年"):
    return {"mdtrt_id": mid, "psn_no": psn, "setl_time": day, "insuplc": region, "insutype": scheme,
            "psn_type": psn_type, "med_type": "21", "hosp_lv": 3, "item_name": "床位费", "chrgitm_lv": "甲",
            "det_item_fee_sumamt": amount}


# the "done when": enrolled 2025-03-15 after a two-year break, national rule (3 + 2 months)
REENROLLED = pd.DataFrame({"人员编号": ["P1"], "参保开始日期": ["2025-03-15"], "缴费日期": ["2025-03-15"],
                           "断缴年数": ["2"]})


def balanced(raw):
    assert (raw["medfee_sumamt"] == raw["fund_pay_sumamt"] + raw["psn_part_amt"]).all()
    assert (raw["psn_part_amt"] == raw["acct_pay"] + raw["psn_cash_pay"]).all()
    assert (raw["fund_pay_sumamt"] == raw["hifp_pay"] + raw["hifmi_pay"] + raw["hifob_pay"] + raw["maf_pay"]).all()


def test_reenrolled_after_two_year_break_waits_five_months():
    s = ybcalc.settle([bill("A", "2025-07-01"), bill("B", "2025-09-01")], ybcalc.load_tables(), members=REENROLLED)
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    assert raw.loc["A", ["hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt"]].sum() == 0
    assert raw.loc["A", "psn_part_amt"] == raw.loc["A", "medfee_sumamt"]
    assert raw.loc["B", "hifp_pay"] > 0
    assert not raw.loc["A", "member_eligible"] and raw.loc["B", "member_eligible"]
    assert raw.loc["A", "member_wait_months"] == 5
    assert str(raw.loc["A", "member_benefit_from"])[:10] == "2025-08-15"
    out = s.bills().set_index("mdtrt_id")
    assert out.loc["A", "eligibility"] == "no: waiting period until 2025-08-14"
    assert out.loc["B", "eligibility"] == "yes"
    assert s.bills(lang="zh").set_index("就诊ID").loc["A", "待遇资格"] == "否：等待期至 2025-08-14"
    # the national rule is used, and the bill says so with the document
    assert "national rule: waiting period" in raw.loc["A", "warnings"] and "国办发〔2024〕38号" in raw.loc["A", "warnings"]
    # the refused bill is no admission of the year: the paid one is the first (full deductible)
    alone = ybcalc.settle([bill("B", "2025-09-01")], ybcalc.load_tables()).raw.iloc[0]
    assert raw.loc["B", "act_pay_dedc"] == alone["act_pay_dedc"]
    assert raw.loc["B", "hifp_pay"] == alone["hifp_pay"]


def test_explain_step_cites_the_document():
    s = ybcalc.settle([bill("A", "2025-07-01"), bill("B", "2025-09-01")], ybcalc.load_tables(), members=REENROLLED)
    ex = s.explain("A", lang="zh")
    row = ex.frame[ex.frame.iloc[:, 1] == "待遇资格"].iloc[0]
    assert row.iloc[3] == "不享受"
    assert "等待期至 2025-08-14" in row.iloc[4] and "国办发〔2024〕38号" in row.iloc[5]
    ex_b = s.explain("B", lang="en")
    assert "benefits from 2025-08-15" in str(ex_b)


@pytest.mark.parametrize("break_years, repaid, paid_on, exempt, months", [
    (0, 0, "2025-03-15", "", 3),          # enrolled outside the concentrated period: fixed 3 months
    (0, 0, "2024-12-01", "", -1),         # paid before the span began (集中缴费期): no wait
    (1, 0, "2024-12-01", "", 4),          # a break, even when paid in time
    (3, 2, "2025-03-15", "", 4),          # 3 + 3 − 2 repaid
    (3, 5, "2025-03-15", "", 3),          # repaying never cuts the fixed 3 months
    (4, 0, "2025-03-15", "", 7),          # 3 + 4
    (5, 5, "2025-03-15", "", 6),          # a break of 4+ years: at least 6 months after repair
    (2, 0, "2025-03-15", "是", -1),       # exempt (新生儿 …)
])
def test_waiting_months(break_years, repaid, paid_on, exempt, months):
    m = pd.DataFrame({"psn_no": ["P1"], "begin": ["2025-03-15"], "paid_on": [paid_on],
                      "break_years": [break_years], "repaid_years": [repaid], "waiting_exempt": [exempt]})
    raw = ybcalc.settle([bill("A", "2025-12-30")], ybcalc.load_tables(), members=m).raw.iloc[0]
    assert raw["member_wait_months"] == months


def test_months_are_calendar_months_day_kept_or_month_end():
    d = np.array(["2025-03-15", "2025-01-31", "2024-11-30"], dtype="datetime64[D]")
    got = add_months(d, np.array([5, 1, 3]))
    assert [str(x) for x in got] == ["2025-08-15", "2025-02-28", "2025-02-28"]


def test_outside_every_span_not_enrolled():
    m = pd.DataFrame({"psn_no": ["P1", "P1"], "begin": ["2024-01-01", "2025-06-01"],
                      "end": ["2024-12-31", ""]})
    s = ybcalc.settle([bill("A", "2025-02-01"), bill("B", "2025-07-01"), bill("C", "2024-05-01")],
                      ybcalc.load_tables(), members=m)
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    assert raw.loc["A", "fund_pay_sumamt"] == 0 and raw.loc["A", "member_reason"] == "not enrolled"
    assert raw.loc["B", "hifp_pay"] > 0 and raw.loc["C", "hifp_pay"] > 0
    assert s.bills(lang="zh").set_index("就诊ID").loc["A", "待遇资格"] == "否：未参保"


def test_member_absent_is_settled_as_always_enrolled_and_said_once():
    lines = pd.DataFrame([bill("A", "2025-07-01"), bill("X", "2025-07-01", psn="P2"), bill("Y", "2025-08-01", psn="P3")])
    plain = ybcalc.settle(lines, ybcalc.load_tables()).raw.set_index("mdtrt_id")
    res = score_frame(lines, ybcalc.load_tables(), members=REENROLLED)
    raw = res.settlement.raw.set_index("mdtrt_id")
    for mid in ("X", "Y"):
        assert raw.loc[mid, MONEY].tolist() == plain.loc[mid, MONEY].tolist()
    assert res.members_absent == 2
    assert res.summary().count("2 member(s) not in the members file: settled as always enrolled") == 1
    assert res.settlement.bills().set_index("mdtrt_id").loc["X", "eligibility"].startswith("not in the members file")
    with i18n.language("zh"):
        assert "参保信息文件未列出 2 名人员：按一直参保结算" in res.summary()


def test_employee_gap_is_warned_missing_not_applied():
    m = pd.DataFrame({"psn_no": ["E1"], "begin": ["2025-03-15"], "paid_on": ["2025-03-15"], "break_years": [2]})
    raw = ybcalc.settle([bill("A", "2025-04-01", psn="E1", scheme="职工", psn_type="在职")], ybcalc.load_tables(),
                        members=m).raw.iloc[0]
    assert raw["member_eligible"] and raw["hifp_pay"] > 0
    assert "missing:" in raw["warnings"] and "wait after a contribution gap" in raw["warnings"]


def test_span_region_differs_from_bill_members_file_wins_with_input_warning():
    # the members file is the enrolment record: its 参保地 decides the table, and the bill says so
    m = pd.DataFrame({"psn_no": ["P1"], "begin": ["2024-01-01"], "参保地": ["上海"]})
    raw = ybcalc.settle([bill("A", "2025-04-01")], ybcalc.load_tables(), members=m).raw.iloc[0]
    assert raw["table"] == "shanghai/resident"
    assert ("input: the bill's insured region 北京 differs from the members file (<members>) on that day (上海): "
            "settled as the members file says") in raw["warnings"]
    shanghai = ybcalc.settle([bill("A", "2025-04-01", region="上海")], ybcalc.load_tables()).raw.iloc[0]
    assert raw[MONEY].tolist() == shanghai[MONEY].tolist()
    with i18n.language("zh"):
        zh = ybcalc.settle([bill("A", "2025-04-01")], ybcalc.load_tables(), members=m).raw.iloc[0]
    assert "账单的参保地 北京 与参保信息（<members>）该日的参保地（上海）不一致：按参保信息结算" in zh["warnings"]


@pytest.mark.parametrize("col, value, words", [
    ("参保开始日期", "2025-13-01", "row 2, column begin: not a date"),
    ("断缴年数", "two", "row 2, column break_years: must be a whole number"),
    ("上年零报销", "maybe", "row 2, column prev_year_no_claim: must be yes/no"),
    ("参保地", "火星", "row 2, column insuplc: unknown region"),
    ("险种", "商业", "row 2, column insutype: unknown scheme"),
])
def test_bad_cell_names_file_row_column(tmp_path, col, value, words):
    f = tmp_path / "members.csv"
    row = {"人员编号": "P1", "参保开始日期": "2025-01-01", "断缴年数": "0", "上年零报销": "否", "参保地": "北京",
           "险种": "居民"}
    row[col] = value
    pd.DataFrame([row]).to_csv(f, index=False)
    with pytest.raises(MembersError) as exc:
        read_members(f, ybcalc.load_tables())
    assert str(f) in str(exc.value) and words in str(exc.value)


def test_bad_files(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text("psn_no,begin,bgein\nP1,2025-01-01,x\n")
    with pytest.raises(MembersError, match="unknown column.*bgein"):
        read_members(f)
    f.write_text("psn_no,begin,end\nP1,2025-01-01,2025-06-30\nP1,2025-06-01,\n")
    with pytest.raises(MembersError, match="row 3, column begin: overlaps"):
        read_members(f)
    f.write_text("psn_no,begin,end\nP1,2025-06-01,2025-01-01\n")
    with pytest.raises(MembersError, match="row 2, column end: enrolment ends before it begins"):
        read_members(f)


def test_cli_score_and_explain(tmp_path, capsys):
    lines = tmp_path / "bills.csv"
    pd.DataFrame([bill("A", "2025-07-01"), bill("B", "2025-09-01"), bill("X", "2025-07-01", psn="P2")]).to_csv(
        lines, index=False)
    members = tmp_path / "members.csv"
    REENROLLED.to_csv(members, index=False)
    out = tmp_path / "out.csv"
    assert main(["score", str(lines), "-o", str(out), "--members", str(members), "--lang", "zh"]) == 0
    df = pd.read_csv(out, dtype=str).set_index("就诊ID")
    assert df.loc["A", "待遇资格"] == "否：等待期至 2025-08-14" and float(df.loc["A", "基金支付总额"]) == 0
    assert df.loc["B", "待遇资格"] == "是"
    assert "参保信息文件未列出 1 名人员" in capsys.readouterr().err
    assert main(["explain", str(lines), "--mdtrt-id", "A", "--members", str(members), "--lang", "zh"]) == 0
    text = capsys.readouterr().out
    assert "待遇资格: 不享受" in text and "国办发〔2024〕38号" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("人员编号,参保开始日期\nP1,明天\n", encoding="utf-8")
    assert main(["score", str(lines), "-o", str(tmp_path / "o2.csv"), "--members", str(bad), "--lang", "zh"]) != 0
    err = capsys.readouterr().err
    assert f"{bad}，第 2 行，begin 列：不是日期" in err and "Traceback" not in err


def test_score_file_partitions_equal_settle(tmp_path):
    rows = []
    for k in range(12):
        rows += [bill(f"A{k}", "2025-07-01", psn=f"P{k}"), bill(f"B{k}", "2025-09-01", psn=f"P{k}")]
    f = tmp_path / "bills.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    m = pd.DataFrame({"psn_no": [f"P{k}" for k in range(0, 12, 2)], "begin": "2025-03-15", "paid_on": "2025-03-15",
                      "break_years": 2})
    whole = ybcalc.settle(pd.DataFrame(rows), ybcalc.load_tables(), members=m).raw.set_index("mdtrt_id")
    res = score_file(f, ybcalc.load_tables(), partition_lines=4, members=m)
    parts = res.settlement.raw.set_index("mdtrt_id").loc[whole.index]
    assert (parts[MONEY] == whole[MONEY]).all().all()
    assert res.members_absent == 6
    assert int((~parts["member_eligible"]).sum()) == 6


def test_tables_show_national_and_validation(tmp_path, capsys):
    assert main(["tables", "show", "全国", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "固定待遇等待期 3 个月" in out and "国办发〔2024〕38号" in out and "手工报销申报时限" in out
    copy = tmp_path / "tables"
    shutil.copytree(ROOT / "tables", copy)
    nat = copy / "national.yaml"
    nat.write_text(nat.read_text(encoding="utf-8").replace("fixed_months: 3 ", "fixed_months: three "),
                   encoding="utf-8")
    problems = [str(p) for p in load_book(copy, strict=False).problems]
    assert any("waiting_period[0].fixed_months" in p for p in problems)


def test_differential_random_spans_equal_settling_only_the_eligible_bills():
    """With spans and waits, the eligible bills are settled exactly as if the others did not exist, and the
    others get nothing from the funds (no accounts: the account would be shared by both)."""
    rng = np.random.default_rng(17)
    book = ybcalc.load_tables()
    rows, spans = [], []
    for k in range(30):
        psn = f"R{k}"
        for j in range(rng.integers(1, 6)):
            day = np.datetime64("2025-01-01") + int(rng.integers(0, 360))
            rows.append(bill(f"{psn}-{j}", str(day), psn=psn, amount=int(rng.integers(100, 60000))))
        if k % 5 == 4:
            continue                                   # absent from the members file
        begin = np.datetime64("2025-01-01") + int(rng.integers(0, 200))
        end = "" if k % 3 else str(begin + int(rng.integers(30, 200)))
        paid = str(begin) if k % 2 else ""
        spans.append({"psn_no": psn, "begin": str(begin), "end": end, "paid_on": paid,
                      "break_years": int(rng.integers(0, 6)), "repaid_years": int(rng.integers(0, 3))})
    lines = pd.DataFrame(rows)
    with_members = ybcalc.settle(lines, book, members=pd.DataFrame(spans)).raw.set_index("mdtrt_id")
    balanced(with_members)
    out = with_members[~with_members["member_eligible"]]
    assert len(out) > 5 and (out[["hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt"]] == 0).all().all()
    assert (out["psn_part_amt"] == out["medfee_sumamt"]).all()
    kept = with_members.index[with_members["member_eligible"]]
    alone = ybcalc.settle(lines[lines["mdtrt_id"].isin(kept)], book).raw.set_index("mdtrt_id").loc[kept]
    assert (with_members.loc[kept, MONEY] == alone[MONEY]).all().all()
    assert (with_members.loc[kept, "admission_no"] == alone["admission_no"]).all()


def test_critical_illness_cap_raised_by_national_minimum(tmp_path):
    """连续参保激励/零报销激励: no region states its amounts yet, so the national minimum (1,000 元 per step)
    raises the 大病 cap, at most 20 % of it, and the bill says so (kind national)."""
    tables = tmp_path / "tables"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tables", tables)
    shutil.copy(ROOT / "tables" / "national.yaml", tables / "national.yaml")
    book = load_book(tables)
    huge = [bill("A", "2025-06-01", region="测试市", amount=5_000_000), bill("B", "2025-07-01", region="测试市",
                                                                            amount=5_000_000)]
    m = pd.DataFrame({"psn_no": ["P1"], "begin": ["2025-01-01"], "continuous_years": [6],
                      "prev_year_no_claim": ["是"]})
    plain = ybcalc.settle(huge, book).raw
    raised = ybcalc.settle(huge, book, members=m).raw
    balanced(raised)
    assert plain["hifmi_pay"].sum() == 300_000 * 100                  # the fixture's cap
    assert raised["hifmi_pay"].sum() == 303_000 * 100                 # 2 continuous steps + 1 zero-claim year
    assert (raised["hifmi_cap"] == 303_000 * 100).all()
    assert "national rule: critical-illness cap" in raised["warnings"].iat[0]
    assert "raised by the national minimum 3,000 yuan (国办发〔2024〕38号)" in raised["warnings"].iat[0]
    assert "大病保险最高支付限额因连续参保/零报销激励提高 3,000 元" in str(ybcalc.settle(huge, book, members=m).explain("A", "zh"))
    # at most 20 % of the original cap
    m2 = m.assign(continuous_years=[100])
    assert ybcalc.settle(huge, book, members=m2).raw["hifmi_pay"].sum() == 360_000 * 100
