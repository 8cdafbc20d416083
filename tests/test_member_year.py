"""A member's year across the engines and front ends (issue 17): ``--members`` with Dask, families routed
together, ``compare --members``, the year's timeline for the notebook."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ybcalc.batch import score_file
from ybcalc.cli import main
from ybcalc.routing import family_roots, partition_rows, route_keys

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bills.csv"
ACCOUNTS = ROOT / "examples" / "accounts.csv"

# BJ003 waits (re-enrolled after a break), SH003's span ends mid-year (later bills: not enrolled),
# BJ002's costs may be paid from BJ001's account (家庭共济), and HZ002 from HZ001's
MEMBERS = ("人员编号,参保开始日期,参保结束日期,缴费日期,断缴年数,补缴年数,共济账户\n"
           "BJ003,2025-03-01,,2025-03-01,2,0,\n"
           "BJ002,2020-01-01,,,,,BJ001\n"
           "BJ001,2020-01-01,,,,,\n"
           "SH003,2025-02-01,2025-06-30,2025-02-10,0,0,\n"
           "HZ002,2021-01-01,,,,,HZ001\n")


@pytest.fixture()
def members_file(tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(MEMBERS, encoding="utf-8")
    return path


# ---- routing: a family travels together -------------------------------------------------------------
def test_family_roots_link_payers_and_payees_over_all_spans():
    spans = pd.DataFrame({"psn_no": ["kid", "mum", "dad", "kid", "gran", "alone"],
                          "acct_payer": ["mum", "", "", "dad", "dad", ""]})
    roots = family_roots(spans)
    # kid is paid by mum in one span and by dad in another: one family, rooted at its first payer
    assert roots == {"kid": "dad", "mum": "dad", "dad": "dad", "gran": "dad"}
    assert family_roots(spans.assign(acct_payer="")) == {}


def test_family_rows_land_in_one_partition_locally_and_on_dask():
    import pyarrow as pa
    n = 400
    psn = np.array([f"P{i:04d}" for i in range(n)], dtype=object)
    spans = pd.DataFrame({"psn_no": psn, "acct_payer": [f"P{i - 1:04d}" if i % 3 == 2 else "" for i in range(n)]})
    family = family_roots(spans)
    rows = np.repeat(np.arange(n), 3)
    table = pa.table({"mdtrt_id": [f"B{r}-{j}" for j, r in enumerate(rows)], "psn_no": psn[rows].tolist()})
    alone = partition_rows(table, 16, "mdtrt_id", "psn_no")
    part = partition_rows(table, 16, "mdtrt_id", "psn_no", family)
    root = pd.Series(psn[rows]).map(family).fillna(pd.Series(psn[rows])).to_numpy()
    assert (pd.Series(part).groupby(root).nunique() == 1).all()
    payee = np.array([i % 3 == 2 for i in rows])
    # without the family, payer and payee mostly go apart: the test can tell
    assert (alone[payee] != alone[np.flatnonzero(payee) - 3]).any()
    keys = route_keys(pd.Series(table["mdtrt_id"].to_pylist()), pd.Series(psn[rows]), set(), family)
    assert (keys.to_numpy() == root).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")     # no NaN cast to integers where a part lacks a column
def test_local_partitions_keep_a_family_together(tmp_path, members_file):
    """Many small partitions settle as the whole file at once, with families linked."""
    whole = score_file(EXAMPLE, state=_accounts(), members=members_file)
    parts = score_file(EXAMPLE, state=_accounts(), members=members_file, partition_lines=20)
    a = whole.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True)
    b = parts.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert parts.members_absent == whole.members_absent == 8


def _accounts():
    from ybcalc.batch import read_accounts
    return read_accounts(ACCOUNTS)


# ---- --members on Dask --------------------------------------------------------------------------------
def test_cli_members_with_dask_writes_the_local_file_and_summary(tmp_path, members_file, capsys):
    """`--members` used to be refused with `--engine dask`; the same files now give the same output
    (eligibility column included) and the same summary on both engines."""
    pytest.importorskip("distributed")

    def run(out, *engine):
        capsys.readouterr()
        code = main(["score", str(EXAMPLE), "-o", str(out), "--members", str(members_file), "--accounts",
                     str(ACCOUNTS), *engine])
        return code, capsys.readouterr().err.splitlines()
    local, dask_ = tmp_path / "local.csv", tmp_path / "dask.csv"
    (c1, err1), (c2, err2) = run(local), run(dask_, "--engine", "dask", "--workers", "2")
    assert c1 == c2 == 0
    assert [ln for ln in err1 if not ln.startswith("wrote")] == [ln for ln in err2 if not ln.startswith("wrote")]
    assert "8 member(s) not in the members file: settled as always enrolled" in err2
    x = pd.read_csv(local, dtype=str, keep_default_na=False)
    y = pd.read_csv(dask_, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(x, y)
    elig = y.set_index("mdtrt_id")["eligibility"]
    assert elig.str.startswith("no: waiting period until").any() and (elig == "no: not enrolled").any()


def test_dask_library_takes_members(tmp_path, members_file):
    pytest.importorskip("distributed")
    import dask
    import dask.dataframe as dd

    import ybcalc.dask as ydask
    local = score_file(EXAMPLE, members=members_file)
    ddf = dd.read_csv(str(EXAMPLE), dtype=str, keep_default_na=False, blocksize=6000)
    assert ddf.npartitions > 1
    with dask.config.set(scheduler="sync"):
        bills, rejects = dask.compute(*ydask.score(ddf, members=str(members_file), npartitions=5))
    want = local.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True)
    got = bills.sort_values("mdtrt_id").reset_index(drop=True)
    assert list(got.columns) == list(want.columns)           # the members' columns too
    pd.testing.assert_frame_equal(got, want[got.columns], check_dtype=False)
    assert not len(rejects)


# ---- compare --members ---------------------------------------------------------------------------------
def test_compare_applies_the_member_s_waiting_period_in_each_scenario(members_file):
    """BJ003 re-enrolled on 2025-03-01 after a two-year break: as a 居民 the bill of 2025-06-20 falls in
    the national waiting period (no fund payment) wherever it is incurred; as a 职工 it is paid."""
    from ybcalc import scenarios as S
    bill = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    bill = bill[bill["mdtrt_id"] == "BJ003-20251027"]
    t = S.compare_scenarios(bill, ["北京", "杭州"], ["在职", "居民"], [3], "2025-06-20", members=str(members_file))
    assert t.attrs["psn_no"] == "BJ003"
    res = t[t["scheme"] == "居民"]
    emp = t[t["scheme"] == "职工"]
    assert (res["fund_pay_sumamt"] == 0).all() and (res["psn_part_amt"] == res["medfee_sumamt"]).all()
    assert (res["eligibility"] == "no: waiting period until 2025-07-31").all()
    assert (res["wait_months"] == 5).all() and (res["benefit_from"] == "2025-08-01").all()
    assert (emp["fund_pay_sumamt"] > 0).all() and (emp["eligibility"] == "yes").all()
    # the same bill after the wait is paid as a 居民 too; without a members file nothing changes
    later = S.compare_scenarios(bill, ["北京"], ["居民"], [3], "2025-09-01", members=str(members_file))
    assert later["fund_pay_sumamt"].iat[0] > 0 and later["eligibility"].iat[0] == "yes"
    plain = S.compare_scenarios(bill, ["北京"], ["居民"], [3], "2025-06-20")
    assert plain["fund_pay_sumamt"].iat[0] > 0 and "eligibility" not in plain
    # a member the file does not list: as always enrolled, and the table says so
    other = S.compare_scenarios(bill, ["北京"], ["居民"], [3], "2025-06-20", members=str(members_file), psn_no="X9")
    assert other["fund_pay_sumamt"].iat[0] > 0
    assert other["eligibility"].iat[0] == "not in the members file (as always enrolled)"


def test_compare_rewards_raise_the_resident_critical_illness_cap():
    from ybcalc import scenarios as S
    members = pd.DataFrame({"psn_no": ["R1"], "begin": ["2019-01-01"], "continuous_years": ["6"],
                            "prev_year_no_claim": ["是"]})
    bill = S.sample_bill(20000, region="北京", scheme="居民", psn_no="R1")
    t = S.compare_scenarios(bill, ["北京"], ["居民"], [3], "2025-06-01", members=members)
    assert t["reward"].iat[0] == 3000.0           # 2 further years × 1,000 + a zero-claim year 1,000


def test_cli_compare_members_prints_eligibility_and_draws_it(tmp_path, members_file, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "c.png"
    code = main(["compare", str(EXAMPLE), "--mdtrt-id", "BJ003-20251027", "--members", str(members_file),
                 "--regions", "北京,上海", "--statuses", "在职,居民", "--date", "2025-06-20", "--out", str(out),
                 "--csv", str(tmp_path / "c.csv"), "--lang", "zh"])
    text = capsys.readouterr().out
    assert code == 0 and out.stat().st_size > 0
    assert "参保信息：人员 BJ003" in text and "待遇资格" in text and "否：等待期至 2025-07-31" in text
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table["eligible"]) == [True, False, True, False]
    capsys.readouterr()
    main(["compare", str(EXAMPLE), "--mdtrt-id", "BJ003-20251027", "--members", str(members_file), "--psn-no",
          "nobody", "--regions", "北京", "--statuses", "居民"])
    assert "does not list member nobody: settled as always enrolled" in capsys.readouterr().out


def test_compare_members_needs_one_member(tmp_path):
    from ybcalc import scenarios as S
    members = pd.DataFrame({"psn_no": ["A", "B"], "begin": ["2020-01-01", "2020-01-01"]})
    bill = S.sample_bill(5000)
    bill = [{k: v for k, v in r.items() if k != "psn_no"} for r in bill]
    with pytest.raises(ValueError, match="lists 2 members and the bill names none"):
        S.compare_scenarios(bill, ["北京"], ["在职"], [3], members=members)


# ---- a member's year: timeline data, chart, widget ----------------------------------------------------
YEAR_BILLS, YEAR_MEMBERS = ROOT / "examples" / "year_bills.csv", ROOT / "examples" / "year_members.csv"
YEAR_ACCOUNTS = ROOT / "examples" / "year_accounts.csv"


@pytest.fixture(scope="module")
def year_result():
    from ybcalc.batch import read_accounts, score_file
    accounts = read_accounts(YEAR_ACCOUNTS)
    return score_file(YEAR_BILLS, state=accounts, members=YEAR_MEMBERS, keep_intermediate=True), accounts


def test_member_year_of_the_re_enrolled_mother(year_result):
    from ybcalc.member_year import bills_table, member_year, summary_text
    res, accounts = year_result
    y = member_year(res.settlement, "W02", YEAR_MEMBERS, accounts=accounts)
    assert y.year == 2025 and len(y.spans) == 1
    span = y.spans.iloc[0]
    assert span["wait_months"] == 5 and str(span["benefit_from"])[:10] == "2025-08-15"
    assert str(span["wait_from"])[:10] == "2025-03-15" and span["region"] == "北京"
    b = y.bills
    assert list(b["eligible"]) == [False, False, True, True]
    assert (b.loc[~b["eligible"], "fund"] == 0).all() and (b.loc[b["eligible"], "fund"] > 0).any()
    assert b["deductible_so_far"].iat[-1] == pytest.approx(b["deductible"].sum())
    # the parts of every bill add up
    assert np.allclose(b["fund"] + b["acct"] + b["family"] + b["cash"], b["total"])
    # the pooled fund so far against the cap of each bill's benefit (住院 25 万 in 北京's resident table)
    inpatient = b[b["visit"] == "inpatient"]
    assert inpatient["cap"].notna().all() and inpatient["fund_so_far"].iat[-1] == inpatient["fund"].sum()
    assert not y.cap_reached
    assert "waiting period 5 months, until 2025-08-14" in summary_text(y)
    with pytest.raises(ValueError, match="needs the settlement's intermediate columns"):
        member_year(score_file(YEAR_BILLS, members=YEAR_MEMBERS).settlement, "W02")
    zh = member_year(res.settlement, "W02", YEAR_MEMBERS, accounts=accounts, lang="zh")
    assert "否：等待期至 2025-08-14" in bills_table(zh, lang="zh")["待遇资格"].tolist()


def test_member_year_account_runs_down_over_the_family(year_result):
    """W01's account pays his own bills (and, with family accounts, his mother's and daughter's), in date
    order; the balance after each payment is what the settlement says."""
    from ybcalc.member_year import account_table, member_year
    res, accounts = year_result
    y = member_year(res.settlement, "W01", YEAR_MEMBERS, accounts=accounts)
    assert y.opening_balance == 3000.0
    assert [s for s in y.spans["region"]] == ["北京", "上海"]          # the move: two spans, two regions
    a = y.account
    assert (np.diff(a["date"].to_numpy("datetime64[D]").astype(np.int64)) >= 0).all()
    assert a["balance"].iat[-1] == pytest.approx(3000.0 - a["paid"].sum())
    raw = res.settlement.raw
    own = raw.loc[raw["psn_no"] == "W01", "acct_pay"].sum() / 100
    family = 0.0
    if "acct_mulaid_pay" in raw.columns:
        family = raw.loc[raw["acct_payer"] == "W01", "acct_mulaid_pay"].sum() / 100
    assert a["paid"].sum() == pytest.approx(own + family)
    assert list(account_table(y, lang="zh").columns) == ["日期", "就诊ID", "为谁支付", "支付", "余额"]


def test_with_break_lengthens_the_wait(year_result):
    from ybcalc.batch import score_file
    from ybcalc.member_year import member_year, with_break
    _, accounts = year_result
    m = with_break(str(YEAR_MEMBERS), "W02", break_years=4, repaid_years=2)
    y = member_year(score_file(YEAR_BILLS, state=accounts, members=m, keep_intermediate=True).settlement, "W02", m)
    assert y.spans["wait_months"].iat[0] == 6                  # 3 + 4 − 2 = 5, but a 4-year break waits 6
    assert list(y.bills["eligible"]) == [False, False, False, True]
    with pytest.raises(ValueError, match="does not list member nobody"):
        with_break(str(YEAR_MEMBERS), "nobody", break_years=1)


def test_member_year_chart_draws_the_year_in_chinese(year_result, tmp_path):
    pytest.importorskip("matplotlib")
    from ybcalc import plotting
    from ybcalc.member_year import member_year
    res, accounts = year_result
    fig = plotting.member_year(member_year(res.settlement, "W02", YEAR_MEMBERS, accounts=accounts, lang="zh"))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "待遇等待期 5 个月（至 2025-08-14）" in texts and "参保 北京 居民" in texts
    assert sum(t.startswith("× 等待期至 2025-08-14") for t in texts) == 2
    assert plotting.save_png(fig, tmp_path / "year.png").stat().st_size > 10_000
    # a member without spans or bills still draws
    empty = member_year(res.settlement, "nobody")
    assert plotting.member_year(empty).axes


def test_member_year_widget_resettles_on_each_toggle():
    pytest.importorskip("ipywidgets")
    from ybcalc.widgets import MemberYearView
    ui = MemberYearView(YEAR_BILLS, YEAR_MEMBERS, accounts=YEAR_ACCOUNTS, psn_no="W02")
    assert (ui.break_years.value, ui.late.value) == (2, True)       # as the members file says
    assert ui.year.spans["wait_months"].iat[0] == 5 and ui.image.value
    ui.break_years.value = 0
    assert ui.year.spans["wait_months"].iat[0] == 3
    ui.late.value = False                                            # paid in the concentrated period: no wait
    assert ui.year.spans["wait_months"].iat[0] == -1 and ui.year.bills["eligible"].all()
    ui.reset.click()
    assert ui.year.spans["wait_months"].iat[0] == 5
    ui.member.value = "W01"
    assert ui.break_years.value == 0 and "3,000.00" in ui.status.value


def test_member_year_marks_a_late_manual_claim():
    """A claim filed by hand after 深圳's 12 months gets nothing: the year says so on that bill."""
    import ybcalc
    from ybcalc import plotting
    from ybcalc.member_year import bills_table, member_year
    base = {"psn_no": "S1", "insuplc": "深圳", "insutype": "职工", "psn_type": "在职", "contrib_tier": "一档",
            "med_type": "21", "hosp_lv": 3, "chrgitm_lv": "甲", "det_item_fee_sumamt": "20000"}
    s = ybcalc.settle([{**base, "mdtrt_id": "LATE", "setl_time": "2025-01-10", "settle_mode": "手工报销",
                        "claim_date": "2026-03-10"},
                       {**base, "mdtrt_id": "OK", "setl_time": "2025-05-10"}], strict=False)
    y = member_year(s, "S1", lang="zh")
    assert list(y.bills["eligible"]) == [False, True]
    assert y.bills["eligibility"].iat[0].startswith("否：超过 12 个月申报时限")
    assert y.bills["fund"].iat[0] == 0 and y.bills["fund"].iat[1] > 0
    assert "申报时限" in bills_table(y, lang="zh").columns
    texts = [t.get_text() for ax in plotting.member_year(y).axes for t in ax.texts]
    assert any(t.startswith("× 超过 12 个月申报时限") for t in texts)


