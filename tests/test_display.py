"""Tables for people (ybcalc.display) and the notebooks that use them: Chinese, money as 1,234.50."""
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ybcalc import display as D
from ybcalc import i18n

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def zh():
    with i18n.language("zh"):
        yield


def test_money_has_thousands_separators_and_two_decimals():
    assert D.yuan(3285.0) == "3,285.00"
    assert D.yuan(Decimal("111435.00")) == "111,435.00"
    assert D.yuan(np.float64(0.5)) == "0.50"
    assert D.yuan(float("nan")) == "" and D.yuan(None) == ""
    assert D.percent(0.2284) == "22.8%" and D.percent(np.nan) == ""


def test_table_has_chinese_headers_words_for_codes_and_no_row_numbers(zh):
    frame = pd.DataFrame({"psn_no": ["BJ004"], "hosp_lv": [np.int64(3)], "total": [Decimal("111435.00")],
                          "patient_share": [0.25], "hit_cap": [np.bool_(True)], "year": [2025]})
    shown = D.table(frame)
    assert list(shown.frame.columns) == ["人员编号", "医院等级", "总费用", "个人占比", "达到封顶线", "医保年度"]
    assert shown.frame.iloc[0].tolist() == ["BJ004", "三级", "111,435.00", "25.0%", "是", 2025]
    html = shown._repr_html_()
    assert "<th></th>" not in html and "white-space:nowrap" in html      # no index column; no wrapping
    assert "111,435.00" in repr(shown) and not repr(shown).startswith("0 ")


def test_table_headers_follow_the_language():
    with i18n.language("en"):
        assert list(D.table(pd.DataFrame({"total": [1.0]})).frame.columns) == ["total cost"]


def test_only_the_long_text_columns_wrap(zh):
    frame = pd.DataFrame({"region": ["北京"], "scheme": ["职工"], "source": ["一份很长的来源标题" * 5]})
    html = D.table(frame, wrap=("source",))._repr_html_()
    cells = re.findall(r'<td style="([^"]*)">([^<]*)</td>', html)
    assert [("white-space:nowrap" in style, text[:2]) for style, text in cells] == \
        [(True, "北京"), (True, "职工"), (False, "一份")]
    assert "<style" not in html          # JupyterLab strips <style> from a notebook it has not run


def test_an_empty_rejects_table_says_so(zh):
    empty = pd.DataFrame(columns=["row", "mdtrt_id", "column", "value", "reason"])
    assert repr(D.rejects(empty)) == "无拒绝" and "无拒绝" in D.rejects(empty)._repr_html_()
    one = pd.DataFrame({"row": [3], "mdtrt_id": ["V1"], "column": ["age"], "value": ["x"], "reason": ["年龄无法识别"]})
    assert D.rejects(one).frame.columns.tolist() == ["就诊ID", "行号", "列", "无法结算原因"]


def test_gaps_list_the_years_without_a_sourced_value(zh):
    t = pd.DataFrame({"region": ["河北"] * 3 + ["北京"], "scheme": ["职工"] * 4, "year": [2023, 2024, 2025, 2023],
                      "status": ["missing"] * 3 + ["sourced"]})
    assert D.gaps(t).frame.values.tolist() == [["河北", "职工", "2023、2024、2025", ""]]
    # each gap shows the table's one-line note with its pointer to the search history (issue 15 §6)
    note = "未找到河北省本级职工住院起付标准。（检索记录：docs/research/regions/hebei.md#x）"
    t["note"] = [note] * 3 + [""]
    assert D.gaps(t).frame.values.tolist() == [["河北", "职工", "2023、2024、2025", note]]


def _notebooks():
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebooks_speak_chinese_to_their_readers(path):
    """Chinese prose under Chinese titles, no notes to developers, money with thousands separators."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    prose = [("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert prose and prose[0].startswith("# ")
    for text in prose:
        assert not re.search(r"pytest|nbval|[A-Za-z]{4,} [A-Za-z]{3,} [A-Za-z]{3,}", text), text
        assert re.search(r"[\u4e00-\u9fff]", text)
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            # a money amount written without thousands separators (3285.0, 111435.00)
            assert not re.search(r"(?<![\d,./-])\d{4,}\.\d{1,2}\b", text), (cell["id"], text[:300])
