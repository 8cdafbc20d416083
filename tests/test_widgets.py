"""The notebook front end without a browser: widgets (set values, click), charts, ``ybcalc compare``."""
from __future__ import annotations

import argparse
import datetime as dt
import io
import warnings
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

import ybcalc  # noqa: E402
from ybcalc import plotting as P  # noqa: E402
from ybcalc import scenarios as S  # noqa: E402
from ybcalc.widgets import BatchReport, BillExplainer, ParameterBrowser, ScenarioComparer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def book():
    return ybcalc.load_tables()


def fen(ui, field):
    return int(ui.settlement.raw[field].iat[0])


# ---- BillExplainer -------------------------------------------------------------------------------
def test_bill_explainer_settles_on_start_and_shows_everything(book):
    ui = BillExplainer(book)
    assert ui.error is None
    assert ui.settlement is not None and len(ui.settlement.raw) == 1
    r = ui.settlement.raw.iloc[0]
    assert r["medfee_sumamt"] == (20000 + 15000 + 3000 + 500) * 100
    assert r["fulamt_ownpay_amt"] == (3000 + 500) * 100           # 丙类 + the excluded 陪护费
    assert ui.explanation is not None and "统筹基金支付" in ui.explanation.frame.iloc[:, 1].tolist()
    assert bytes(ui.image.value).startswith(PNG)
    assert "基金支付" in ui.status.value and "统筹基金" in ui.summary.value
    assert "起付线" in ui.explain_html.value
    assert ui.widget.children                                     # a container to display


def test_retired_pays_less_than_employed_for_a_beijing_inpatient_bill(book):
    ui = BillExplainer(book, region="北京", scheme="职工", psn_type="在职", visit="住院")
    employed = fen(ui, "psn_part_amt")
    ui.psn_type.value = "退休"
    ui.age.value = 66
    ui.button.click()
    assert ui.error is None
    assert fen(ui, "psn_part_amt") < employed


def test_contribution_tier_is_offered_where_the_table_has_tiers(book):
    ui = BillExplainer(book, region="深圳", scheme="职工", psn_type="在职", visit="住院", hosp_lv=1)
    assert not ui.tier.disabled and [v for _, v in ui.tier.options] == ["一档", "二档"]
    first = fen(ui, "hifp_pay")
    ui.tier.value = "二档"                                      # 深圳 二档 一级以下 92% against 一档 94%
    ui.button.click()
    assert ui.error is None and fen(ui, "hifp_pay") < first
    ui.region.value = "beijing"                                 # 北京 has no tiers
    assert ui.tier.disabled and ui.tier.value == ""


def test_changing_the_hospital_level_changes_the_deductible(book):
    ui = BillExplainer(book, region="杭州", hosp_lv=3)
    d3 = fen(ui, "act_pay_dedc")
    ui.hosp_lv.value = 2
    ui.button.click()
    d2 = fen(ui, "act_pay_dedc")
    assert d3 != d2
    expect = S.policy_parameter_table(book, "inpatient.deductible", 2, [2025], regions=["杭州"], scheme="职工")
    assert d2 == round(expect["value_num"].iat[0] * 100)


def test_a_region_that_cannot_settle_shows_its_reason(book):
    ui = BillExplainer(book)
    ui.region.value = "putian"
    ui.scheme.value = "职工"
    ui.button.click()
    assert ui.explanation is None and ui.figure is None and bytes(ui.image.value) == b""
    assert "起付线" in ui.error and "莆田" in ui.error
    assert "无法结算" in ui.status.value and "莆田" in ui.status.value
    ui.region.value = "hebei"
    ui.scheme.value = "居民"
    ui.button.click()
    assert "no table for resident insurance" in ui.error      # the session is English in the tests


