"""A user's own tables laid over the shipped ones (issue 15 §1), drafts as overlays and table errors a
user can act on (issue 14 §1, §2, §10)."""
import glob
import tempfile
import time
from pathlib import Path

import pytest

import ybcalc
from ybcalc.cli import main
from ybcalc.policy.loader import load_book
from user_table_example import fill

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TABLES = ROOT / "examples" / "ybcalc-tables"
EXAMPLE_BILL = ROOT / "examples" / "攀枝花账单.csv"

@pytest.fixture(autouse=True)
def _chinese_user(monkeypatch):
    """The users of these tables read Chinese (the README's example is a Chinese user's session)."""
    monkeypatch.setenv("YBCALC_LANG", "zh")


NOTICE = """\
sources:
  notice: {title: 示例通知, doc_no: 示例〔2024〕1号, issuer: 某市医疗保障局, date: 2024-01-01, grade: user}
"""


def bill(region="攀枝花", insutype="职工", date="2024-06-10", hosp_lv=3, psn_type="在职", mdtrt_id="V1", psn_no="P1",
         lines=((("床位费", "甲", 2000),), )):
    return [{"mdtrt_id": mdtrt_id, "psn_no": psn_no, "setl_time": date, "insuplc": region, "insutype": insutype,
             "psn_type": psn_type, "age": 50, "med_type": "21", "hosp_lv": hosp_lv, "item_name": name,
             "chrgitm_lv": lv, "det_item_fee_sumamt": amt} for name, lv, amt in lines[0]]


def write(folder: Path, name: str, text: str) -> Path:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


PZH = """\
region: 攀枝花
scheme: 职工
""" + NOTICE + """\
benefits:
  inpatient:
    deductible:
      - {from: 2024-01-01, source: notice, basis: per_admission, amount: 1000}
    ratio:
      - {from: 2024-01-01, source: notice, rates: [0.85]}
    cap:
      - {from: 2024-01-01, source: notice, amount: 100000}
selfpay_prop:
  - {from: 2024-01-01, source: notice, rate: 0.1}
critical_illness:
  hifob:
    - {from: 2024-01-01, source: notice, base: [above_cap], threshold: 0, rates: [0.9], cap: 300000}
personal_account:
  - {from: 2024-01-01, source: notice, pays: [selfpay], med_types: [21]}
"""


# ---- the overlay ------------------------------------------------------------------------------------
def test_user_folder_overlays_shipped_tables_and_settlement_names_the_users_file(tmp_path):
    folder = tmp_path / "ybcalc-tables"
    write(folder, "攀枝花-职工.yaml", PZH)
    book = ybcalc.load_tables(folder)
    shipped = ybcalc.load_tables()
    assert len(book.tables) == len(shipped.tables)               # nothing copied, nothing lost
    assert book.tables[("beijing", "employee")].benefits["inpatient"].params["deductible"].entries[0].source \
        == shipped.tables[("beijing", "employee")].benefits["inpatient"].params["deductible"].entries[0].source
    # the shipped out-of-area rules and exclusions still apply: only what the user gave is theirs
    assert book.tables[("panzhihua", "employee")].params["out_of_area"].entries[0].user is False
    res = ybcalc.settle(bill(lines=[[("床位费", "甲", 11000)]]), book, accounts={"P1": 0})
    assert res["act_pay_dedc"] == 1000 and res["hifp_pay"] == 8500
    version = res.policy_versions()[0]
    assert version.startswith("panzhihua/employee@2024-01-01#") and version.endswith("+user:攀枝花-职工.yaml")
    text = str(res.explain())
    assert "用户提供" in text and "示例〔2024〕1号" in text and "攀枝花-职工.yaml:benefits.inpatient.deductible[0]" in text
    assert ybcalc.tables_version(book) != ybcalc.tables_version(shipped)


def test_load_policy_takes_the_users_folder_and_sees_an_edit(tmp_path):
    folder = tmp_path / "t"
    path = write(folder, "pzh.yaml", PZH)
    policy = ybcalc.load_policy("攀枝花", "职工", tables=folder)
    assert ybcalc.settle(bill(), policy)["act_pay_dedc"] == 1000
    time.sleep(0.01)
    path.write_text(PZH.replace("amount: 1000}", "amount: 1500}"), encoding="utf-8")
    policy = ybcalc.load_policy("攀枝花", "职工", tables=folder)       # the cache sees the edit
    assert ybcalc.settle(bill(), policy)["act_pay_dedc"] == 1500


