"""家庭共济 (issue 17): a 职工's personal account pays the costs of linked relatives (members file 共济账户)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ybcalc
from ybcalc import i18n
from ybcalc.cli import main
from ybcalc.members import MembersError, read_members
from ybcalc.policy.loader import load_book

ROOT = Path(__file__).resolve().parents[1]
BOOK = ybcalc.load_tables()


def bill(mid, day, psn, amount, scheme="居民", psn_type="老年人", region="北京", med_type="11"):
    return {"mdtrt_id": mid, "psn_no": psn, "setl_time": day, "insuplc": region, "insutype": scheme,
            "psn_type": psn_type, "age": 68 if scheme == "居民" else 42, "med_type": med_type, "hosp_lv": 2,
            "med_chrgitm_type": "09", "item_name": "西药", "chrgitm_lv": "甲", "det_item_fee_sumamt": amount}


def son(mid, day, amount):
    return bill(mid, day, "SON", amount, scheme="职工", psn_type="在职")


FAMILY = pd.DataFrame({"人员编号": ["MOM", "SON"], "参保开始日期": ["2020-01-01", "2020-01-01"],
                       "参保地": ["北京", "北京"], "险种": ["居民", "职工"], "共济账户": ["SON", ""]})


def settle(bills, members=FAMILY, accounts=None, book=BOOK):
    return ybcalc.settle(bills, book, members=members, accounts={"SON": 1000} if accounts is None else accounts)


def balanced(raw):
    assert (raw["medfee_sumamt"] == raw["fund_pay_sumamt"] + raw["psn_part_amt"]).all()
    assert (raw["psn_part_amt"] == raw["acct_pay"] + raw["acct_mulaid_pay"] + raw["psn_cash_pay"]).all()


def test_employee_account_pays_mothers_bill_until_its_balance_is_used():
    """The issue's "done when": the son's 职工 account pays his mother's (居民) bill when linked, and no
    longer once its balance is used: her next bill gets acct_mulaid_pay 0 and psn_cash_pay all."""
    s = settle([bill("A", "2025-03-10", "MOM", 400), bill("B", "2025-05-20", "MOM", 2000),
                bill("C", "2025-06-15", "MOM", 200)])
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    assert raw.loc["A", "acct_mulaid_pay"] == raw.loc["A", "psn_part_amt"] == 40000     # under the deductible
    assert raw.loc["A", "acct_pay"] == 0                                                # a 居民 has no account
    assert raw.loc["B", "acct_mulaid_pay"] == 60000                                     # the rest of 1,000 元
    assert raw.loc["B", "psn_cash_pay"] == raw.loc["B", "psn_part_amt"] - 60000
    assert raw.loc["C", "acct_mulaid_pay"] == 0
    assert raw.loc["C", "psn_cash_pay"] == raw.loc["C", "psn_part_amt"] > 0
    assert list(raw["acct_mulaid_balance_before"]) == [100000, 60000, 0]
    # without the link the mother pays in cash
    alone = ybcalc.settle([bill("A", "2025-03-10", "MOM", 400)], BOOK, accounts={"SON": 1000}).raw.iloc[0]
    assert alone["acct_mulaid_pay"] == 0 and alone["psn_cash_pay"] == 40000
    out = s.bills().set_index("mdtrt_id")
    assert out.loc["A", "acct_paid_by"] == "family: SON" and out.loc["C", "acct_paid_by"] == ""
    assert out.loc["A", "acct_mulaid_pay"] == out.loc["A", "psn_part_amt"]
    zh = s.bills(lang="zh").set_index("就诊ID")
    assert zh.loc["A", "账户支付"] == "共济：SON" and zh.loc["A", "个人账户共济支付金额"] == zh.loc["A", "个人负担总金额"]


def test_payer_and_payee_bills_interleave_in_date_order_on_one_balance():
    s = settle([bill("M1", "2025-03-10", "MOM", 400), son("S1", "2025-04-02", 500),
                bill("M2", "2025-05-20", "MOM", 400), son("S2", "2025-06-01", 300)])
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    # 1,000 元: mother 400 (03-10), son 500 (04-02), mother 100 of 400 (05-20), son nothing (06-01)
    assert raw.loc["M1", "acct_mulaid_pay"] == 40000
    assert raw.loc["S1", "acct_pay"] == 50000 and raw.loc["S1", "acct_balance_before"] == 60000
    assert raw.loc["M2", "acct_mulaid_pay"] == 10000 and raw.loc["M2", "acct_mulaid_balance_before"] == 10000
    assert raw.loc["S2", "acct_pay"] == 0 and raw.loc["S2", "psn_cash_pay"] == raw.loc["S2", "psn_part_amt"]
    out = s.bills().set_index("mdtrt_id")
    assert out.loc["S1", "acct_paid_by"] == "own"
    # same result whatever the input order
    again = settle([son("S2", "2025-06-01", 300), bill("M2", "2025-05-20", "MOM", 400),
                    son("S1", "2025-04-02", 500), bill("M1", "2025-03-10", "MOM", 400)]).raw.set_index("mdtrt_id")
    cols = ["acct_pay", "acct_mulaid_pay", "psn_cash_pay"]
    pd.testing.assert_frame_equal(again.loc[raw.index, cols], raw[cols])


def test_own_account_pays_first_then_the_family_account():
    """A payee with an account of their own (a 职工 spouse): their balance first, the payer's for the rest."""
    members = pd.DataFrame({"psn_no": ["WIFE", "SON"], "begin": ["2020-01-01"] * 2, "acct_payer": ["SON", ""]})
    s = settle([bill("W1", "2025-03-10", "WIFE", 400, scheme="职工", psn_type="在职"),
                bill("W2", "2025-04-10", "WIFE", 400, scheme="职工", psn_type="在职")],
               members=members, accounts={"WIFE": 300, "SON": 1000})
    raw = s.raw.set_index("mdtrt_id")
    balanced(raw)
    assert raw.loc["W1", "acct_pay"] == 30000 and raw.loc["W1", "acct_mulaid_pay"] == 10000
    assert raw.loc["W2", "acct_pay"] == 0 and raw.loc["W2", "acct_mulaid_pay"] == 40000
    assert s.bills().set_index("mdtrt_id").loc["W1", "acct_paid_by"] == "own+family: SON"