def test_region_and_scheme_drive_the_member_groups(book):
    ui = BillExplainer(book, update=False)
    ui.region.value = "shanghai"
    ui.scheme.value = "居民"
    assert [v for _, v in ui.psn_type.options] == list(book.tables[("shanghai", "resident")].psn_types)
    assert ui.psn_type.value == "成年"
    ui.button.click()
    assert ui.error is None and ui.settlement.raw["psn_type"].iat[0] == "成年"
    assert ui.settlement.raw["scheme"].iat[0] == "resident"


def test_visit_type_amounts_and_account(book):
    ui = BillExplainer(book, update=False)
    ui.visit.value = "11"            # 门诊
    ui.class_a.value, ui.class_b.value, ui.class_c.value, ui.excluded.value = 3000, 0, 0, 0
    ui.account.value = 100
    ui.button.click()
    assert ui.error is None
    r = ui.settlement.raw.iloc[0]
    assert r["med_type"] == "11" and r["medfee_sumamt"] == 300000
    assert r["acct_pay"] <= 10000
    ui.class_a.value = -1
    ui.button.click()
    assert ui.settlement is None and "negative" in ui.error


def test_out_of_area_status(book):
    ui = BillExplainer(book, update=False)
    ui.ooa.value = "long_term"
    assert not ui.mdtrt_area.disabled and ui.mdtrt_area.value != ui.region.value
    ui.button.click()
    assert ui.error is None and ui.settlement.raw["ooa"].iat[0] == "long_term"
    ui.ooa.value = "temporary"
    ui.button.click()
    assert ui.error is not None and "异地" in ui.error              # no sourced 异地 adjustment: says so
    ui.ooa.value = "local"
    assert ui.mdtrt_area.disabled


# ---- ScenarioComparer ----------------------------------------------------------------------------
def test_scenario_comparer_updates_table_bars_and_curves(book):
    ui = ScenarioComparer(book, regions=["北京", "上海"], statuses=["在职", "退休"], totals=[10000, 100000, 300000])
    t = ui.table
    assert list(zip(t["region"], t["status"])) == [("北京", "在职"), ("北京", "退休"), ("上海", "在职"), ("上海", "退休")]
    assert t["settled"].all()
    assert bytes(ui.bars_image.value).startswith(PNG) and bytes(ui.curves_image.value).startswith(PNG)
    assert len(ui.curves) == 4 * 3
    ui.regions.value = ("beijing", "putian", "shenzhen")          # a selection change recomputes
    t = ui.table
    assert list(dict.fromkeys(t["region"])) == ["北京", "莆田", "深圳"]
    bad = t[~t["settled"]]
    assert set(bad["region"]) == {"莆田"} and bad["reason"].str.contains("起付线").all()
    assert "无法结算" in ui.status.value and "莆田" in ui.table_html.value
    ui.statuses.value = ("居民",)
    assert set(ui.table["psn_type"]) == {"劳动年龄内居民", "", "居民"}
    assert set(ui.curves["status"]) == {"居民"}


def test_scenario_comparer_amounts_and_levels(book):
    ui = ScenarioComparer(book, regions=["杭州"], statuses=["在职"], totals=[50000], auto=False)
    ui.total.value = 80000
    ui.hosp_levels.value = (2, 3)
    ui.button.click()
    t = ui.table.set_index("hosp_lv")
    assert (t["medfee_sumamt"] == 80000).all()
    assert t.loc[2, "act_pay_dedc"] != t.loc[3, "act_pay_dedc"]


def test_scenario_comparer_with_a_given_bill(book):
    lines = S.sample_bill(30000, 0.5, 0.1)
    ui = ScenarioComparer(book, bill_lines=lines, regions=["深圳"], statuses=["在职"], totals=[30000])
    assert ui.total.disabled
    assert ui.table["medfee_sumamt"].iat[0] == 30000
    assert ui.curves["psn_part_amt"].iat[0] == pytest.approx(ui.table["psn_part_amt"].iat[0])