def test_settle_score_and_the_widgets_take_the_folder_path(tmp_path):
    import pandas as pd
    from ybcalc.scenarios import _book
    folder = tmp_path / "t"
    write(folder, "pzh.yaml", PZH)
    assert ybcalc.settle(bill(), str(folder))["act_pay_dedc"] == 1000
    out = ybcalc.score(pd.DataFrame(bill()), folder)
    assert out["act_pay_dedc"].iat[0] == 1000 and out["policy_version"].iat[0].endswith("+user:pzh.yaml")
    assert _book(str(folder)).user_files == ["pzh.yaml"]


def test_a_user_parameter_replaces_shipped_entries_from_its_first_date_on(tmp_path):
    """Parameter-level overlay: shipped entries before the user's first `from` stay."""
    folder = tmp_path / "t"
    write(folder, "bj.yaml", "region: 北京\nscheme: 职工\n" + NOTICE + """\
benefits:
  inpatient:
    deductible:
      - {from: 2030-01-01, source: notice, basis: per_admission, amount: 5000}
""")
    book = load_book(folder)
    shipped = ybcalc.load_tables()
    ded = book.tables[("beijing", "employee")].benefits["inpatient"].params["deductible"]
    shipped_ded = shipped.tables[("beijing", "employee")].benefits["inpatient"].params["deductible"]
    assert [e.start for e in ded.entries[:-1]] == [e.start for e in shipped_ded.entries]
    assert ded.entries[-1].user and ded.entries[-1].start.year == 2030
    before = ybcalc.settle(bill("北京", date="2025-03-01", lines=[[("床位费", "甲", 20000)]]), book)
    after = ybcalc.settle(bill("北京", date="2030-03-01", lines=[[("床位费", "甲", 20000)]]), book)
    assert before["act_pay_dedc"] == ybcalc.settle(bill("北京", date="2025-03-01", lines=[[("床位费", "甲", 20000)]]),
                                                   shipped)["act_pay_dedc"]
    assert after["act_pay_dedc"] == 5000


def test_a_region_the_shipped_tables_lack_is_added_by_a_header_or_the_users_regions_yaml(tmp_path):
    body = "scheme: 居民\n" + NOTICE + """\
benefits:
  inpatient:
    med_types: [21]
    deductible: [{from: 2024-01-01, source: notice, basis: per_admission, amount: 600}]
    ratio: [{from: 2024-01-01, source: notice, rates: [0.7]}]
    cap: [{from: 2024-01-01, source: notice, amount: 150000}]
critical_illness:
  hifmi: [{from: 2024-01-01, source: notice, base: [coinsurance], threshold: 15000, rates: [0.6], cap: 400000}]
"""
    a = tmp_path / "a"
    write(a, "绵阳.yaml", 'region: {name: 绵阳市, short: 绵阳, code: "510700", province: sichuan}\n' + body)
    b = tmp_path / "b"
    write(b, "regions.yaml", 'regions:\n  mianyang: {name: 绵阳市, short: 绵阳, code: "510700", province: sichuan}\n')
    write(b, "mianyang/resident.yaml", "region: mianyang\n" + body)
    for folder in (a, b):
        book = load_book(folder)
        res = ybcalc.settle(bill("510700", "居民", lines=[[("床位费", "甲", 10600)]]), book)
        assert res["act_pay_dedc"] == 600 and res["hifp_pay"] == 7000
        assert res.bills()["insuplc"].iat[0] == "绵阳"


def test_a_region_header_cannot_name_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    folder = tmp_path / "t"
    write(folder, "x.yaml", 'region: {id: ../x, name: "a/b", code: "510799"}\nscheme: 职工\n')
    problems = [str(p) for p in load_book(folder, strict=False).problems]
    assert any("a region id is a plain name" in p for p in problems)


def test_a_full_copy_of_tables_is_still_used_alone(tmp_path):
    import shutil
    copy = tmp_path / "tables"
    shutil.copytree(ROOT / "tables", copy)
    (copy / "panzhihua" / "resident.yaml").unlink()
    book = load_book(copy)
    assert ("panzhihua", "resident") not in book.tables and not book.user_files


