"""A change of 参保地 (or 险种) within a year (issue 17): the span's region decides the table; the year state
carries over or not by the receiving region's `transfer_carryover`; one account balance per member."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

import ybcalc
from ybcalc import i18n
from ybcalc.batch import score_frame
from ybcalc.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ybcalc-tables" / "攀枝花-职工.yaml"
MONEY = ["medfee_sumamt", "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt",
         "psn_part_amt", "acct_pay", "psn_cash_pay"]

# a 成都 职工 table of the user's own (the shipped one has no sourced inpatient values yet); numbers invented
CHENGDU = """\
region: 成都
scheme: 职工
title: 成都职工基本医疗保险（测试用参数表）
psn_types: [在职, 退休]
sources:
  notice: {title: 测试通知（数字为虚构）, issuer: 测试, date: 2024-01-01, grade: user}
benefits:
  inpatient:
    med_types: [21]
    deductible:
      - {from: 2024-01-01, source: notice, basis: per_year, amount: 1000}
    ratio:
      - {from: 2024-01-01, source: notice, rates: [0.9]}
    cap:
      - {from: 2024-01-01, source: notice, amount: 20000}
personal_account:
  - {from: 2024-01-01, source: notice, pays: [selfpay], med_types: [21]}
"""
ACCOUNT = """personal_account:                # 个人账户
  - from: 2024-01-01
    source: notice
    pays: [selfpay]
    med_types: [21]
