"""Member groups derived from the age as a table states them (issue 15 §4), and regions a user can
name by any prefecture's name or national code (issue 15 §5)."""
import shutil

import pandas as pd
import pytest

import ybcalc
from conftest import FIXTURES
from ybcalc.cli import main
from ybcalc.i18n import language
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
        assert f"input: no member group: {group} by age (" in raw["warnings"]
        assert "shanghai/resident:psn_type_by_age[0]" in raw["warnings"]
    with language("zh"):
        raw = ybcalc.settle(lines(bill("A", age=age))).raw.iloc[0]
    assert f"输入: 人员类别未填写，按年龄推定为{group}" in raw["warnings"]


def test_derived_group_is_explained_with_its_rule_and_source():
    with language("zh"):
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
    assert "member group (psn_type) and age are both empty" in reason and "fill in either" in reason
    with language("zh"):
        got = ybcalc.settle(lines(bill("A", age="")), strict=False).errors["A"]
    assert "人员类别（psn_type）和年龄（age）均未填写" in got


def test_rules_naming_groups_ask_for_the_group_when_none_is_given(tmp_path):
    """A table without an age rule whose rules name groups only: the reject says which column to fill."""
    dst, path, text, _ = _table_copy(tmp_path)
    path.write_text(text.replace("{value: [0.70, 0.75]}", "{when: {psn_type: [成年, 老年]}, value: [0.70, 0.75]}"),
                    encoding="utf-8")
    df = lines(("A", "m1", "2023-05-01", "testland", "390", "", 40, "21", 3, "x", 1, "1000"))
    reason = ybcalc.settle(df, load_book(dst), strict=False).errors["A"]
    assert "no rule of testland/resident:benefits.inpatient.ratio[0].rates matches" in reason
    assert "fill in the member group (psn_type)" in reason


def test_a_missing_age_rule_settles_as_before_with_the_column_named():
    """北京居民: the sources give no age bounds (a `missing` entry); an empty group settles by the rules
    that name no group, and the warning names the column to fill."""
    s = ybcalc.settle(lines(bill("A", region="北京", age=70, med_type="21")))
    assert "input: no member group (psn_type): settled by the rules of 北京 resident that name no group" \
        in s.raw["warnings"].iat[0]
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
    assert "B" in s.errors.index and "age 40 is in no age band" in s.errors["B"] and "psn_type" in s.errors["B"]


# ---- §5: regions by any prefecture's name or code ----------------------------------------------------------
def test_division_list_is_the_official_list_with_its_source():
    from ybcalc.divisions import DATA, divisions
    header = [ln for ln in DATA.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]
    text = "\n".join(header)
    assert "2024" in text and "民政部" in text and "yescallop/areacodes" in text and "中华人民共和国县以上行政区划代码" in text
    divs = divisions()
    levels = pd.Series([d.level for d in divs.values()]).value_counts()
    # 2024: 34 province-level divisions; 333 prefecture-level (293 地级市, 7 地区, 30 自治州, 3 盟)
    assert levels["province"] == 34 and levels["prefecture"] == 333
    assert all(len(c) == 6 and c.isdigit() for c in divs)
    assert divs["510400"].name == "攀枝花市" and divs["532300"].name == "楚雄彝族自治州"
    kinds = pd.Series([d.name for d in divs.values() if d.level == "prefecture"])
    assert kinds.str.endswith("自治州").sum() == 30 and kinds.str.endswith("地区").sum() == 7
    assert kinds.str.endswith("盟").sum() == 3


def test_shipped_regions_agree_with_the_division_list():
    """Every region of tables/regions.yaml carries the official code of the division its name names."""
    from ybcalc.divisions import divisions
    book = ybcalc.load_tables()
    for r in book.regions.values():
        assert divisions()[r.code].name == r.name, r.id


@pytest.mark.parametrize("value,code,how", [
    ("楚雄彝族自治州", "532300", "name"), ("楚雄州", "532300", "name"), ("楚雄", "532300", "name"),
    ("532300", "532300", "code"), ("510400.0", "510400", "code"), ("绵阳市", "510700", "name"), ("绵阳", "510700", "name"),
    ("四川省绵阳市", "510700", "name"), ("云南楚雄州", "532300", "name"), ("锡林郭勒盟", "152500", "name"),
    ("大兴安岭", "232700", "name"), ("510703", "510700", "county"), ("110105", "110000", "county"),
    ("500229", "500000", "county"), ("429004", "429004", "code"), ("内蒙古", "150000", "name"),
])
def test_a_division_is_named_by_name_short_name_alias_or_code(value, code, how):
    from ybcalc.divisions import named
    got = named(value)
    assert (got.division.code, got.how) == (code, how)


def test_a_short_name_two_divisions_share_names_neither():
    from ybcalc.divisions import named
    got = named("吉林")
    assert got.division is None and {d.code for d in got.candidates} == {"220000", "220200"}


def _score(tmp_path, rows):
    path = tmp_path / "b.csv"
    lines(*rows).to_csv(path, index=False)
    out, rej = tmp_path / "o.csv", tmp_path / "r.csv"
    code = main(["score", str(path), "-o", str(out), "--rejects", str(rej), "--allow-rejects"])
    assert code == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False), pd.read_csv(rej, dtype=str, keep_default_na=False)