# ---- BatchReport --------------------------------------------------------------------------------
def test_batch_report_scores_a_file(book):
    ui = BatchReport(ROOT / "examples" / "bills.csv", book, accounts=ROOT / "examples" / "accounts.csv")
    assert ui.error is None
    assert ui.result.rows_read == ui.result.rows_scored + ui.result.rows_rejected
    assert len(ui.bills) == len(ui.result.settlement)
    assert ui.summary["bills"].sum() == len(ui.bills)
    assert ui.bills["acct"].sum() > 0                              # balances were used
    assert bytes(ui.dist_image.value).startswith(PNG) and bytes(ui.split_image.value).startswith(PNG)
    assert "rows read" in ui.status.value
    ui.group_by.value = "地区"
    assert list(ui.summary.columns[:2]) == ["region", "bills"]


def test_batch_report_lists_bills_that_cannot_settle(book, tmp_path):
    rows = (S.sample_bill(20000, mdtrt_id="OK1", region="北京", date="2025-03-01")
            + S.sample_bill(20000, mdtrt_id="BAD1", region="莆田", date="2025-03-01"))
    import pandas as pd
    path = tmp_path / "two.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    ui = BatchReport(book=book)
    assert ui.result is None
    ui.path.value = str(path)
    ui.button.click()
    assert list(ui.bills["mdtrt_id"]) == ["OK1"]
    assert list(ui.rejects["mdtrt_id"]) == ["BAD1"] and "起付线" in ui.rejects["reason"].iat[0]
    assert "BAD1" in ui.rejects_html.value
    ui.path.value = str(tmp_path / "nope.csv")
    ui.button.click()
    assert ui.result is None and ui.error and "无法结算" in ui.status.value


def test_batch_report_reads_an_upload(book):
    ui = BatchReport(book=book)
    content = (ROOT / "examples" / "bills.csv").read_bytes()
    ui.upload.value = ({"name": "bills.csv", "type": "text/csv", "size": len(content), "content": memoryview(content),
                        "last_modified": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)},)
    import glob
    import tempfile
    leftovers = lambda: set(glob.glob(str(Path(tempfile.gettempdir()) / "ybcalc-upload-*")))  # noqa: E731
    before = leftovers()
    ui.button.click()
    assert ui.error is None and len(ui.bills) > 0
    assert leftovers() == before                 # the upload's temporary copy is removed once read


# ---- ParameterBrowser ---------------------------------------------------------------------------
def test_parameter_browser(book):
    ui = ParameterBrowser(book)
    assert set(ui.table["year"]) == {2023, 2024, 2025}
    assert "✖ missing" in ui.matrix_html.value and "来源" in ui.sources_html.value
    assert bytes(ui.image.value).startswith(PNG)
    ui.param.value = "inpatient.cap"
    assert ui.table["value"].str.contains("元").any()
    before = ui.table.copy()
    ui.scheme.value = "职工"
    ui.hosp_lv.value = 1
    assert set(ui.table["scheme"]) == {"职工"}
    assert len(ui.table) < len(before)
    ui.years.value = (2024, 2024)
    assert set(ui.table["year"]) == {2024}


# ---- plotting ------------------------------------------------------------------------------------
def _render(fig) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = P.png_bytes(fig)
    assert data.startswith(PNG)
    return [str(w.message) for w in caught]


def test_cjk_font_renders_chinese_without_missing_glyphs(book):
    if P.bundled_font_file() is None and P._system_cjk_family() is None:
        pytest.skip("no CJK font available (pip install mplfonts)")
    name = P.use_cjk_font()
    assert name and P.use_cjk_font() == name                      # idempotent
    import matplotlib
    assert matplotlib.rcParams["font.sans-serif"][0] == name
    st = ybcalc.settle(S.sample_bill(30000, region="北京"), book)
    t = S.compare_scenarios(S.sample_bill(30000), ["北京", "莆田"], ["在职", "退休"], [3], "2025-06-01", book)
    c = S.oop_curve_grid(["北京", "莆田"], ["在职"], 3, [10000, 200000], "2025-06-01", book)
    bills = S.bill_shares(st)
    figs = [P.waterfall(st), P.scenario_bars(t), P.oop_curves(c), P.share_distribution(bills),
            P.group_split_bars(S.share_summary(bills)),
            P.parameter_chart(S.policy_parameter_table(book, regions=["北京", "莆田"]))]
    for fig in figs:
        msgs = _render(fig)
        assert not [m for m in msgs if "Glyph" in m or "missing from font" in m], msgs


