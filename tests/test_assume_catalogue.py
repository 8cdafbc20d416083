"""Stated assumptions (--assume) and item catalogues (--catalogue): issue 15 §2, §3."""
from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import ybcalc
from ybcalc.assume import AssumptionError, AssumptionNotUsedWarning, apply_assumptions, parse_assumption
from ybcalc.batch import BillWriter, score_file, score_frame
from ybcalc.catalogue import CatalogueError, load_catalogue
from ybcalc.cli import main
from ybcalc.i18n import language

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ASSUMED = "假设值，用户给定"
ASSUMED_EN = "assumed value, given by the user"


def example_bills(*drop) -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / "bills.csv", dtype=str, keep_default_na=False).drop(columns=list(drop))


@pytest.fixture(scope="module")
def book():
    return ybcalc.load_tables()


# ---- the done-when check ---------------------------------------------------------------
def test_shipped_bills_without_class_or_share_are_the_example_bills_less_those_columns():
    for name, drop in (("bills_no_share.csv", ["selfpay_prop"]), ("bills_no_class.csv", ["chrgitm_lv", "selfpay_prop"])):
        shipped = pd.read_csv(EXAMPLES / name, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(shipped, example_bills(*drop))


def test_example_bills_without_class_and_share_settle_completely_with_the_catalogue(tmp_path):
    bare = EXAMPLES / "bills_no_class.csv"
    out, ref = tmp_path / "out.csv", tmp_path / "ref.csv"
    assert main(["score", str(bare), "-o", str(out), "-q", "--catalogue", str(EXAMPLES / "catalogue.csv")]) == 0
    assert main(["score", str(EXAMPLES / "bills.csv"), "-o", str(ref), "-q"]) == 0
    got, want = pd.read_csv(out, dtype=str), pd.read_csv(ref, dtype=str)
    # every line of every bill was classed by the catalogue, and the settlement is that of the full file
    n_lines = example_bills().groupby("mdtrt_id").size()
    assert (got.set_index("mdtrt_id")["catalogue_lines"].astype(int) == n_lines.reindex(got["mdtrt_id"]).to_numpy()).all()
    pd.testing.assert_frame_equal(got.drop(columns=["catalogue_lines"]), want)
    assert main(["score", str(bare), "-o", str(out), "-q", "--lang", "zh",
                 "--catalogue", str(EXAMPLES / "catalogue.csv")]) == 0
    assert "目录分类明细数" in pd.read_csv(out, dtype=str).columns


def test_every_bill_that_needed_the_assumed_share_is_flagged(tmp_path, capsys):
    noprop = EXAMPLES / "bills_no_share.csv"
    out, rejects = tmp_path / "out.csv", tmp_path / "rejects.csv"
    # without the assumption: the 乙类 lines without their own share are rejected, the reason says what to do
    assert main(["score", str(noprop), "-o", str(out), "--rejects", str(rejects)]) == 3
    rej = pd.read_csv(rejects, dtype=str)
    needed = set(rej["mdtrt_id"])
    assert needed and rej["reason"].str.contains(r"--assume \w+:乙类先行自付=<ratio>", regex=True).all()
    assert rej["reason"].str.contains("--catalogue", regex=False).all()
    capsys.readouterr()
    assert main(["score", str(noprop), "-o", str(out), "--assume", "乙类先行自付=0.10"]) == 0
    err = capsys.readouterr().err
    bills = pd.read_csv(out, dtype=str, keep_default_na=False)
    flagged = bills[bills["warnings"].str.contains(ASSUMED_EN)]
    assert set(flagged["mdtrt_id"]) == needed                       # exactly the bills that needed it
    assert flagged["warnings"].str.contains("assumption: class-B co-payment share=0.1 (assumed value", regex=False).all()
    assert flagged["policy_version"].str.contains("+assume:selfpay_prop=0.1", regex=False).all()
    assert not bills.loc[~bills["mdtrt_id"].isin(needed), "policy_version"].str.contains("assume").any()
    assert f"bills with assumed values {len(needed)}" in err       # the summary counts them
    assert "rejected 0" in err
    assert main(["score", str(noprop), "-o", str(out), "--assume", "乙类先行自付=0.10", "--lang", "zh"]) == 0
    err = capsys.readouterr().err
    bills = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert bills["提示"].str.contains(f"假设: 乙类先行自付比例=0.1（{ASSUMED}）", regex=False).sum() == len(needed)
    assert f"使用假设值的账单 {len(needed)}" in err


def test_the_table_key_and_percent_work_as_the_chinese_name(book):
    a, b = parse_assumption("selfpay_prop=0.10"), parse_assumption("乙类先行自付比例=10%")
    assert a.target == b.target and a.value == b.value == 0.1


# ---- explain, library ------------------------------------------------------------------------
def sh_bill(**extra):
    rows = [{"mdtrt_id": "V1", "psn_no": "P1", "setl_time": "2025-03-01", "insuplc": "上海", "insutype": "职工",
             "psn_type": "退休", "med_type": "住院", "hosp_lv": 3, "item_name": "床位费", "chrgitm_lv": "甲",
             "det_item_fee_sumamt": 2000},
            {"mdtrt_id": "V1", "psn_no": "P1", "setl_time": "2025-03-01", "insuplc": "上海", "insutype": "职工",
             "psn_type": "退休", "med_type": "住院", "hosp_lv": 3, "item_name": "头孢曲松钠注射液",
             "chrgitm_lv": "乙", "det_item_fee_sumamt": 3000}]
    for r in rows:
        r.update(extra)
    return rows


def test_settle_explain_and_policy_version_say_the_value_was_assumed(book):
    with pytest.raises(ybcalc.api.SettlementError, match="乙类先行自付"):
        ybcalc.settle(sh_bill(), book)
    with language("zh"):
        res = ybcalc.settle(sh_bill(), book, assume=["上海:乙类先行自付=0.10"])
        assert res["preselfpay_amt"] == 300
        assert f"假设: 上海:乙类先行自付比例=0.1（{ASSUMED}）" in res.bills()["warnings"].iat[0]
        assert "+assume:shanghai:selfpay_prop=0.1" in res.policy_versions()[0]
        ex = res.explain()
        step = ex.frame[ex.frame["项目"] == "乙类先行自付"].iloc[0]
        assert step["来源"].startswith(f"[{ASSUMED}] 上海:乙类先行自付比例=0.1")
        assert any(ASSUMED in w for w in ex.warnings)
        assert "+assume:" in ex.header["政策版本"]
    res = ybcalc.settle(sh_bill(), book, assume=["上海:乙类先行自付=0.10"])
    en = res.explain(lang="en")
    assert any(ASSUMED_EN in w for w in en.warnings)
    step = en.frame[en.frame["item"] == "class B co-payment"].iloc[0]
    assert step["source"].startswith(f"[{ASSUMED_EN}] 上海:class-B co-payment share=0.1")
    # load_policy takes the same
    pol = ybcalc.load_policy("上海", "职工", assume="乙类先行自付=0.10")
    assert ybcalc.settle(sh_bill(), pol)["preselfpay_amt"] == 300


def test_an_assumption_for_one_region_leaves_the_others_alone(book):
    other = [dict(r, insuplc="北京", psn_type="在职") for r in sh_bill()]
    res = ybcalc.settle(sh_bill() + [dict(r, mdtrt_id="V2", psn_no="P2") for r in other], book,
                        assume=["上海:乙类先行自付=0.10"], strict=False)
    assert list(res.bills()["mdtrt_id"]) == ["V1"]
    assert "乙类先行自付" in res.errors["V2"]


def test_a_sourced_value_is_never_overridden_and_the_user_is_told(book, capsys, tmp_path):
    bill = [dict(r, chrgitm_lv="甲") for r in sh_bill()]
    plain = ybcalc.settle(bill, book)
    with pytest.warns(AssumptionNotUsedWarning, match="上海职工住院.* have a sourced value, which an assumption never overrides"):
        res = ybcalc.settle(bill, book, assume=["上海/职工:住院起付线=1"])
    assert res["act_pay_dedc"] == plain["act_pay_dedc"] == 1200
    assert "assume" not in res.bills()["warnings"].iat[0] + res.policy_versions()[0]
    path = tmp_path / "b.csv"
    pd.DataFrame(bill).to_csv(path, index=False)
    assert main(["score", str(path), "-o", str(tmp_path / "o.csv"), "-q", "--assume", "上海:住院起付线=1"]) == 0
    assert "which an assumption never overrides" in capsys.readouterr().err
    assert main(["score", str(path), "-o", str(tmp_path / "o.csv"), "-q", "--lang", "zh",
                 "--assume", "上海:住院起付线=1"]) == 0
    assert "上海职工住院（含急诊观察室留院观察）、上海居民住院（含急诊观察室留院观察） 已有来源的数值，不用假设值覆盖" \
        in capsys.readouterr().err


def test_assumed_parameters_other_than_the_share(book):
    """起付线, 支付比例, 封顶线 and 大病 terms fill what a table leaves missing (攀枝花 has no 2023–2025 values)."""
    bill = [dict(r, insuplc="攀枝花", psn_type="在职") for r in sh_bill()]
    res = ybcalc.settle(bill, book, strict=False)
    assert len(res.errors) == 1
    with pytest.raises(ybcalc.api.SettlementError, match="--assume 攀枝花:住院起付线=<yuan>"):   # the reason says how
        ybcalc.settle(bill, book, assume=["乙类先行自付=0.1"])
    res = ybcalc.settle(bill, book, assume=["乙类先行自付=0.1", "攀枝花:住院起付线=1000", "攀枝花:住院支付比例=0.8",
                                            "攀枝花:住院封顶线=200000", "大额起付线=0", "大额支付比例=0.8"])
    assert res["preselfpay_amt"] == 300 and res["act_pay_dedc"] == 1000
    assert res["hifp_pay"] == (5000 - 300 - 1000) * 0.8
    warn = res.bills()["warnings"].iat[0]
    for name in ("inpatient deductible=1000", "inpatient fund payment rate=0.8", "inpatient yearly cap=200000"):
        assert f"攀枝花:{name} (assumed value, given by the user)" in warn
    assert res.raw["cap_amount"].iat[0] == 200000 * 100
    version = res.policy_versions()[0]
    for key in ("inpatient.deductible=1000", "inpatient.ratio=0.8", "inpatient.cap=200000", "selfpay_prop=0.1"):
        assert key in version


@pytest.mark.parametrize("spec, zh, en", [
    ("乙类先行自付", "写成 参数=值", "write NAME=VALUE"),
    ("乙类先行自付=abc", "不是比例", "is not a ratio"),
    ("乙类先行自付=1.5", "比例须在 0–1 之间", "a ratio must be within 0..1"),
    ("起付线=1000", "要写明就诊类别", "needs its visit type"),
    ("某某参数=1", "不认识的参数名", "unknown parameter"),
    ("火星:乙类先行自付=0.1", "不认识的地区", "unknown region"),
    ("住院起付线=-5", "金额不能为负", "cannot be negative"),
    ("大病起付线=20000", "还要给出 大病保险支付比例", "also give 大病保险支付比例"),
])
def test_bad_assumptions_get_a_clear_error_in_either_language_without_traceback(spec, zh, en, tmp_path, capsys):
    with pytest.raises(AssumptionError, match=en):
        apply_assumptions(ybcalc.load_tables(), [spec])
    path = tmp_path / "b.csv"
    pd.DataFrame(sh_bill()).to_csv(path, index=False)
    for lang, message in (("en", en), ("zh", zh)):
        assert main(["score", str(path), "-o", str(tmp_path / "o.csv"), "--assume", spec, "--lang", lang]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_assumptions_reach_worker_processes(tmp_path):
    noprop = tmp_path / "noprop.csv"
    example_bills("selfpay_prop", "chrgitm_lv").to_csv(noprop, index=False)
    catalogue = tmp_path / "cat.csv"         # classes only: the 乙类 share is the assumed one
    pd.read_csv(EXAMPLES / "catalogue.csv", dtype=str).drop(columns=["自付比例"]).to_csv(catalogue, index=False)
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.csv"
        w = BillWriter(out, "en")
        res = score_file(noprop, None, partition_lines=10, sink=w, jobs=jobs, assume=["乙类先行自付=0.10"],
                         catalogue=catalogue)
        w.close()
        assert res.streamed["workers"] == (0 if jobs == 1 else 2)
        assert len(res.rejects) == 0
        outs.append((pd.read_csv(out, dtype=str), res.summary()))
    (a, sa), (b, sb) = outs
    pd.testing.assert_frame_equal(a, b)
    assert sa == sb and "bills with assumed values" in sa


def test_assumptions_and_catalogue_reach_dask_workers(tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask
    import dask.dataframe as dd

    import ybcalc.dask as ydask
    path = tmp_path / "b.csv"
    example_bills("selfpay_prop", "chrgitm_lv").to_csv(path, index=False)
    catalogue = tmp_path / "cat.csv"
    pd.read_csv(EXAMPLES / "catalogue.csv", dtype=str).drop(columns=["自付比例"]).to_csv(catalogue, index=False)
    local = score_frame(pd.read_csv(path, dtype=str, keep_default_na=False), assume=["乙类先行自付=0.10"],
                        catalogue=catalogue)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl):
        ddf = dd.read_csv(str(path), dtype=str, keep_default_na=False, blocksize=4000)
        bills, rejects = dask.compute(*ydask.score(ddf, assume=["乙类先行自付=0.10"], catalogue=catalogue))
    assert len(rejects) == 0 and len(local.rejects) == 0
    want = local.settlement.bills()[ydask.BILL_COLUMNS + ["catalogue_lines"]]     # money: exact yuan both
    pd.testing.assert_frame_equal(bills.sort_values("mdtrt_id").reset_index(drop=True),
                                  want.sort_values("mdtrt_id").reset_index(drop=True), check_dtype=False)
    assert bills["policy_version"].str.contains("+assume:", regex=False).any()


def test_explain_compare_and_diff_take_assumptions_and_catalogue(tmp_path, capsys):
    bare = tmp_path / "bare.csv"
    example_bills("selfpay_prop", "chrgitm_lv").to_csv(bare, index=False)
    cat = str(EXAMPLES / "catalogue.csv")
    assert main(["explain", str(bare), "--mdtrt-id", "BJ002-20250726", "--catalogue", cat]) == 0
    assert main(["explain", str(bare), "--mdtrt-id", "BJ002-20250726"]) == 2
    capsys.readouterr()
    noprop = tmp_path / "noprop.csv"
    example_bills("selfpay_prop").to_csv(noprop, index=False)
    assert main(["explain", str(noprop), "--mdtrt-id", "BJ002-20250726", "--assume", "乙类先行自付=0.10",
                 "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert f"来源: [{ASSUMED}] 乙类先行自付比例=0.1" in out and "+assume:selfpay_prop=0.1" in out
    assert main(["diff", str(noprop), "--a", "2025-01-01", "--b", "2025-06-01", "--assume", "乙类先行自付=0.10"]) == 0
    assert "bills compared: 39" in capsys.readouterr().out
    one = tmp_path / "one.csv"
    example_bills("selfpay_prop").query("mdtrt_id == 'BJ002-20250726'").to_csv(one, index=False)
    assert main(["compare", str(one), "--regions", "北京,上海", "--assume", "乙类先行自付=0.10"]) == 0
    assert main(["compare", str(one), "--regions", "北京,上海"]) == 1


# ---- catalogues --------------------------------------------------------------------------------
def write(tmp_path, text, name="cat.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def line(**kw):
    base = {"mdtrt_id": "V1", "psn_no": "P1", "setl_time": "2025-03-01", "insuplc": "上海", "insutype": "职工",
            "psn_type": "退休", "med_type": "住院", "hosp_lv": 3, "det_item_fee_sumamt": 1000}
    base.update(kw)
    return base


def test_catalogue_matches_national_code_first_then_exact_name(tmp_path, book):
    cat = write(tmp_path, "item_code,item_name,chrgitm_lv,selfpay_prop,pric_uplmt_amt\n"
                          "C1,药甲,乙,0.2,\n"
                          "C2,药乙,乙,10%,50\n"
                          ",床位费,甲,,\n")
    lines = [line(item_code="C1", item_name="药乙"),                  # code wins over name
             line(item_code="", item_name="药乙", cnt=2),              # name, with its limit × quantity
             line(item_code="X9", item_name="床位费"),                 # unknown code: then the name
             line(item_name="床位费", chrgitm_lv="丙"),                 # a line's own class stands
             line(item_name="药乙", chrgitm_lv="乙", selfpay_prop="0")]  # and its own share
    res = ybcalc.settle(lines, book, catalogue=cat)
    L = res.lines_raw
    assert list(L["selfpay_rate"]) == [200000, 100000, 0, 0, 0]
    assert list(L["overlmt_selfpay"]) == [0, 90000, 0, 0, 95000]
    assert list(L["fulamt_ownpay_amt"]) == [0, 0, 0, 100000, 0]
    assert res.bills()["catalogue_lines"].iat[0] == 4        # all but the 丙 line took a value
    # a line that matches nothing behaves as without a catalogue (here: no class, a reject)
    with pytest.raises(ybcalc.BillError, match="chrgitm_lv"):
        ybcalc.settle([line(item_name="不在目录里", chrgitm_lv="")], book, catalogue=cat)


def test_catalogue_from_parquet_and_chinese_headers(tmp_path, book):
    p = tmp_path / "cat.parquet"
    pd.DataFrame({"医疗目录编码": ["C1"], "项目名称": ["药甲"], "收费项目等级": ["乙"], "自付比例": ["0.1"]}).to_parquet(p)
    res = ybcalc.settle([line(item_code="C1")], book, catalogue=p)
    assert res["preselfpay_amt"] == 100


@pytest.mark.parametrize("text, row, column, zh, en", [
    ("医疗目录编码,项目名称,收费项目等级\nC1,甲药,乙\nC2,乙药,甲\nC1,甲药,甲\n", 4, "收费项目等级", "已在第 2 行出现",
     "is listed on row 2 too"),
    ("item_code,chrgitm_lv\nC1,丁\n", 2, "chrgitm_lv", "不认识的收费项目等级", "unknown catalogue class"),
    ("item_code,selfpay_prop\nC1,0.1\nC2,1.5\n", 3, "selfpay_prop", "自付比例须在 0–1 之间", "within 0..1"),
    ("item_code,pric_uplmt_amt\nC1,abc\n", 2, "pric_uplmt_amt", "限价不是金额", "not an amount"),
    ("item_code,item_name,chrgitm_lv\n,,甲\n", 2, None, "既没有医疗目录编码也没有项目名称", "neither an item code nor a name"),
    ("项目名称,收费项目等级\n药,甲\n药,乙\n", 3, "收费项目等级", "已在第 2 行出现", "is listed on row 2 too"),
])
def test_catalogue_errors_name_file_row_and_column(tmp_path, text, row, column, zh, en, capsys):
    p = write(tmp_path, text)
    with pytest.raises(CatalogueError) as exc:
        load_catalogue(p)
    msg = str(exc.value)
    assert f"catalogue {p}, row {row}" in msg and en in msg
    if column:
        assert f"column {column}" in msg
    with language("zh"), pytest.raises(CatalogueError) as exc:
        load_catalogue(p)
    msg = str(exc.value)
    assert f"目录文件 {p} 第 {row} 行" in msg and zh in msg
    if column:
        assert f"列 {column}" in msg
    bills = tmp_path / "b.csv"
    pd.DataFrame([line(item_name="药", chrgitm_lv="甲")]).to_csv(bills, index=False)
    assert main(["score", str(bills), "-o", str(tmp_path / "o.csv"), "--catalogue", str(p), "--lang", "zh"]) == 2
    err = capsys.readouterr().err
    assert zh in err and "Traceback" not in err


def test_catalogue_without_key_or_value_columns_is_refused(tmp_path):
    with pytest.raises(CatalogueError, match="item_code"):
        load_catalogue(write(tmp_path, "名称,收费项目等级\na,甲\n"))
    with pytest.raises(CatalogueError, match="at least one of"):
        load_catalogue(write(tmp_path, "item_code,备注\nC1,x\n"))
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "nope.csv")


def test_a_name_shared_by_differently_classed_codes_is_not_matched_by_name(tmp_path, book):
    cat = load_catalogue(write(tmp_path, "item_code,item_name,chrgitm_lv\nC1,药,甲\nC2,药,乙\n"))
    with pytest.raises(ybcalc.BillError):
        ybcalc.settle([line(item_name="药", chrgitm_lv="")], book, catalogue=cat)
    assert ybcalc.settle([line(item_code="C2", item_name="药")], book, catalogue=cat, assume="乙类先行自付=0.1",
                         )["preselfpay_amt"] == 100


def test_without_a_catalogue_no_column_is_added(book):
    res = ybcalc.settle([line(item_name="床位费", chrgitm_lv="甲")], book)
    assert "catalogue_lines" not in res.bills().columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "assumptions" not in res.raw.columns


def test_widgets_take_assumptions():
    from ybcalc.widgets import BillExplainer
    ui = BillExplainer(region="攀枝花", scheme="职工", psn_type="在职", class_c=0, excluded=0)
    assert ui.error and "攀枝花" in ui.error
    with language("zh"):
        ui = BillExplainer(region="攀枝花", scheme="职工", psn_type="在职", class_c=0, excluded=0,
                           assume=["攀枝花:住院起付线=1000", "攀枝花:住院支付比例=0.8", "攀枝花:住院封顶线=200000"])
    assert ui.error is None, ui.error
    assert ui.settlement["act_pay_dedc"] == 1000
    assert ASSUMED in ui.explain_html.value
    assert ui.explanation.header["政策版本"].endswith("+assume:panzhihua:inpatient.cap=200000,"
                                                    "panzhihua:inpatient.deductible=1000,panzhihua:inpatient.ratio=0.8")


def test_readme_shows_what_the_assume_and_catalogue_commands_print():
    """The `$ ybcalc …` lines of the README's --assume/--catalogue sections, with what they print (an
    excerpt where a line is '…'): every line shown is a line the command prints today."""
    import re
    import shlex
    import subprocess
    import sys
    root = EXAMPLES.parent
    hash_ = re.compile(r"#[0-9a-f]{8}\b")
    for name in ("README.md", "README.zh.md"):
        text = (root / name).read_text(encoding="utf-8")
        blocks = re.findall(r"```\n(\$ .*?)```", text, re.S)
        assert len(blocks) >= 3, name
        for block in blocks:
            for run in re.split(r"^(?=\$ )", block, flags=re.M):
                if not run.startswith("$ ybcalc"):
                    continue
                command, *shown = run.rstrip("\n").split("\n")
                if "tables new" in command or "ybcalc-tables" in command:
                    continue      # the worked example of a user's own table: tests/test_user_tables.py runs it
                    #               in a folder of its own (it writes ybcalc-tables/ where it runs)
                done = subprocess.run([sys.executable, "-m", "ybcalc", *shlex.split(command)[2:]], cwd=root,
                                      capture_output=True, text=True, encoding="utf-8")
                printed = {hash_.sub("#", ln.rstrip()) for ln in (done.stderr + done.stdout).splitlines()}
                for ln in shown:
                    if ln.strip() != "…":
                        assert hash_.sub("#", ln.rstrip()) in printed, (name, command, ln)


def test_an_output_never_overwrites_the_catalogue(tmp_path, capsys):
    cat = tmp_path / "cat.csv"
    cat.write_text((EXAMPLES / "catalogue.csv").read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["score", str(EXAMPLES / "bills_no_class.csv"), "-o", str(cat), "--catalogue", str(cat)]) == 2
    assert "the catalogue file" in capsys.readouterr().err
    assert cat.read_text(encoding="utf-8") == (EXAMPLES / "catalogue.csv").read_text(encoding="utf-8")