def _families_file(tmp_path, families=8, fillers=60):
    """Bills of payers whose own first bill empties their account, and of their children a month later: a
    child's bill is paid from the payer's account only if the payer's bill is settled beside it (it is
    not: nothing is left). Filler members make many partitions."""
    rows, members, accounts = [], ["psn_no,begin,acct_payer"], ["psn_no,acct_balance"]

    def bill(mid, psn, day, scheme, group, amount):
        rows.append(f"{mid},{psn},{day},北京,{scheme},{group},11,2,甲,{amount}")
    for i in range(fillers):
        bill(f"F{i}", f"F{i:03d}", "2025-03-01", "职工", "在职", 80)
    for i in range(families):
        bill(f"P{i}", f"PAY{i}", "2025-01-10", "职工", "在职", 500)
        bill(f"K{i}", f"KID{i}", "2025-02-01", "居民", "学生儿童", 200)
        members += [f"PAY{i},2020-01-01,", f"KID{i},2020-01-01,PAY{i}"]
        accounts.append(f"PAY{i},300.00")
    path = tmp_path / "families.csv"
    path.write_text("mdtrt_id,psn_no,setl_time,insuplc,insutype,psn_type,med_type,hosp_lv,chrgitm_lv,"
                    "det_item_fee_sumamt\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "members.csv").write_text("\n".join(members) + "\n", encoding="utf-8")
    (tmp_path / "accounts.csv").write_text("\n".join(accounts) + "\n", encoding="utf-8")
    return path, tmp_path / "members.csv", tmp_path / "accounts.csv"


def test_a_family_s_account_runs_down_the_same_in_every_partitioning(tmp_path):
    """Each payer's account is emptied by their own bill before their child's: whole file, many local
    partitions and Dask partitions all leave the children's bills unpaid by the family account. Were the
    family split over partitions, the child's partition would see the payer's full opening balance."""
    from ybcalc.batch import read_accounts
    bills, members, accounts = _families_file(tmp_path)
    acc = read_accounts(accounts)
    whole = score_file(bills, state=acc, members=members).settlement.raw.set_index("mdtrt_id")
    assert (whole.loc[[f"P{i}" for i in range(8)], "acct_pay"] == 30000).all()
    assert (whole["acct_mulaid_pay"] == 0).all()
    parts = score_file(bills, state=acc, members=members, partition_lines=4).settlement.raw.set_index("mdtrt_id")
    pd.testing.assert_series_equal(parts.loc[whole.index, "acct_mulaid_pay"], whole["acct_mulaid_pay"])
    pytest.importorskip("distributed")
    import dask
    import dask.dataframe as dd

    import ybcalc.dask as ydask
    ddf = dd.read_csv(str(bills), dtype=str, keep_default_na=False, blocksize=800)
    with dask.config.set(scheduler="sync"):
        got, _ = dask.compute(*ydask.score(ddf, members=str(members), accounts=acc, npartitions=16))
    got = got.set_index("mdtrt_id")
    assert (ydask.money_fen(got.loc[whole.index, "acct_mulaid_pay"]) == 0).all()