def test_grade_user_needs_no_url_but_other_grades_still_do(tmp_path, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    folder = tmp_path / "t"
    write(folder, "pzh.yaml", PZH.replace("grade: user}", "grade: official}"))
    problems = [str(p) for p in load_book(folder, strict=False).problems]
    assert any("pzh.yaml: sources.notice: source lacks `url`" in p for p in problems)
    write(folder, "pzh.yaml", PZH.replace("title: 示例通知, doc_no: 示例〔2024〕1号, ", ""))
    problems = [str(p) for p in load_book(folder, strict=False).problems]
    assert any("`title` or `doc_no`" in p for p in problems)
    write(folder, "pzh.yaml", PZH)
    assert load_book(folder, strict=False).problems == []


# ---- placeholders and left-out parameters -----------------------------------------------------------
def test_placeholders_are_missing_never_settled(tmp_path):
    folder = tmp_path / "t"
    write(folder, "pzh.yaml", PZH.replace("amount: 1000}", "amount: 待填}").replace("amount: 100000}", "amount: 待填}"))
    book = load_book(folder)
    res = ybcalc.settle(bill(), book, strict=False)
    assert "V1" in res.errors.index and "用户表未填写" in res.errors["V1"] and "pzh.yaml" in res.errors["V1"]
    write(folder, "pzh.yaml", PZH.replace("amount: 100000}", "amount: 待填}"))
    res = ybcalc.settle(bill(), load_book(folder))
    assert "最高支付限额：用户表未填写：amount" in res.bills()["warnings"].iat[0]
    # a source still holding the placeholder makes every value citing it missing
    write(folder, "pzh.yaml", PZH.replace("issuer: 某市医疗保障局", "issuer: 待填"))
    res = ybcalc.settle(bill(), load_book(folder), strict=False)
    assert "sources.notice.issuer" in res.errors["V1"]


def test_a_user_table_leaving_out_cap_critical_illness_or_account_warns_on_each_bill(tmp_path):
    folder = tmp_path / "t"
    body = "scheme: 职工\n" + NOTICE + """\
benefits:
  inpatient:
    med_types: [21]
    deductible: [{from: 2024-01-01, source: notice, basis: per_admission, amount: 500}]
    ratio: [{from: 2024-01-01, source: notice, rates: [0.8]}]
"""
    write(folder, "x.yaml", 'region: {name: 示例市, code: "510799"}\n' + body)
    res = ybcalc.settle(bill("示例市", mdtrt_id="V1") + bill("示例市", mdtrt_id="V2", psn_no="P2"), load_book(folder),
                        accounts={"P1": 1000, "P2": 0})
    w = dict(zip(res.bills()["mdtrt_id"], res.bills()["warnings"]))
    for v in w.values():
        assert "最高支付限额：无已核实参数，未计入" in v and "大额医疗补助：无已核实参数，未计入" in v
    assert "个人账户：无已核实参数，未计入" in w["V1"]            # the member with a balance it would have paid
    assert "个人账户" not in w["V2"]                               # nothing to pay from: not affected


# ---- the starter table ------------------------------------------------------------------------------
def test_tables_new_writes_a_starter_that_validates_and_settles_once_filled(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["tables", "new", "攀枝花", "--scheme", "职工"]) == 0
    path = tmp_path / "ybcalc-tables" / "攀枝花-职工.yaml"
    text = path.read_text(encoding="utf-8")
    assert "# 攀枝花 职工基本医疗保险" in text and "乙类" in text and "大额" in text and "grade: user" in text
    assert main(["tables", "validate", "--tables", "ybcalc-tables"]) == 0          # unfilled: valid, all missing
    assert "9 项仍待填" in capsys.readouterr().out
    res = ybcalc.settle(bill(), ybcalc.load_tables("ybcalc-tables"), strict=False)
    assert "V1" in res.errors.index                                                  # never settles silently
    assert main(["tables", "new", "攀枝花", "--scheme", "职工"]) == 2                # never overwrites a table
    path.write_text(fill(text), encoding="utf-8")
    assert main(["tables", "validate", "--tables", "ybcalc-tables"]) == 0
    res = ybcalc.settle(bill(lines=[[("床位费", "甲", 10800)]]), ybcalc.load_tables("ybcalc-tables"))
    assert res["act_pay_dedc"] == 800 and res["hifp_pay"] == 8500


def test_tables_new_for_a_prefecture_without_a_shipped_table_names_it_from_the_national_list(tmp_path):
    folder = tmp_path / "mine"
    assert main(["tables", "new", "510700", "--scheme", "居民", "--tables", str(folder)]) == 0
    text = (folder / "绵阳-居民.yaml").read_text(encoding="utf-8")
    assert text.count("region: 绵阳") == 1 and "code:" not in text.split("scheme:")[0]
    assert main(["tables", "validate", "--tables", str(folder)]) == 0
    book = load_book(folder)
    rid = book.region_id("510700")
    assert book.regions[rid].name == "绵阳市" and book.regions[rid].province == "sichuan"
    assert (rid, "resident") in book.tables


def test_tables_new_for_a_name_no_list_knows_asks_for_its_code(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    folder = tmp_path / "mine"
    assert main(["tables", "new", "某某新区", "--scheme", "居民", "--tables", str(folder)]) == 0
    assert main(["tables", "validate", "--tables", str(folder)]) == 1
    assert "region.code: must be a 6-digit administrative code" in capsys.readouterr().out
    path = folder / "某某新区-居民.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("code: 待填", 'code: "510799"'), encoding="utf-8")
    assert main(["tables", "validate", "--tables", str(folder)]) == 0


def test_the_example_table_is_the_starter_filled_with_the_example_notice():
    from ybcalc.policy.starter import starter_text
    name, text = starter_text(ybcalc.load_tables(), "攀枝花", "employee", "ybcalc-tables")
    assert (EXAMPLE_TABLES / name).read_text(encoding="utf-8") == fill(text), \
        "examples/ybcalc-tables is stale: regenerate it with tests/user_table_example.py's fill()"


# ---- drafts: overlays, nothing written (issue 14 §1) --------------------------------------------------
def test_a_draft_cannot_write_files_anywhere(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    victim = tmp_path / "victim"
    victim.mkdir()
    d = write(tmp_path, "d.yaml", f"region: {victim}\nscheme: employee\n")
    before = set(glob.glob(str(Path(tempfile.gettempdir()) / "ybcalc-draft-*")))
    code = main(["diff", str(ROOT / "examples" / "bills.csv"), "--a", "2024-01-01", "--b", "2025-01-01",
                 "--draft-b", str(d)])
    assert code == 2 and list(victim.iterdir()) == []
    assert "unknown region" in capsys.readouterr().err
    d2 = write(tmp_path, "d2.yaml", "region: 上海\nscheme: ../../employee\n")
    assert main(["score", str(ROOT / "examples" / "bills.csv"), "-o", str(tmp_path / "o.csv"), "--draft", str(d2)]) == 2
    assert "d2.yaml: scheme: must be 职工 or 居民" in capsys.readouterr().err
    assert set(glob.glob(str(Path(tempfile.gettempdir()) / "ybcalc-draft-*"))) == before


def test_explain_takes_a_draft(tmp_path, capsys):
    d = write(tmp_path, "draft.yaml", PZH)
    assert main(["explain", str(EXAMPLE_BILL), "--mdtrt-id", "PZH001", "--draft", str(d)]) == 0
    assert "draft.yaml:benefits.inpatient.deductible[0]" in capsys.readouterr().out


def test_diff_draft_a_and_draft_b(tmp_path, capsys):
    a = write(tmp_path, "a.yaml", PZH)
    b = write(tmp_path, "b.yaml", PZH.replace("amount: 1000}", "amount: 1200}"))
    assert main(["diff", str(EXAMPLE_BILL), "--draft-a", str(a), "--draft-b", str(b)]) == 0
    out = capsys.readouterr().out
    assert "比较的账单：1 张" in out and "170.00" in out      # 200 more deductible: the fund pays 85% less


# ---- errors a user can act on (issue 14 §2, §10) -------------------------------------------------------
BASE = """\
region: 上海
scheme: 职工
sources:
  n: {title: 示例, issuer: 上海市医疗保障局, date: 2024-01-01, grade: user}
benefits:
  inpatient:
    deductible:
      - from: FROM
        source: n
        basis: per_admission
        amount: AMT
"""


@pytest.mark.parametrize("name,text,key,words,line", [
    ("inf", BASE.replace("FROM", "2024-01-01").replace("AMT", ".inf"), "benefits.inpatient.deductible[0].amount",
     "finite number", 11),
    ("nan", BASE.replace("FROM", "2024-01-01").replace("AMT", ".nan"), "benefits.inpatient.deductible[0].amount",
     "finite number", 11),
    ("feb30", BASE.replace("FROM", "2023-02-30").replace("AMT", "1000"), "benefits.inpatient.deductible[0].from",
     "invalid date '2023-02-30'", 8),
    ("intregion", "region: 123\nscheme: 职工\n", "region", "unknown region 123", 1),
    ("benlist", "region: 上海\nscheme: 职工\nbenefits: [1, 2]\n", "benefits", "must be a mapping", 3),
    ("intmed", "region: 上海\nscheme: 职工\nbenefits:\n  inpatient:\n    med_types: 21\n",
     "benefits.inpatient.med_types", "list of visit codes", 5),
    ("invalid", "region: 上海\nscheme: 职工\nbenefits:\n  inpatient: [unclosed\n", "(file)", "not valid YAML", 5),
    ("pytag", 'region: 上海\nscheme: 职工\ntitle: !!python/object/apply:os.system ["echo hi"]\n', "(file)",
     "!!python/object/apply:os.system is not allowed", 3),
])
def test_a_broken_user_table_names_its_file_line_and_key_without_traceback(tmp_path, capsys, name, text, key, words,
                                                                           line):
    from ybcalc import i18n
    path = write(tmp_path, f"{name}.yaml", text)
    with i18n.language("en"):                      # the English words; Chinese below
        problems = [p for p in load_book(None, strict=False, overlay=[path]).problems]
    hits = [p for p in problems if p.path == key and words in p.message]
    assert hits, [str(p) for p in problems]
    assert hits[0].file == str(path) and hits[0].line == line
    # the command line: a message naming the file and key, exit 2, no traceback
    assert main(["score", str(ROOT / "examples" / "bills.csv"), "-o", str(tmp_path / "o.csv"), "--draft", str(path),
                 "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}" in err and "Traceback" not in err
    # in Chinese: the same file, key and line; the message's words Chinese (issue 16)
    import re
    import subprocess
    import sys
    zh = subprocess.run([sys.executable, "-m", "ybcalc", "tables", "validate", "--tables", str(tmp_path), "--lang", "zh"],
                        capture_output=True, text=True, encoding="utf-8", cwd=ROOT)
    assert zh.returncode == 1 and "Traceback" not in zh.stderr, zh.stderr
    mine = [x for x in zh.stdout.splitlines() if x.startswith(f"{path}: {key}: ")]
    assert mine and mine[0].endswith(f"（第 {line} 行）"), zh.stdout
    assert re.search(r"[\u4e00-\u9fff]", mine[0][len(f"{path}: {key}: "):]), mine[0]
    assert words not in mine[0] and "个问题" in zh.stderr


def test_a_gbk_encoded_user_table_is_read(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes(PZH.encode("gbk"))
    book = load_book(None, overlay=[path])
    assert book.tables[("panzhihua", "employee")].sources["notice"].issuer == "某市医疗保障局"


def test_a_file_neither_utf8_nor_gbk_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"region: \xff\xfe\xff\n")
    problems = load_book(None, strict=False, overlay=[path]).problems
    assert any("neither UTF-8 nor GBK" in p.message for p in problems)


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path, monkeypatch):
    monkeypatch.setenv("YBCALC_LANG", "en")             # asserts the English words
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = ("region: 上海\nscheme: 职工\nx:\n" + "\n".join("  " + x for x in levels)
            + "\nbenefits:\n  inpatient:\n    ratio:\n      - {from: 2024-01-01, source: n, segments: *i}\n")
    path = write(tmp_path, "bomb.yaml", text)
    problems = load_book(None, strict=False, overlay=[path]).problems
    assert any("aliases expand" in p.message for p in problems)
    assert all(len(str(p)) < 400 for p in problems)


def test_a_large_value_in_a_message_is_cut(tmp_path):
    """Below the alias bound, a wrong value is still never written whole into a message."""
    text = BASE.replace("FROM", "2024-01-01").replace("AMT", "[" + ", ".join(["x"] * 5000) + "]")
    path = write(tmp_path, "big.yaml", text)
    problems = load_book(None, strict=False, overlay=[path]).problems
    assert problems and all(len(str(p)) < 400 for p in problems)


# ---- the README section: from a notice to a settlement and its explanation ---------------------------
def _readme_section(name: str) -> str:
    text = (ROOT / name).read_text(encoding="utf-8")
    # the worked example: the section up to its first subsection (--assume, --catalogue follow it)
    return text.split("## 用自己的参数结算", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def _code(line: str) -> str:
    return line.split(" #", 1)[0].strip()


@pytest.mark.parametrize("readme", ["README.md", "README.zh.md"])
def test_readme_worked_example_runs_as_written(tmp_path, monkeypatch, capsys, readme):
    """Following the README alone: tables new, the notice's figures typed in, validate, score, explain —
    each command's output as the README shows it (the tables' hash aside; refresh them with
    `python tools/update_readme_user_tables.py`)."""
    import re
    import shlex
    section = _readme_section(readme)
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```(\w*)\n(.*?)\n```", section, re.S)
    bill_block = next(b for lang, b in blocks if b.startswith("就诊ID,"))
    assert bill_block + "\n" == EXAMPLE_BILL.read_text(encoding="utf-8")
    (tmp_path / "攀枝花账单.csv").write_text(bill_block + "\n", encoding="utf-8")
    yaml_block = next(b for lang, b in blocks if lang == "yaml")
    commands = [b for lang, b in blocks if b.startswith("$ ybcalc ")]
    assert [c.split("\n")[0] for c in commands] == [
        "$ ybcalc tables new 攀枝花 --scheme 职工", "$ ybcalc tables validate --tables ybcalc-tables",
        "$ ybcalc score 攀枝花账单.csv -o 结算.csv --tables ybcalc-tables --lang zh",
        "$ ybcalc explain 攀枝花账单.csv --mdtrt-id PZH001 --tables ybcalc-tables"]
    def hashless(text: str) -> str:     # the shipped tables change: their hash and counts are not the example's
        text = re.sub(r"#[0-9a-f]{8}", "#…", text)
        return re.sub(r"\d+ (?=个地区×险种参数表|条带日期的参数|条不予支付规则|region×scheme|dated entries|exclusion rules)",
                      "N ", text).rstrip("\n")
    for i, block in enumerate(commands):
        command, _, expected = block.partition("\n")
        assert main(shlex.split(command)[2:]) == 0, command
        got = capsys.readouterr()
        assert hashless(got.out + got.err) == hashless(expected), command
        if i == 0:         # step 2: the notice's figures typed in; what the README shows is in the file
            path = tmp_path / "ybcalc-tables" / "攀枝花-职工.yaml"
            path.write_text(fill(path.read_text(encoding="utf-8")), encoding="utf-8")
            lines = {_code(x) for x in path.read_text(encoding="utf-8").splitlines()}
            for line in yaml_block.splitlines():
                assert _code(line) in lines, line
    version = ybcalc.settle(bill(), ybcalc.load_tables("ybcalc-tables")).policy_versions()[0]
    assert re.sub(r"#[0-9a-f]{8}", "#…", version) in section
    # the README's example of a mistake says what the loader says
    path = tmp_path / "ybcalc-tables" / "攀枝花-职工.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("amount: 100000", "amount: 十万"), encoding="utf-8")
    from ybcalc import i18n
    with i18n.language("zh" if readme.endswith(".zh.md") else "en"):
        problem = str(load_book("ybcalc-tables", strict=False).problems[0])
    assert f"`{problem}`" in section


def test_deeply_nested_values_are_refused_without_a_traceback(tmp_path):
    path = write(tmp_path, "deep.yaml", "region: 上海\nscheme: 职工\ntitle: " + "[" * 5000 + "]" * 5000 + "\n")
    problems = load_book(None, strict=False, overlay=[path]).problems
    assert any(p.path == "(file)" and "nest" in p.message for p in problems), [str(p) for p in problems]