def test_unknown_payer_balance_warns_missing():
    s = settle([bill("A", "2025-03-10", "MOM", 400)], accounts={})
    r = s.raw.iloc[0]
    assert r["acct_mulaid_pay"] == 0 and r["psn_cash_pay"] == 40000
    assert "missing: family account SON: balance unknown (not in --accounts)" in r["warnings"]


def test_before_the_rule_the_family_account_pays_nothing(tmp_path):
    """A link before the first family_account entry pays nothing, and the bill says why (fixture tables,
    which have values from 2020, with a national rule from 2023-01-01)."""
    import shutil
    root = tmp_path / "tables"
    shutil.copytree(ROOT / "tests" / "fixtures" / "tables", root)
    (root / "national.yaml").write_text(
        "sources:\n  fxn: {title: 测试国家规定, issuer: ybcalc tests, url: \"file://tests\", date: 2020-01-01, "
        "grade: official}\nfamily_account:\n  - from: 2023-01-01\n    source: fxn\n    pays: [selfpay, ownpay]\n"
        "    relatives: [父母]\n    cross_province: false\n", encoding="utf-8")
    book = load_book(root)
    members = pd.DataFrame({"psn_no": ["MOM"], "begin": ["2010-01-01"], "acct_payer": ["SON"]})
    mom = dict(bill("A", "2022-03-10", "MOM", 400, region="testland", scheme="390", psn_type="成年"), hosp_lv=3)
    r = settle([mom], members=members, book=book).raw.iloc[0]
    assert r["acct_mulaid_pay"] == 0 and r["psn_cash_pay"] == r["psn_part_amt"] > 0
    assert "before the family-account rule (2023-01-01)" in r["warnings"]
    later = settle([dict(mom, setl_time="2023-03-10")], members=members, book=book).raw.iloc[0]
    assert later["acct_mulaid_pay"] == later["psn_part_amt"] > 0


def test_cross_province_only_from_the_2026_notice():
    members = FAMILY.assign(参保地=["北京", "上海"])
    s = settle([bill("A", "2025-03-10", "MOM", 400), bill("B", "2026-03-10", "MOM", 400)], members=members)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["A", "acct_mulaid_pay"] == 0
    assert "insured in another province" in raw.loc["A", "warnings"]
    assert raw.loc["B", "acct_mulaid_pay"] > 0


def test_payer_without_region_is_taken_as_same_province_and_says_so():
    members = pd.DataFrame({"psn_no": ["MOM"], "begin": ["2020-01-01"], "acct_payer": ["SON"]})
    r = settle([bill("A", "2025-03-10", "MOM", 400)], members=members).raw.iloc[0]
    assert r["acct_mulaid_pay"] == 40000
    assert "gives no 参保地 for the payer" in r["warnings"]


def test_not_enrolled_has_no_family_payment():
    members = FAMILY.assign(参保开始日期=["2025-06-01", "2020-01-01"])
    r = settle([bill("A", "2025-03-10", "MOM", 400)], members=members).raw.iloc[0]
    assert r["acct_mulaid_pay"] == 0


def test_explain_shows_the_family_step_with_balances_and_source():
    s = settle([bill("A", "2025-03-10", "MOM", 400), bill("B", "2025-05-20", "MOM", 2000)])
    ex = s.explain("B", lang="zh")
    step = ex.frame[ex.frame.iloc[:, 1].str.startswith("共济账户支付")].iloc[0]
    assert step.iloc[1] == "共济账户支付（SON）" and step.iloc[3] == "600.00"
    assert "本人账户先付" in step.iloc[4] and "支付前 600.00，支付后 0.00" in step.iloc[4]
    assert "国办发〔2024〕38号" in step.iloc[5] and "四川省医疗保障局" in step.iloc[5]
    en = str(s.explain("B", lang="en"))
    assert "family account pays (SON): 600.00" in en and "balance before 600.00, after 0.00" in en


