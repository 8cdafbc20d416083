"""Issue 17: a region's own waiting period, reward amounts and 职工 contribution-gap rule, stated in its table
(or its province's, or a user's table) as a deviation from the national rule."""
import shutil
from pathlib import Path

import pandas as pd
import pytest

import ybcalc
from ybcalc.cli import main
from ybcalc.policy.loader import load_book
from ybcalc.policy.schema import TableError

ROOT = Path(__file__).resolve().parents[1]
FUND = ["hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt"]


def bill(mid, day, psn="P1", amount=20000, region="北京", scheme="居民", psn_type="成年"):
    return {"mdtrt_id": mid, "psn_no": psn, "setl_time": day, "insuplc": region, "insutype": scheme,
            "psn_type": psn_type, "med_type": "21", "hosp_lv": 3, "item_name": "床位费", "chrgitm_lv": "甲",
            "det_item_fee_sumamt": amount}


USER_SOURCE = """sources:
  notice:
    title: 关于居民医保待遇等待期的通知
    issuer: 某市医疗保障局
    date: 2024-12-01
    grade: user
"""

# enrolled 2025-03-15 after a two-year break, paid that day: national 3 + 2 = 5 months
REENROLLED = pd.DataFrame({"psn_no": ["P1"], "begin": ["2025-03-15"], "paid_on": ["2025-03-15"], "break_years": [2]})


def user_folder(tmp_path, name, text):
    folder = tmp_path / "mine"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_user_table_waiting_period_replaces_the_national_rule(tmp_path):
    """A user's 北京 居民 table says the fixed wait is 2 months (only that: the rest is the national rule), so the
    re-enrolled member waits 2 + 2 = 4 months (benefits from 2025-07-15), not 5."""
    folder = user_folder(tmp_path, "北京-居民.yaml", "region: 北京\nscheme: 居民\n" + USER_SOURCE + """
waiting_period:
  - from: 2025-01-01
    source: notice
    fixed_months: 2
""")
    book = load_book(folder)
    s = ybcalc.settle([bill("A", "2025-07-01"), bill("B", "2025-07-20")], book, members=REENROLLED)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["A", "member_wait_months"] == 4 and str(raw.loc["A", "member_benefit_from"])[:10] == "2025-07-15"
    assert (raw.loc["A", FUND] == 0).all() and raw.loc["B", "hifp_pay"] > 0
    assert "national rule" not in raw.loc["A", "warnings"]
    ex = s.explain("A", lang="zh")
    step = ex.frame[ex.frame.iloc[:, 1] == "待遇资格"].iloc[0]
    assert "等待期至 2025-07-14" in step.iloc[4] and "北京市规定" in step.iloc[4]
    assert "关于居民医保待遇等待期的通知" in step.iloc[5] and "国办发〔2024〕38号" in step.iloc[5]
    # the same bills with the shipped tables: the national rule, warned
    plain = ybcalc.settle([bill("A", "2025-07-01")], ybcalc.load_tables(), members=REENROLLED).raw.iloc[0]
    assert plain["member_wait_months"] == 5 and "national rule: waiting period" in plain["warnings"]


