"""Member groups derived from the age as a table states them (issue 15 §4), and regions a user can
name by any prefecture's name or national code (issue 15 §5)."""
import shutil

import pandas as pd
import pytest

import ybcalc
from conftest import FIXTURES
from ybcalc.cli import main
from ybcalc.policy.loader import load_book
from ybcalc.policy.schema import TableError

COLUMNS = ["mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "psn_type", "age", "med_type", "hosp_lv",
           "item_name", "chrgitm_lv", "det_item_fee_sumamt"]


def lines(*rows) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(COLUMNS, r)) for r in rows], dtype=object)


def bill(mid, region="上海", psn_type="", age=10, med_type="11", amount="1000.00", scheme="390"):
    return (mid, "P" + mid, "2024-03-01", region, scheme, psn_type, age, med_type, 3, "项目1", 1, amount)


# ---- §4: 人员类别 from the age ------------------------------------------------------------------------
@pytest.mark.parametrize("age,group", [(10, "学生儿童"), (17, "学生儿童"), (18, "成年"), (59, "成年"), (60, "老年"),
                                       (85, "老年")])
def test_shanghai_resident_group_is_derived_from_the_age(age, group):
    """上海居民 with an empty 人员类别 was rejected ("no rule matches this bill"); it now settles as the
    group its age falls in by the table's own bands, exactly as a bill naming that group."""
    for med_type in ("11", "21"):
        derived = ybcalc.settle(lines(bill("A", age=age, med_type=med_type)))
        named = ybcalc.settle(lines(bill("A", psn_type=group, age=age, med_type=med_type)))
        for f in ("act_pay_dedc", "hifp_pay", "psn_cash_pay"):
            assert derived[f] == named[f], (f, med_type)
        raw = derived.raw.iloc[0]
        assert raw["psn_type"] == group
        assert f"人员类别未填写，按年龄推定为{group}" in raw["warnings"]
        assert "shanghai/resident:psn_type_by_age[0]" in raw["warnings"]


def test_derived_group_is_explained_with_its_rule_and_source():
    s = ybcalc.settle(lines(bill("A", age=10)))
    text = str(s.explain())
    assert "人员类别（按年龄推定）: 学生儿童" in text
    assert "年龄 10 → 学生儿童（年龄 < 18）" in text
    assert "shanghai/resident:psn_type_by_age[0]" in text and "ditoo.cn" in text
    assert "age 10 → 学生儿童 (age < 18)" in str(s.explain(lang="en"))
    # a bill naming its group has no such step
    assert "按年龄推定" not in str(ybcalc.settle(lines(bill("A", psn_type="成年", age=10))).explain())


def test_group_that_cannot_be_derived_names_the_columns_to_fill(tmp_path):
    path = tmp_path / "b.csv"
    lines(bill("A", age=""), bill("B", age=30)).to_csv(path, index=False)
    out, rej = tmp_path / "o.csv", tmp_path / "r.csv"
    assert main(["score", str(path), "-o", str(out), "--rejects", str(rej)]) == 3
    rejects = pd.read_csv(rej, dtype=str)
    assert rejects["mdtrt_id"].tolist() == ["A"]
    reason = rejects["reason"].iat[0]
    assert "人员类别（psn_type）" in reason and "年龄（age）" in reason


def test_rules_naming_groups_ask_for_the_group_when_none_is_given(tmp_path):
    """A table without an age rule whose rules name groups only: the reject says which column to fill."""
    dst, path, text, _ = _table_copy(tmp_path)
    path.write_text(text.replace("{value: [0.70, 0.75]}", "{when: {psn_type: [成年, 老年]}, value: [0.70, 0.75]}"),
                    encoding="utf-8")
    df = lines(("A", "m1", "2023-05-01", "testland", "390", "", 40, "21", 3, "x", 1, "1000"))
    reason = ybcalc.settle(df, load_book(dst), strict=False).errors["A"]
    assert "no rule of testland/resident:benefits.inpatient.ratio[0].rates matches" in reason
    assert "请填写人员类别（psn_type）" in reason


def test_a_missing_age_rule_settles_as_before_with_the_column_named():
    """北京居民: the sources give no age bounds (a `missing` entry); an empty group settles by the rules
    that name no group, and the warning names the column to fill."""
    s = ybcalc.settle(lines(bill("A", region="北京", age=70, med_type="21")))
    assert "人员类别（psn_type）未填写" in s.raw["warnings"].iat[0]
    assert s.raw["psn_type_entry"].iat[0] == -1


def _table_copy(tmp_path):
    dst = tmp_path / "tables"
    shutil.copytree(FIXTURES, dst)
    path = dst / "testland" / "resident.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "psn_types: [成年, 学生儿童, 老年]\n"
    assert anchor in text
    return dst, path, text, anchor


@pytest.mark.parametrize("groups,key,words", [
    ("      - {when: {age: [null, 18]}, value: 少年}\n", "groups[0].value", "not one of this table's psn_types"),
    ("      - {when: {hosp_lv: 3}, value: 成年}\n", "groups[0].when", "age band only"),
    ("      - {when: {age: [60, 18]}, value: 老年}\n", "groups[0].when.age", "empty"),
])
def test_bad_age_rule_is_named(tmp_path, groups, key, words):
    dst, path, text, anchor = _table_copy(tmp_path)
    rule = f"psn_type_by_age:\n  - from: 2020-01-01\n    source: fx\n    groups:\n{groups}"
    path.write_text(text.replace(anchor, anchor + rule), encoding="utf-8")
    with pytest.raises(TableError) as exc:
        load_book(dst)
    assert any(key in p.path and words in p.message for p in exc.value.problems), exc.value.problems


def test_age_rule_in_a_user_table_derives_the_group(tmp_path):
    dst, path, text, anchor = _table_copy(tmp_path)
    rule = ("psn_type_by_age:\n  - from: 2020-01-01\n    source: fx\n    groups:\n"
            "      - {when: {age: [null, 18]}, value: 学生儿童}\n      - {when: {age: [60, null]}, value: 老年}\n")
    path.write_text(text.replace(anchor, anchor + rule), encoding="utf-8")
    book = load_book(dst)
    df = lines(("A", "m1", "2023-05-01", "testland", "390", "", 12, "21", 3, "x", 1, "1000"),
               ("B", "m2", "2023-05-01", "testland", "390", "", 40, "21", 3, "x", 1, "1000"))
    s = ybcalc.settle(df, book, strict=False)
    raw = s.raw.set_index("mdtrt_id")
    assert raw.loc["A", "psn_type"] == "学生儿童"
    assert "B" in s.errors.index and "年龄 40 不在" in s.errors["B"] and "psn_type" in s.errors["B"]