@pytest.mark.parametrize("rows, col, message", [
    # SON pays for MOM and is paid from DAD's account: one level only
    ({"psn_no": ["MOM", "SON"], "begin": ["2020-01-01"] * 2, "acct_payer": ["SON", "DAD"]}, "acct_payer",
     "one level deep"),
    ({"psn_no": ["MOM"], "begin": ["2020-01-01"], "acct_payer": ["MOM"]}, "acct_payer", "member's own"),
])
def test_read_members_refuses_a_chain_and_a_self_link(rows, col, message, tmp_path):
    f = tmp_path / "家庭.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    with pytest.raises(MembersError) as e:
        read_members(f)
    assert f"家庭.csv, row 3, column {col}" in str(e.value) or f"家庭.csv, row 2, column {col}" in str(e.value)
    assert message in str(e.value)
    with i18n.language("zh"), pytest.raises(MembersError) as e:
        read_members(f)
    assert "家庭.csv，第" in str(e.value) and "acct_payer 列" in str(e.value)


def test_cli_refuses_a_chain_without_traceback(tmp_path, capsys):
    f = tmp_path / "m.csv"
    pd.DataFrame({"人员编号": ["MOM", "SON"], "参保开始日期": ["2020-01-01"] * 2, "共济账户": ["SON", "DAD"]}).to_csv(
        f, index=False)
    rc = main(["score", str(ROOT / "examples/family_bills.csv"), "-o", str(tmp_path / "o.csv"),
               "--members", str(f), "--lang", "zh"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err and "共济只支持一层" in err


def test_national_family_account_rule_is_validated(tmp_path):
    import shutil
    root = tmp_path / "tables"
    shutil.copytree(ROOT / "tables", root)
    text = (root / "national.yaml").read_text(encoding="utf-8")
    text = text.replace("    pays: [selfpay, ownpay]         # “在定点医疗机构就医发生的由个人负担的医疗费用”",
                        "    pays: [everything]", 1).replace("    cross_province: true ", "    cross_province: maybe ", 1)
    (root / "national.yaml").write_text(text, encoding="utf-8")
    problems = [f"{p.path}: {p.message}" for p in load_book(root, strict=False).problems]
    joined = "\n".join(problems)
    assert "family_account[0].pays" in joined and "family_account[2].cross_province" in joined


def test_tables_show_national_lists_family_account(capsys):
    assert main(["tables", "show", "全国", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "职工医保个人账户家庭共济 自 2021-08-16" in out and "可跨省共济" in out and "限省内共济" in out
    assert "四川省医疗保障局" in out


def test_readme_family_example_output(capsys, tmp_path, monkeypatch):
    """The README's 家庭共济 commands print what the README shows (both READMEs carry the same block)."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8").split("### 家庭共济")[1].split("\n## ")[0]
    block = text.split("```\n")[1].split("```")[0]
    commands = [ln for ln in block.splitlines() if ln.startswith("ybcalc ")]
    shown = [ln.strip() for ln in block.splitlines() if not ln.startswith("ybcalc ") and ln.strip() not in ("", "…")]
    printed = ""
    for c in commands:
        args = c.split()[1:]
        args = [str(tmp_path / a) if a.endswith(".csv") and not a.startswith("examples") else a for a in args]
        assert main(args) == 0
        cap = capsys.readouterr()
        printed += cap.out + cap.err
    for ln in shown:
        assert ln in printed, ln


def test_batch_partitions_keep_a_family_together(tmp_path):
    """File scoring splits members over partitions; a payer and their payees share one balance, so they
    must land in one partition (else each partition would spend the whole balance)."""
    rows = []
    for i in range(40):                  # many members: several partitions of a few lines each
        rows.append(bill(f"X{i}", "2025-03-10", f"P{i:02d}", 100))
    mom = [bill("A", "2025-03-10", "MOM", 400), bill("B", "2025-05-20", "MOM", 2000)]
    sons = [son("S1", "2025-04-02", 500)]
    f = tmp_path / "bills.csv"
    pd.DataFrame(mom + rows + sons).to_csv(f, index=False)
    from ybcalc.batch import score_file
    accounts = pd.DataFrame({"psn_no": ["SON"], "acct_balance": [1000]})
    whole = score_file(f, BOOK, members=FAMILY, state=accounts).settlement.raw.set_index("mdtrt_id")
    split = score_file(f, BOOK, members=FAMILY, state=accounts, partition_lines=3).settlement.raw.set_index("mdtrt_id")
    cols = ["acct_pay", "acct_mulaid_pay", "psn_cash_pay"]
    pd.testing.assert_frame_equal(split.loc[whole.index, cols], whole[cols])
    assert whole.loc["A", "acct_mulaid_pay"] + whole.loc["S1", "acct_pay"] + whole.loc["B", "acct_mulaid_pay"] == 100000