def fixture_tables(tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tables", tables)
    shutil.copy(ROOT / "tables" / "national.yaml", tables / "national.yaml")
    return tables


def add_to(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


HUGE = [bill("A", "2025-06-01", region="测试市", amount=5_000_000),
        bill("B", "2025-07-01", region="测试市", amount=5_000_000)]
LOYAL = pd.DataFrame({"psn_no": ["P1"], "begin": ["2025-01-01"], "continuous_years": [6], "prev_year_no_claim": ["是"]})


def test_region_reward_amounts_replace_the_national_minimum(tmp_path):
    """测试市 raises the 大病 cap (300,000) by 3,000 per step: 6 continuous years (2 steps after 4) and a zero-claim
    year = 3 steps = 9,000 yuan → 309,000; no `national` warning; with a ceiling of 5,000 yuan → 305,000."""
    tables = fixture_tables(tmp_path)
    add_to(tables / "testland" / "resident.yaml", """
critical_illness_rewards:
  - from: 2025-01-01
    source: fx
    continuous_step: 3000
    zero_claim_step: 3000
""")
    book = load_book(tables)
    raw = ybcalc.settle(HUGE, book, members=LOYAL).raw
    assert raw["hifmi_pay"].sum() == 309_000 * 100
    assert (raw["hifmi_cap"] == 309_000 * 100).all()
    # the bills say the cap in force after the rewards (issue 17: "the 大病 cap in force after rewards")
    assert list(ybcalc.settle(HUGE, book, members=LOYAL).bills(lang="zh")["大病保险最高支付限额（含激励）"]) == \
        ["309000.00", "309000.00"]
    assert not raw["warnings"].str.contains("national rule").any()
    text = str(ybcalc.settle(HUGE, book, members=LOYAL).explain("A", "zh"))
    assert "提高 9,000 元（测试市规定，至多原封顶线的 20%）" in text and "测试参数" in text
    add_to(tables / "testland" / "resident.yaml", "    total_max: 5000\n")
    assert ybcalc.settle(HUGE, load_book(tables), members=LOYAL).raw["hifmi_pay"].sum() == 305_000 * 100


def test_region_states_only_one_amount_the_other_is_the_national_minimum(tmp_path):
    """Only the continuous-enrolment amount deviates: 2 × 3,000 + the national 1,000 for the zero-claim year."""
    tables = fixture_tables(tmp_path)
    add_to(tables / "testland" / "resident.yaml", """
critical_illness_rewards:
  - from: 2025-01-01
    source: fx
    continuous_step: 3000
""")
    raw = ybcalc.settle(HUGE, load_book(tables), members=LOYAL).raw
    assert raw["hifmi_pay"].sum() == 307_000 * 100
    assert "national rule: critical-illness cap: the region's zero-claim reward is not in the tables" in raw["warnings"].iat[0]


def test_a_region_amount_below_the_national_minimum_is_a_table_error(tmp_path):
    tables = fixture_tables(tmp_path)
    add_to(tables / "testland" / "resident.yaml", """
critical_illness_rewards:
  - from: 2025-01-01
    source: fx
    continuous_step: 500
waiting_period:
  - from: 2025-01-01
    source: fx
    fixed_months: three
""")
    with pytest.raises(TableError) as exc:
        load_book(tables)
    text = str(exc.value)
    assert "testland/resident.yaml: critical_illness_rewards[0].continuous_step: 500 yuan is below the national " \
           "minimum of 1,000 yuan" in text
    assert "testland/resident.yaml: waiting_period[0].fixed_months: must be a whole number ≥ 0, got 'three'" in text


def test_user_table_errors_name_the_file_and_key(tmp_path, capsys):
    folder = user_folder(tmp_path, "北京-居民.yaml", "region: 北京\nscheme: 居民\n" + USER_SOURCE + """
critical_illness_rewards:
  - from: 2025-01-01
    source: notice
    zero_claim_step: 800
""")
    assert main(["tables", "validate", "--tables", str(folder), "--lang", "zh"]) != 0
    out = capsys.readouterr()
    assert "北京-居民.yaml: critical_illness_rewards[0].zero_claim_step: 800 元低于国家最低标准 1,000 元" in out.out + out.err
    f = folder / "北京-居民.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("zero_claim_step: 800", "total_max_share_of_cap: 2"),
                 encoding="utf-8")
    assert main(["tables", "validate", "--tables", str(folder), "--lang", "zh"]) != 0
    out = capsys.readouterr()
    assert "北京-居民.yaml: critical_illness_rewards[0].total_max_share_of_cap: 须为 0 到 1 之间的比例，实为 2" in \
        out.out + out.err


EMPLOYEE_GAP = """
employee_gap:
  - from: 2020-01-01
    source: prov
    max_gap_months: 3
    wait_months: 6
"""


def test_employee_gap_from_the_province_table(tmp_path):
    """测试省's 职工 rule (a gap of more than 3 months: benefits 6 months after paying again) applies to 测试县,
    whose own table states none. A 5-month gap waits; a 2-month gap does not; a break of a year before a
    first span waits too. The bills carry no `missing` warning."""
    tables = fixture_tables(tmp_path)
    add_to(tables / "testprov" / "employee.yaml", EMPLOYEE_GAP)
    book = load_book(tables)
    m = pd.DataFrame({"psn_no": ["E1", "E1", "E2", "E2", "E3"],
                      "begin": ["2024-01-01", "2025-01-01", "2024-01-01", "2024-09-01", "2025-02-01"],
                      "end": ["2024-07-31", "", "2024-06-30", "", ""],
                      "break_years": [0, 0, 0, 0, 1]})
    emp = dict(region="测试县", scheme="职工", psn_type="在职")
    s = ybcalc.settle([bill("A", "2025-06-30", psn="E1", **emp), bill("B", "2025-07-01", psn="E1", **emp),
                       bill("C", "2024-10-01", psn="E2", **emp), bill("D", "2025-03-01", psn="E3", **emp)],
                      book, members=m)
    raw = s.raw.set_index("mdtrt_id")
    # E1: paid up to 2024-07-31, again from 2025-01-01 (5 months): benefits from 2025-07-01
    assert not raw.loc["A", "member_eligible"] and str(raw.loc["A", "member_benefit_from"])[:10] == "2025-07-01"
    assert raw.loc["A", "fund_pay_sumamt"] == 0 and raw.loc["B", "member_eligible"]
    assert raw.loc["A", "member_wait_months"] == 6
    # E2: 2 months' gap: no wait
    assert raw.loc["C", "member_eligible"] and raw.loc["C", "member_wait_months"] == -1
    # E3: a year's break before the span: waits 6 months
    assert not raw.loc["D", "member_eligible"] and raw.loc["D", "member_reason"] == "waiting period until 2025-07-31"
    assert not raw["warnings"].str.contains("missing:").any()
    assert not raw["warnings"].str.contains("national rule").any()
    step = str(s.explain("A", lang="zh"))
    assert "职工医保中断缴费后的待遇等待期 6 个月" in step and "测试省规定" in step


def test_tables_show_prints_the_region_rule(tmp_path, capsys):
    folder = user_folder(tmp_path, "北京-居民.yaml", "region: 北京\nscheme: 居民\n" + USER_SOURCE + """
critical_illness_rewards:
  - from: 2025-01-01
    source: notice
    continuous_step: 3000
    total_max: 80000
""")
    assert main(["tables", "show", "北京", "--scheme", "居民", "--tables", str(folder), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "大病保险连续参保激励和零报销激励（与国家规定不同之处） 自 2025-01-01 起" in out
    assert "每多连续参保 1 年提高（元）: 3000" in out and "累计提高不超过（元）: 80000" in out
    assert "其余按国家规定" in out


# ---- the sourced regional rules, each with a hand-worked case ----------------------------------------------
def eligibility_of(book, bills, members):
    """ybcalc.members.eligibility on bare bills (楚雄州's benefit values are still missing, so its bills cannot be
    settled yet; the member-year rules are checked on their own): (result, warnings by bill)."""
    from ybcalc.members import eligibility, read_members
    frame = pd.DataFrame(bills, columns=["psn_no", "setl_date", "region", "scheme"])
    frame["setl_date"] = pd.to_datetime(frame["setl_date"])
    warnings = [[] for _ in range(len(frame))]

    def warn(rows, message, kind):
        for i in rows:
            warnings[i].append(f"{kind}: {message}")
    return eligibility(frame, read_members(members, book), book, warn), warnings


def test_yunnan_payment_in_february_is_in_the_concentrated_period():
    """云南 (楚雄州 inherits it): 集中征缴期为每年9月至次年2月. A member enrolled for 2025 who pays on 2025-02-10
    waits nothing (the national rule would wait 3 months, to 2025-05-09); paid on 2025-03-10 they wait 3 months
    (benefits from 2025-06-10) under 云南's rule, which carries no `national` warning."""
    book = ybcalc.load_tables()
    m = pd.DataFrame({"psn_no": ["Y1", "Y2"], "begin": ["2025-01-01", "2025-01-01"],
                      "paid_on": ["2025-02-10", "2025-03-10"]})
    out, warnings = eligibility_of(book, [("Y1", "2025-03-01", "chuxiong", "resident"),
                                          ("Y2", "2025-06-09", "chuxiong", "resident")], m)
    assert out["eligible"].tolist() == [True, False]
    assert out["wait_months"].tolist() == [-1, 3]
    assert str(out["benefit_from"][1]) == "2025-06-10"
    assert warnings == [[], []]


def test_yunnan_rewards_4000_per_step():
    """云南: 4,000 元 per continuous year after 4 and for a zero-claim year: 7 years + zero claim = 3 + 1 steps =
    16,000 元 raised (the national minimum would be 4,000)."""
    m = pd.DataFrame({"psn_no": ["Y1"], "begin": ["2025-01-01"], "continuous_years": [7], "prev_year_no_claim": ["是"]})
    out, warnings = eligibility_of(ybcalc.load_tables(), [("Y1", "2025-03-01", "chuxiong", "resident")], m)
    assert out["reward"].tolist() == [16_000 * 100] and out["reward_share"].tolist() == [200_000]
    assert warnings == [[]]


def test_fujian_extended_payment_period_benefits_from_the_payment_day():
    """福建 (莆田): 1月1日至2月底为延长缴费期，从缴费之日起享受待遇. Paid on 2025-02-10 for 2025: a bill of
    2025-02-05 gets nothing, one of 2025-02-10 is paid; no 3-month wait (the national rule: to 2025-05-09)."""
    book = ybcalc.load_tables()
    m = pd.DataFrame({"psn_no": ["F1"], "begin": ["2025-01-01"], "paid_on": ["2025-02-10"]})
    s = ybcalc.settle([bill("A", "2025-02-05", psn="F1", region="莆田"), bill("B", "2025-02-10", psn="F1", region="莆田")],
                      book, members=m)
    raw = s.raw.set_index("mdtrt_id")
    assert not raw.loc["A", "member_eligible"] and (raw.loc["A", FUND] == 0).all()
    assert raw.loc["A", "member_reason"] == "benefits only from the payment day 2025-02-10"
    assert raw.loc["B", "member_eligible"] and raw.loc["B", "hifp_pay"] > 0
    assert s.bills(lang="zh").set_index("就诊ID").loc["A", "待遇资格"] == "否：缴费前（2025-02-10 起享受）"
    step = str(s.explain("A", lang="zh"))
    assert "缴费之日 2025-02-10 起享受待遇（莆田市规定" in step and "闽政办〔2025〕3号" in step
    assert not raw["warnings"].str.contains("national rule").any()


def test_fujian_rewards_3000_per_step_and_sichuan_missing_is_national():
    """福建: 3,000 元 per step (6 years + zero claim = 3 steps = 9,000 元); 四川's amounts are missing, so 成都 uses
    the national minimum (3,000 元 for the same member) and warns."""
    m = pd.DataFrame({"psn_no": ["P1"], "begin": ["2025-01-01"], "continuous_years": [6], "prev_year_no_claim": ["是"]})
    book = ybcalc.load_tables()
    pt = ybcalc.settle([bill("A", "2025-03-01", region="莆田")], book, members=m).raw.iloc[0]
    assert pt["member_reward"] == 9_000 * 100 and "national rule" not in pt["warnings"]
    out, warnings = eligibility_of(book, [("P1", "2025-03-01", "chengdu", "resident")], m)
    assert out["reward"].tolist() == [3_000 * 100]
    assert "national: critical-illness cap: the region's reward is not in the tables" in warnings[0][0]


def test_diff_with_members_shows_what_a_draft_waiting_period_changes(tmp_path, capsys):
    """`diff --members`: a draft that shortens 北京 居民's fixed wait to 2 months pays the 2025-07-20 bill the
    national rule (5 months) refuses; --accounts is taken too. Before, diff had no --members (an argparse error)."""
    draft = tmp_path / "draft.yaml"
    draft.write_text("region: 北京\nscheme: 居民\n" + USER_SOURCE + """
waiting_period:
  - from: 2025-01-01
    source: notice
    fixed_months: 2
""", encoding="utf-8")
    bills = tmp_path / "bills.csv"
    pd.DataFrame([bill("A", "2025-07-01"), bill("B", "2025-07-20")]).to_csv(bills, index=False)
    members = tmp_path / "members.csv"
    REENROLLED.to_csv(members, index=False)
    accounts = tmp_path / "accounts.csv"
    pd.DataFrame({"psn_no": ["P1"], "acct_balance": [0]}).to_csv(accounts, index=False)
    out = tmp_path / "d.csv"
    assert main(["diff", str(bills), "--draft-b", str(draft), "--members", str(members), "--accounts", str(accounts),
                 "-o", str(out), "--lang", "zh"]) == 0
    capsys.readouterr()
    d = pd.read_csv(out, dtype={"就诊ID": str}).set_index("就诊ID")
    assert d.loc["A", "Δ统筹基金"] == 0                       # in both waits
    assert d.loc["B", "统筹基金 A"] == 0 and d.loc["B", "Δ统筹基金"] > 0
    # a broken members file is named, not a traceback
    members.write_text("人员编号,参保开始日期\nP1,someday\n", encoding="utf-8")
    assert main(["diff", str(bills), "--draft-b", str(draft), "--members", str(members), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert "第 2 行" in err and "Traceback" not in err