"""

# 攀枝花 职工 until 2025-06-30, then 成都 职工
MOVED = pd.DataFrame({"人员编号": ["P1", "P1"], "参保开始日期": ["2024-01-01", "2025-07-01"],
                      "参保结束日期": ["2025-06-30", ""], "参保地": ["攀枝花", "成都"], "险种": ["职工", "职工"]})


def bill(mid, day, amount=20000, region="", scheme="", psn="P1"):
    return {"mdtrt_id": mid, "psn_no": psn, "setl_time": day, "insuplc": region, "insutype": scheme,
            "psn_type": "在职", "med_type": "21", "hosp_lv": 3, "item_name": "床位费", "chrgitm_lv": "甲",
            "det_item_fee_sumamt": amount}


def tables(tmp_path, carryover: str | None = None):
    """The example 攀枝花 table (with an account rule) and the 成都 one above, with its transfer rule if given."""
    folder = tmp_path / "ybcalc-tables"
    folder.mkdir(exist_ok=True)
    pzh = EXAMPLE.read_text(encoding="utf-8")
    head, _, _ = pzh.partition("personal_account:")
    (folder / "攀枝花-职工.yaml").write_text(head + ACCOUNT, encoding="utf-8")
    text = CHENGDU
    if carryover is not None:
        text += f"transfer_carryover:\n  - {{from: 2024-01-01, source: notice, carried_over: {carryover}}}\n"
    (folder / "成都-职工.yaml").write_text(text, encoding="utf-8")
    return ybcalc.load_tables(folder)


def balanced(raw):
    assert (raw["medfee_sumamt"] == raw["fund_pay_sumamt"] + raw["psn_part_amt"]).all()
    assert (raw["psn_part_amt"] == raw["acct_pay"] + raw["psn_cash_pay"]).all()


def test_move_from_panzhihua_to_chengdu_each_table_for_its_dates_missing_rule_warned(tmp_path):
    """The issue's done-when: 攀枝花 until June, 成都 from July; 成都's carry-over rule is not sourced (shipped
    `missing`): the 成都 bills start the year afresh and say so."""
    book = tables(tmp_path)
    s = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED)
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    assert raw.loc["A", "table"] == "panzhihua/employee" and raw.loc["B", "table"] == "chengdu/employee"
    # each as if alone in its own region: 攀枝花 per admission 800, 成都 per year 1000 from nothing
    pzh = ybcalc.settle([bill("A", "2025-03-01", region="攀枝花", scheme="职工")], book).raw.iloc[0]
    cd = ybcalc.settle([bill("B", "2025-09-01", region="成都", scheme="职工")], book).raw.iloc[0]
    assert raw.loc["A", MONEY].tolist() == pzh[MONEY].tolist()
    assert raw.loc["B", MONEY].tolist() == cd[MONEY].tolist()
    assert raw.loc["B", "act_pay_dedc"] == 100000 and raw.loc["B", "hifp_pay"] == 1710000
    assert raw.loc["B", "member_transfer"] == "missing"
    assert ("missing: change of region/scheme (攀枝花 employee → 成都 employee): no sourced rule on whether 成都 "
            "employee counts the year so far: the deductible used, amounts paid and critical-illness totals were "
            "not carried over (computed afresh)") in raw.loc["B", "warnings"]
    assert "change of region" not in raw.loc["A", "warnings"]
    with i18n.language("zh"):
        zh = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED).raw
    assert "缺失: 参保地/险种变更（攀枝花职工 → 成都职工）：成都职工年度内转入人员已发生费用是否累计计算无已核实规定" \
        in zh.set_index("mdtrt_id").loc["B", "warnings"]


def test_carried_over_by_the_receiving_table_the_cap_continues(tmp_path):
    book = tables(tmp_path, carryover="true")
    raw = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED).raw.set_index("mdtrt_id")
    balanced(raw)
    # 攀枝花 paid 16,320.00; 成都's yearly cap 20,000.00 counts it: 3,680.00 left
    assert raw.loc["A", "hifp_pay"] == 1632000
    assert raw.loc["B", "hifp_pay"] == 2000000 - 1632000
    assert raw.loc["B", "member_transfer"] == "carried"
    assert "change of region" not in raw.loc["B", "warnings"]
    assert "change of region/scheme (攀枝花 employee → 成都 employee): the year so far counts" in raw.loc["B", "notes"]
    # the next policy year starts afresh anyway
    nxt = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01"), bill("C", "2026-02-01")], book,
                        members=MOVED).raw.set_index("mdtrt_id")
    assert nxt.loc["C", "hifp_pay"] == 1710000 and nxt.loc["C", "member_transfer"] == ""


def test_not_carried_by_a_sourced_rule_is_a_note_not_a_warning(tmp_path):
    book = tables(tmp_path, carryover="false")
    raw = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED).raw.set_index("mdtrt_id")
    assert raw.loc["B", "hifp_pay"] == 1710000 and raw.loc["B", "member_transfer"] == "not_carried"
    assert raw.loc["B", "warnings"].count("change of region") == 0
    assert "by 成都 employee's rule the year so far does not count" in raw.loc["B", "notes"]


def test_the_account_balance_moves_with_the_member(tmp_path):
    """One balance per member across regions (医保办发〔2021〕43号): what 攀枝花 used is gone in 成都."""
    book = tables(tmp_path)
    s = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED,
                      accounts={"P1": 5000})
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    a, b = raw.loc["A"], raw.loc["B"]
    assert a["acct_pay"] == min(500000, a["psn_part_amt"])
    assert b["acct_balance_before"] == 500000 - a["acct_pay"]
    assert b["acct_pay"] == min(500000 - a["acct_pay"], b["psn_part_amt"])
    assert a["acct_pay"] + b["acct_pay"] == 500000


def test_explain_shows_the_move_with_its_source(tmp_path):
    book = tables(tmp_path, carryover="true")
    s = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED)
    ex = s.explain("B", lang="zh").frame
    row = ex[ex.iloc[:, 1] == "变更参保地/险种"].iloc[0]
    assert row.iloc[3] == "累计计算"
    assert "参保信息第 2 行：2025-07-01 起由攀枝花职工转入成都职工" in row.iloc[4]
    assert "个人账户余额随本人转移" in row.iloc[4]
    assert "测试通知" in row.iloc[5] and "医保办发〔2021〕43号" in row.iloc[5]
    assert "变更参保地/险种" not in set(s.explain("A", lang="zh").frame.iloc[:, 1])
    missing = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], tables(tmp_path), members=MOVED)
    en = missing.explain("B", lang="en").frame
    row = en[en.iloc[:, 1] == "change of region/scheme"].iloc[0]
    assert row.iloc[3] == "missing: not carried over"
    assert "chengdu/employee:transfer_carryover[0]" in row.iloc[5]


def test_bills_may_leave_region_and_scheme_to_the_members_file(tmp_path):
    book = tables(tmp_path)
    lines = pd.DataFrame([bill("A", "2025-03-01"), bill("B", "2025-09-01")]).drop(columns=["insuplc", "insutype"])
    raw = ybcalc.settle(lines, book, members=MOVED).raw.set_index("mdtrt_id")
    assert raw.loc["A", "table"] == "panzhihua/employee" and raw.loc["B", "table"] == "chengdu/employee"
    assert "differs" not in raw.loc["A", "warnings"]


def test_no_region_on_the_bill_nor_in_the_members_file_is_a_reject_naming_row_and_column(tmp_path):
    book = tables(tmp_path)
    lines = pd.DataFrame([bill("A", "2025-03-01"), bill("X", "2025-03-01", psn="P9")])
    res = score_frame(lines, book, members=MOVED, source="bills.csv", row_numbers=[2, 3])
    rej = res.rejects.set_index("column")
    assert list(res.rejects["row"].unique()) == [3]
    assert rej.loc["insuplc", "reason"] == ("insured region (insuplc) is empty; neither does the members file "
                                            "(<members>) for this member on the bill's date")
    assert "scheme (insutype) is empty" in rej.loc["insutype", "reason"]
    assert res.settlement.raw["mdtrt_id"].tolist() == ["A"]


def test_cli_names_the_users_file_row_and_column(tmp_path, monkeypatch, capsys):
    tables(tmp_path)
    monkeypatch.chdir(tmp_path)
    pd.DataFrame([bill("A", "2025-03-01"), bill("X", "2025-09-01", psn="P9")]).to_csv("bills.csv", index=False)
    MOVED.to_csv("members.csv", index=False)
    main(["score", "bills.csv", "--tables", "ybcalc-tables", "--members", "members.csv", "--rejects", "rej.csv",
          "-o", "out.csv", "--lang", "zh"])
    rej = pd.read_csv("rej.csv", dtype=str)
    r = rej[rej.iloc[:, 2] == "insuplc"].iloc[0].tolist()
    assert r[0] == "3" and "参保地（insuplc）为空，参保信息文件（members.csv）中该人员在结算日也没有" in r[-1]


def test_year_to_date_state_goes_to_the_table_of_the_first_bill_only(tmp_path):
    """--accounts year-to-date amounts of a member with bills under two tables that do not share the year apply
    to the table of the member's earliest bill, never to both."""
    book = tables(tmp_path)
    state = pd.DataFrame({"psn_no": ["P1"], "fund_paid": [19000]})      # 19,000.00 yuan paid before the batch
    raw = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED,
                        state=state).raw.set_index("mdtrt_id")
    fresh = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], book, members=MOVED).raw.set_index("mdtrt_id")
    assert raw.loc["B", "hifp_pay"] == fresh.loc["B", "hifp_pay"]          # 成都 did not see the 19,000.00
    assert raw.loc["A", "fund_before"] == 1_900_000
    # carried over: 成都 continues 攀枝花's year, the state included
    carried = ybcalc.settle([bill("A", "2025-03-01"), bill("B", "2025-09-01")], tables(tmp_path, "true"),
                            members=MOVED, state=state).raw.set_index("mdtrt_id")
    assert carried.loc["B", "hifp_pay"] == 0             # 19,000 + 16,320 > the 20,000 cap


def test_tables_show_the_rule_and_the_national_account_rule(capsys):
    assert main(["tables", "show", "成都", "--scheme", "职工", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "年度内转入（变更参保地/险种） 自 2021-11-01 起" in out and "按不累计计算并提示" in out
    assert main(["tables", "show", "全国", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "基本医疗保险关系转移接续：个人账户" in out and "医保办发〔2021〕43号" in out