def test_waterfall_steps_add_up(book):
    st = ybcalc.settle(S.sample_bill(40000, region="上海", psn_type="退休"), book, accounts=300)
    data = P.waterfall_data(st)
    assert [d[0] for d in data] == ["医疗费总额", "统筹基金", "大额/大病", "医疗救助", "个人账户", "个人现金"]
    assert data[0][1] == pytest.approx(sum(d[1] for d in data[1:]))
    fig = P.waterfall(st)
    assert len(fig.axes[0].patches) == 6


def test_scenario_bars_draw_unsettled_scenarios(book):
    t = S.compare_scenarios(S.sample_bill(30000), ["北京", "莆田"], ["在职"], [3], "2025-06-01", book)
    fig = P.scenario_bars(t)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["基金支付", "个人负担", "无法结算"]


# ---- ybcalc compare ------------------------------------------------------------------------------
def _compare(argv):
    from ybcalc.compare_cli import add_compare_command
    ap = argparse.ArgumentParser(prog="ybcalc")
    ap.add_argument("--tables")
    sub = ap.add_subparsers(dest="command", required=True)
    add_compare_command(sub)
    args = ap.parse_args(argv)
    return args.func(args)


def test_compare_command_prints_the_table_and_writes_the_chart(tmp_path, capsys):
    import pandas as pd
    bill = tmp_path / "bill.csv"
    pd.DataFrame(S.sample_bill(50000, date="2025-06-01")).to_csv(bill, index=False)
    out = tmp_path / "compare.png"
    rc = _compare(["compare", str(bill), "--regions", "北京,上海,莆田", "--statuses", "在职,退休", "--hosp-lv", "3",
                   "--date", "2025-06-01", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "北京" in text and "上海" in text and "patient pays" in text
    assert "cannot be settled" in text and "莆田" in text and "起付线" in text
    assert out.read_bytes().startswith(PNG) and out.stat().st_size < 300_000


def test_compare_command_picks_one_bill_of_a_file(capsys):
    rc = _compare(["compare", str(ROOT / "examples" / "bills.csv"), "--mdtrt-id", "BJ002-20250726",
                   "--regions", "北京", "--statuses", "在职"])
    assert rc == 0
    assert "2025-07-26" in capsys.readouterr().out
    assert _compare(["compare", str(ROOT / "examples" / "bills.csv"), "--mdtrt-id", "nope"]) == 2


def test_compare_command_reads_the_bill_date_as_the_batch_does(tmp_path, capsys):
    """The bill's own date in any form the batch reads (2025年7月26日 10:05), or its last fee day."""
    import pandas as pd
    lines = pd.read_csv(ROOT / "examples" / "bills.csv", dtype=str)
    one = lines[lines["mdtrt_id"] == "BJ002-20250726"]
    bill = tmp_path / "bill.csv"
    one.assign(setl_time="2025年7月26日 10:05").to_csv(bill, index=False)
    assert _compare(["compare", str(bill), "--regions", "北京", "--statuses", "在职"]) == 0
    assert "on 2025-07-26" in capsys.readouterr().out
    days = ["2025-07-24", "2025-07-26"] + ["2025-07-25"] * (len(one) - 2)
    one.drop(columns="setl_time").assign(费用日期=days).to_csv(bill, index=False)
    assert _compare(["compare", str(bill), "--regions", "北京", "--statuses", "在职"]) == 0
    assert "on 2025-07-26" in capsys.readouterr().out


def test_compare_command_fails_when_nothing_settles(tmp_path, capsys):
    import pandas as pd
    bill = tmp_path / "bill.csv"
    pd.DataFrame(S.sample_bill(1000)).to_csv(bill, index=False)
    assert _compare(["compare", str(bill), "--regions", "莆田,成都", "--statuses", "在职"]) == 1


def test_cli_main_registers_compare_when_wired():
    import ybcalc.cli as cli
    if "add_compare_command" not in Path(cli.__file__).read_text(encoding="utf-8"):
        pytest.skip("cli.main() does not call add_compare_command yet")
    with pytest.raises(SystemExit) as e, io.StringIO() as buf:
        import contextlib
        with contextlib.redirect_stdout(buf):
            cli.main(["compare", "--help"])
    assert e.value.code == 0


# ---- 我的地区参数: the form that writes the user's own table ------------------------------------------
def test_region_form_saves_a_user_table_and_settles_the_bill_with_it(tmp_path):
    """Issue 15 §1: the main figures of a notice typed into fields, saved as the user's table file (laid
    over the shipped tables), and the bill on screen settled with them, citing the notice."""
    import yaml

    from ybcalc.i18n import language
    from ybcalc.policy.loader import load_book
    from ybcalc.widgets import RegionParamsForm
    folder = tmp_path / "ybcalc-tables"
    with language("zh"):
        ui = RegionParamsForm(folder=folder, region="攀枝花", scheme="职工", start="2024-01-01",
                              class_a=20000, class_b=0, class_c=0, excluded=0, hosp_lv=3, psn_type="在职",
                              date="2025-06-01")
        ui.title.value = "关于调整职工医保住院待遇的通知（示例）"
        ui.issuer.value = "示例市医疗保障局"
        ui.issued.value = "2023-12-01"
        for lv, v in ((3, "1000"), (2, "800"), (1, "500")):
            ui.deductible[lv].value = v
        for lv, v in ((3, "85%"), (2, "88%"), (1, "90%")):
            ui.rate_active[lv].value = v
        for lv, v in ((3, "0.9"), (2, "0.92"), (1, "0.95")):
            ui.rate_retired[lv].value = v
        ui.cap.value = "200000"
        ui.selfpay.value = "10%"
        path = ui.button.click() or ui.path
    assert ui.error is None, ui.error
    assert path == folder / "攀枝花-职工.yaml" and path.exists()
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["sources"]["notice"]["grade"] == "user"
    assert raw["benefits"]["inpatient"]["deductible"][0]["amount"][0] == {"when": {"hosp_lv": 3}, "value": 1000}
    book = load_book(folder)                  # the file is a valid user table over the shipped ones
    assert not book.problems
    st = ui.explainer.settlement
    assert ui.explainer.error is None, ui.explainer.error
    assert st["act_pay_dedc"] == 1000
    assert st["hifp_pay"] == (20000 - 1000) * 0.85
    assert "示例市医疗保障局" in ui.explainer.explain_html.value
    # a field that cannot be read is named, nothing is written
    ui.cap.value = "二十万"
    before = path.read_text(encoding="utf-8")
    ui.save()
    assert ui.error and "封顶线" in ui.error and path.read_text(encoding="utf-8") == before


def test_region_form_leaves_out_what_is_empty_and_marks_half_filled_parameters(tmp_path):
    from ybcalc.widgets import RegionParamsForm
    ui = RegionParamsForm(folder=tmp_path, region="攀枝花", scheme="职工", start="2024-01-01")
    ui.deductible[3].value = "1000"             # the other levels left empty: 待填, the entry stays missing
    name, table = ui.table()
    assert "ratio" not in table["benefits"]["inpatient"] and "selfpay_prop" not in table
    assert "待填" in str(table["benefits"]["inpatient"]["deductible"])
    ui.save()                                     # no notice given: the user is told why nothing settles
    assert ui.error is None and "发文单位" in ui.status.value and "待填" in ui.status.value


def test_region_form_writes_the_starter_layout_and_loads_as_a_user_table(tmp_path):
    """The form fills the starter of `ybcalc tables new` (same keys, same conditions), and the file is a
    user table over the shipped ones: values graded 用户提供, policy version naming the file."""
    import yaml

    import ybcalc
    from ybcalc.policy.loader import load_book
    from ybcalc.policy.starter import starter_text
    from ybcalc.widgets import RegionParamsForm
    folder = tmp_path / "ybcalc-tables"
    ui = RegionParamsForm(folder=folder, region="攀枝花", scheme="职工", start="2024-01-01")
    ui.title.value, ui.issuer.value, ui.issued.value = "示例通知", "示例市医疗保障局", "2023-12-01"
    for lv, a, r in ((3, "800", "85%"), (2, "500", "88%"), (1, "300", "90%")):
        ui.deductible[lv].value, ui.rate_active[lv].value, ui.rate_retired[lv].value = a, r, r
    ui.crit_threshold.value, ui.crit_rate.value, ui.crit_cap.value = "0", "0.8", "不封顶"
    path = ui.save()
    assert ui.error is None, ui.error
    text = path.read_text(encoding="utf-8")
    assert "&id" not in text and "*id" not in text              # no YAML anchors for a person to edit
    raw = yaml.safe_load(text)
    name, starter = starter_text(load_book(), "攀枝花", "employee")
    starter = yaml.safe_load(starter)
    assert path.name == name and raw["region"] == starter["region"] and raw["scheme"] == starter["scheme"]
    ratio, s_ratio = raw["benefits"]["inpatient"]["ratio"][0], starter["benefits"]["inpatient"]["ratio"][0]
    assert [r["when"] for r in ratio["rates"]] == [r["when"] for r in s_ratio["rates"]]
    assert "doc_no" not in raw["sources"]["notice"]                     # no 文号 given: the line is left out
    assert "outpatient" not in raw["benefits"] and "personal_account" not in raw   # no fields for them
    hifob = raw["critical_illness"]["hifob"][0]
    assert hifob["base"] == starter["critical_illness"]["hifob"][0]["base"] and hifob["cap"] == "unlimited"
    book = load_book(folder)
    entry = next(e for e in book.entries if e.user and "deductible" in e.key)
    assert entry.table == name
    assert entry.source.grade == "user" and entry.missing is None
    st = ybcalc.settle(ui.explainer.lines, str(folder))
    assert "+user:" + name in st.policy_versions()[0]


def test_region_form_a_prefecture_from_the_division_list_needs_no_code(tmp_path):
    from ybcalc.widgets import RegionParamsForm
    ui = RegionParamsForm(folder=tmp_path, region="绵阳", scheme="居民", start="2024-01-01")
    ui.deductible[3].value = "1000"
    name, table = ui.table()
    assert name == "绵阳-居民.yaml" and table["region"] == "绵阳"


def test_region_form_saving_with_empty_source_fields_keeps_the_files_notice(tmp_path):
    import yaml

    from ybcalc.widgets import RegionParamsForm
    ui = RegionParamsForm(folder=tmp_path, region="攀枝花", scheme="职工", start="2024-01-01")
    ui.title.value, ui.doc_no.value, ui.issuer.value, ui.issued.value = "通知", "某〔2024〕1号", "某局", "2024-01-01"
    ui.cap.value = "100000"
    path = ui.save()
    again = RegionParamsForm(folder=tmp_path, region="攀枝花", scheme="职工", start="2024-01-01")
    again.selfpay.value = "0.1"
    assert again.save() == path and again.error is None
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw["sources"]["notice"]["issuer"] == "某局" and raw["sources"]["notice"]["doc_no"] == "某〔2024〕1号"
    assert raw["benefits"]["inpatient"]["cap"][0]["amount"] == 100000 and raw["selfpay_prop"][0]["rate"] == 0.1