def test_region_without_a_table_says_how_to_make_one(tmp_path):
    _, rejects = _score(tmp_path, [bill("A", region="绵阳", psn_type="在职", scheme="310", med_type="21"),
                                   bill("B", region="510703", psn_type="在职", scheme="310", med_type="21")])
    r = rejects.set_index("mdtrt_id")
    assert r.loc["A", "column"] == "insuplc" and r.loc["A", "value"] == "绵阳"
    assert "no table for 绵阳 (510700) yet; make one with `ybcalc tables new 绵阳`" in r.loc["A", "reason"]
    assert r.loc["B", "value"] == "510703"
    assert "510703 is a county-level code of 绵阳市 (510700); no table for 绵阳 (510700) yet" in r.loc["B", "reason"]
    with language("zh"):
        got = ybcalc.settle(lines(bill("A", region="绵阳", psn_type="在职", scheme="310")), strict=False)
    assert "绵阳（510700）还没有参数表，可用 `ybcalc tables new 绵阳` 新建" in got.rejects["reason"].iat[0]


def test_unknown_region_gives_its_value_and_the_nearest_names(tmp_path):
    _, rejects = _score(tmp_path, [bill("A", region="攀之花", psn_type="在职", scheme="310")])
    row = rejects.iloc[0]
    assert row["value"] == "攀之花"
    assert "'攀之花'" in row["reason"] and "nearest: 攀枝花市 (510400)" in row["reason"]


def test_region_without_a_table_for_the_scheme_says_how_to_make_one(tmp_path):
    _, rejects = _score(tmp_path, [bill("A", region="河北", age=40)])
    assert "no resident table for 河北 (130000) yet; make one with `ybcalc tables new 河北 --scheme 居民`" in \
        rejects["reason"].iat[0]


def test_county_code_settles_as_its_prefecture_and_says_so(tmp_path):
    out, rejects = _score(tmp_path, [bill("A", region="110105", psn_type="在职", scheme="310", med_type="21",
                                          amount="20000"),
                                     bill("B", region="110000", psn_type="在职", scheme="310", med_type="21",
                                          amount="20000")])
    assert rejects.empty
    o = out.set_index("mdtrt_id")
    assert o.loc["A", "hifp_pay"] == o.loc["B", "hifp_pay"] and o.loc["A", "insuplc"] == o.loc["B", "insuplc"]
    assert "110105 is a county-level code: settled by the tables of 北京市 (110000)" in o.loc["A", "warnings"]
    assert "county-level" not in o.loc["B", "warnings"]


def test_regions_are_read_once_per_distinct_value(monkeypatch):
    import ybcalc.inputs as inputs
    calls = []
    real = inputs.region_lookup
    monkeypatch.setattr(inputs, "region_lookup", lambda book, v: calls.append(v) or real(book, v))
    rows = [bill(str(i), region=["上海", "绵阳", "攀之花", " 上海 "][i % 4], age=40) for i in range(400)]
    ybcalc.settle(lines(*rows), strict=False)
    assert sorted(calls) == sorted({"上海", "绵阳", "攀之花"})


def test_regions_a_users_tables_add_are_found_by_county_code(tmp_path):
    """The lookup searches the region list the loader builds: a region the tables add (here the fixture's
    testland given 绵阳's code) is found by a county code of it."""
    dst, _, _, _ = _table_copy(tmp_path)
    reg = dst / "regions.yaml"
    reg.write_text(reg.read_text(encoding="utf-8").replace('code: "999901"', 'code: "510700"'), encoding="utf-8")
    df = lines(("A", "m1", "2023-05-01", "510703", "390", "成年", 40, "21", 3, "x", 1, "1000"))
    s = ybcalc.settle(df, load_book(dst))
    assert s.raw["region"].iat[0] == "testland"
    assert "510703 is a county-level code" in s.raw["warnings"].iat[0]


def test_load_policy_and_tables_show_name_a_region_without_a_table():
    with pytest.raises(KeyError, match="no table for 绵阳 \\(510700\\) yet"):
        ybcalc.load_policy("绵阳")
    assert ybcalc.load_policy("510402").region == "panzhihua"


def test_tables_show_a_misspelt_region(capsys):
    assert main(["tables", "show", "泸洲"]) == 2
    assert "nearest: 泸州市 (510500)" in capsys.readouterr().err


@pytest.mark.parametrize("area,scope,province", [
    ("510104", "local", "sichuan"),              # a district code of 成都 itself: local care
    ("绵阳", "in_province", "sichuan"),           # a prefecture of the same province without a table
    ("510703", "in_province", "sichuan"),        # a county code of it
    ("520100", "out_of_province", "?520000"),     # 贵阳: another province, none of whose tables ship
    ("130602", "out_of_province", "hebei"),       # 保定: in a province the tables know (京津冀 rules read it)
    ("某地", "unknown", ""),
])
def test_place_of_care_by_any_name_or_code_tells_in_from_out_of_province(area, scope, province):
    df = lines(bill("A", region="成都", psn_type="在职", scheme="310", med_type="21"))
    df["mdtrt_area"] = area
    df["fil_type"] = "临时外出"
    from ybcalc.engine.settle import resolve_parameters
    from ybcalc.inputs import prepare
    book = ybcalc.load_tables()
    bills, _, _ = resolve_parameters(prepare(df, book=book).lines, book)
    assert (bills["mdtrt_scope"].iat[0], bills["mdtrt_province"].iat[0]) == (scope, province)


def test_scenarios_name_a_region_without_a_table_and_read_county_codes():
    from ybcalc.scenarios import resolve_member
    book = ybcalc.load_tables()
    assert "no table for 绵阳 (510700) yet" in resolve_member(book, "绵阳", "在职")["reason"]
    assert resolve_member(book, "110105", "在职")["rid"] == "beijing"
