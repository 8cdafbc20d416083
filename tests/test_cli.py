"""The command line as a user runs it, on the bundled example."""
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ybcalc.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bills.csv"
ACCOUNTS = ROOT / "examples" / "accounts.csv"
SETTLEMENT = ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
              "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt",
              "acct_pay", "psn_cash_pay"]


def test_score_example_one_row_per_bill_balanced(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["score", str(EXAMPLE), "-o", str(out), "--accounts", str(ACCOUNTS)]) == 0
    df = pd.read_csv(out, dtype={"mdtrt_id": str})
    lines = pd.read_csv(EXAMPLE, dtype=str)
    assert len(df) == lines["mdtrt_id"].nunique()
    assert list(df.columns[:7]) == ["mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "med_type", "benefit"]
    assert set(SETTLEMENT) <= set(df.columns) and "policy_version" in df.columns
    fen = (df[SETTLEMENT] * 100).round().astype("int64")
    assert (fen.medfee_sumamt == fen.fund_pay_sumamt + fen.psn_part_amt).all()
    assert (fen.psn_part_amt == fen.acct_pay + fen.psn_cash_pay).all()
    assert (fen.medfee_sumamt == fen.fulamt_ownpay_amt + fen.overlmt_selfpay + fen.preselfpay_amt
            + fen.inscp_scp_amt).all()
    assert fen.acct_pay.sum() > 0 and fen.fulamt_ownpay_amt.sum() > 0 and fen.overlmt_selfpay.sum() > 0
    err = capsys.readouterr().err
    assert re.search(r"rows read ([\d,]+) = scored \1 \+ rejected 0", err)


def test_score_chinese_headers(tmp_path):
    out = tmp_path / "s.csv"
    assert main(["score", str(EXAMPLE), "-o", str(out), "--lang", "zh", "-q"]) == 0
    head = out.read_text(encoding="utf-8-sig").splitlines()[0]
    assert head.startswith("就诊ID,人员编号,结算时间,参保地") and "统筹基金支出" in head and "个人现金支出" in head


def test_score_with_rejects_exits_3_and_lists_them(tmp_path):
    bad = tmp_path / "bad.csv"
    text = EXAMPLE.read_text(encoding="utf-8").splitlines()
    cols = text[0].split(",")
    row = text[3].split(",")
    row[cols.index("det_item_fee_sumamt")] = "12x"
    text[3] = ",".join(row)
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    out, rej = tmp_path / "s.csv", tmp_path / "r.csv"
    assert main(["score", str(bad), "-o", str(out), "--rejects", str(rej), "-q"]) == 3
    r = pd.read_csv(rej)
    assert r.loc[r["row"] == 4, "column"].iat[0] == "det_item_fee_sumamt"
    assert main(["score", str(bad), "-o", str(out), "--allow-rejects", "-q"]) == 0


def test_explain_cli(capsys):
    mid = pd.read_csv(EXAMPLE, dtype=str).query("med_type == '21' and insuplc == '北京'")["mdtrt_id"].iat[0]
    assert main(["explain", str(EXAMPLE), "--mdtrt-id", mid, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    for words in ("医疗费总额", "起付线", "统筹基金支付", "来源", "个人现金支付", "超限价自费"):
        assert words in out
    assert main(["explain", str(EXAMPLE), "--mdtrt-id", mid, "--lang", "en"]) == 0
    assert "pooled fund pays" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["explain", str(EXAMPLE), "--mdtrt-id", "nope"]) == 2
    assert "settled bill(s), e.g." in capsys.readouterr().err
    assert main(["explain", str(EXAMPLE), "--mdtrt-id", mid[:-1] + "x"]) == 2      # a mistyped id
    assert f"did you mean {mid}" in capsys.readouterr().err


def test_explain_without_id(capsys):
    """A file of one bill is explained without --mdtrt-id; a file of several names them instead of guessing."""
    one = ROOT / "examples" / "my_bill.csv"
    assert main(["explain", str(one), "--lang", "zh"]) == 0
    assert "ZY2025001" in capsys.readouterr().out
    assert main(["explain", str(EXAMPLE), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert "张账单，请用 --mdtrt-id 选一张" in err and "Traceback" not in err


def test_tables_commands(capsys):
    assert main(["tables", "validate"]) == 0
    assert main(["tables", "list"]) == 0
    listing = capsys.readouterr().out
    for region in ("北京", "攀枝花", "泸州", "楚雄州", "莆田", "石家庄", "上海", "广州", "深圳", "杭州"):
        assert region in listing
    assert main(["tables", "show", "北京", "--scheme", "职工"]) == 0
    shown = capsys.readouterr().out
    assert "inpatient · deductible from 2023-01-01:" in shown and "source:" in shown
    assert "basis: a deductible for each admission" in shown
    assert main(["tables", "show", "北京", "--scheme", "职工", "--lang", "zh"]) == 0
    shown = capsys.readouterr().out
    assert "住院 · 起付线 自 2023-01-01 起：" in shown and "计算方式: 起付线按每次住院计" in shown and "来源:" in shown
    assert "医院等级 基层/社区或一级 → 90%、95%、97%" in shown and "人员类别 退休：个人负担部分乘以 0.3" in shown


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "ybcalc", "tables", "validate"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ok:")
