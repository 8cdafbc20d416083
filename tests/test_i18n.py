"""One language on screen: how the language is chosen, and the command line's own words in it."""
import numpy as np

from ybcalc import i18n
from ybcalc.cli import main
from ybcalc.engine.resolve import WarnMasks


def test_default_language_from_environment():
    assert i18n.default_lang({"YBCALC_LANG": "zh", "LANG": "en_US.UTF-8"}) == "zh"
    assert i18n.default_lang({"YBCALC_LANG": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert i18n.default_lang({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert i18n.default_lang({"LANG": "zh_TW.UTF-8"}) == "zh"
    assert i18n.default_lang({"LC_ALL": "zh_CN.GB18030", "LANG": "en_US.UTF-8"}) == "zh"   # LC_ALL first
    assert i18n.default_lang({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert i18n.default_lang({"LANG": "de_DE.UTF-8"}) == "en"
    assert i18n.default_lang({"LANG": "C.UTF-8"}) == "en"
    assert i18n.default_lang({}) == "en"


def test_tr_and_language_block_restore(monkeypatch):
    monkeypatch.delenv("YBCALC_LANG")
    assert i18n.tr("中文", "English") == "中文"          # the library: Chinese unless told otherwise
    with i18n.language("en") as lang:
        assert lang == "en" and i18n.tr("中文", "English") == "English"
        import os
        assert os.environ["YBCALC_LANG"] == "en"                    # worker processes follow
    assert i18n.current() == "zh" and "YBCALC_LANG" not in __import__("os").environ
    with i18n.language(None) as lang:                               # the command line: the tests' C locale
        assert lang == "en"
    monkeypatch.setenv("YBCALC_LANG", "en")
    assert i18n.current() == "en" and i18n.tr("中文", "English", lang="zh") == "中文"


def test_lang_in_argv():
    assert i18n.lang_in_argv(["score", "x.csv", "--lang", "zh"]) == "zh"
    assert i18n.lang_in_argv(["--lang=en", "score"]) == "en"
    assert i18n.lang_in_argv(["score", "--", "--lang", "zh"]) is None


def test_help_in_chinese_global_or_per_command(capsys):
    for argv in (["--lang", "zh", "explain", "--help"], ["explain", "--help", "--lang", "zh"]):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0
        out = capsys.readouterr().out
        assert out.startswith("用法：ybcalc explain") and "显示本帮助并退出" in out and "选项" in out
        assert "usage" not in out and "show this help" not in out
    try:
        main(["explain", "--help"])
    except SystemExit:
        pass
    assert capsys.readouterr().out.startswith("usage: ybcalc explain")      # argparse English again


def test_argparse_errors_in_chinese(capsys):
    try:
        main(["--lang", "zh", "explain"])
    except SystemExit as exc:
        assert exc.code == 2
    err = capsys.readouterr().err
    assert "错误：缺少必需的参数" in err and "error" not in err


def test_command_language_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("YBCALC_LANG", "zh")
    try:
        main(["tables", "--help"])
    except SystemExit:
        pass
    assert capsys.readouterr().out.startswith("用法：")


def test_warnings_listed_by_kind_notes_apart():
    w = WarnMasks(3)
    w.add([0, 1], "z note", kind="note")
    w.add([1], "b exclusion", kind="exclusion")
    w.add([1, 2], "a missing", kind="missing")
    with i18n.language("zh"):
        assert list(w.strings()) == ["", "缺失: a missing; 可能不予支付: b exclusion", "缺失: a missing"]
        assert list(w.strings(notes=True)) == ["z note", "z note", ""]
    taken = w.take(np.array([2, 1]))
    assert taken.kinds == {"z note": "note", "b exclusion": "exclusion", "a missing": "missing"}
    assert "z note" not in w.take(np.array([2])).kinds


# ---- with --lang zh, no English words on screen but field names, units, identifiers ----------------
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "bills.csv"


def _allowed_words() -> set[str]:
    from ybcalc import codes, labels
    words = set()
    for table in (labels.SETTLEMENT_FIELDS, labels.LINE_FIELDS, labels.OTHER_FIELDS, codes.HEADER_ALIASES):
        words.update(table)                            # national field names: the columns' own names
    words.update(["fee_ocur_time", "mdtrt_id", "acct_balance", "ID", "id"])    # (个人账户文件 acct_balance)
    from ybcalc.policy.loader import load_book
    words.update(load_book(None).regions)              # region ids (tables list's id column)
    # the command, its sub-commands and the words a user types as values (choices, codes)
    words.update("ybcalc score explain tables list show validate coverage new diff compare zh en text csv md "
                 "local dask".split())
    # file formats, encodings, units
    words.update("CSV csv Parquet parquet PNG png UTF BOM GB YAML yaml MB Excel Dask YYYY MM DD ok".split())
    words.update(["LANG", "YBCALC_LANG", "Markdown"])  # environment variables, a format
    return {w.lower() for w in words}


def english_words(text: str) -> set[str]:
    """ASCII words in ``text`` that are not field names, units, options, file names or identifiers."""
    text = re.sub(r"https?://\S+", " ", text)                             # links
    text = re.sub(r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|cn|net|org|cc|html?)\b\S*", " ", text)  # sites, pages
    text = re.sub(r"(?<![\w])--?[A-Za-z][\w-]*", " ", text)               # options --lang, -o
    text = re.sub(r"\b[a-z_]+/[a-z_]+[\w@:#./\[\]-]*", " ", text)          # table keys, policy versions
    text = re.sub(r"\S*\.(?:csv|parquet|yaml|png)\b", " ", text)       # file names
    text = re.sub(r"\b[A-Z]{2,3}\d+-\d{8}\b|\b[A-Z]{2}\d{3}\b", " ", text)   # the example's bill and member ids
    allowed = _allowed_words()
    return {w for w in re.findall(r"[A-Za-z][A-Za-z_]*[A-Za-z]", text) if w.lower() not in allowed}


def _run(*argv) -> str:
    r = subprocess.run([sys.executable, "-m", "ybcalc", *argv], capture_output=True, text=True, cwd=ROOT,
                       encoding="utf-8")
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout + r.stderr


def _without_table_texts(text: str) -> str:
    """What the tables themselves say (document titles and issuers in source citations, the text of a
    missing entry) is the tables' content, checked by their own review, not the program's words."""
    from ybcalc.policy.loader import load_book
    text = re.sub(r"(来源: ).*", r"\1", text)
    text = re.sub(r"(缺失 — ).*", r"\1", text)
    text = re.sub(r"(✖ ).*", r"\1", text)
    ids = {sid for t in load_book(None).tables.values() for sid in t.sources}     # a rule's own source id
    return re.sub("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)), " ", text)


def test_chinese_outputs_have_no_english_words(tmp_path):
    outputs = {
        "score": _run("score", str(EXAMPLE), "-o", str(tmp_path / "s.csv"), "--lang", "zh"),
        "explain": _without_table_texts(_run("explain", str(EXAMPLE), "--mdtrt-id", "BJ002-20251115", "--lang", "zh")
                                        + _run("explain", str(EXAMPLE), "--mdtrt-id", "SZ002-20250920", "--lang", "zh")),
        "diff": _run("diff", str(EXAMPLE), "--a", "2024-01-01", "--b", "2025-06-01", "--lang", "zh"),
        "tables show": _without_table_texts(_run("tables", "show", "北京", "--lang", "zh")),
        "tables list": _run("tables", "list", "--lang", "zh"),
        "help": _run("--lang", "zh", "--help"),
    }
    for command in ("score", "explain", "tables", "diff", "compare"):
        outputs[f"{command} --help"] = _run(command, "--help", "--lang", "zh")
    found = {name: sorted(english_words(out)) for name, out in outputs.items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_scan_finds_english_words():
    assert english_words("调整: psn_type=退休: share_factor 0.3（selfpay）组 inpatient") == \
        {"share_factor", "selfpay", "inpatient"}
    assert not english_words("统筹基金支出 hifp_pay 来源 http://x.com/a.html beijing/employee:cap[0] --lang zh")


CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")


def test_compare_in_english_has_no_chinese_but_the_users_values(capsys):
    """`compare --lang en`: headers, schemes, member words, hospital levels and reasons in English.
    Allowed in Chinese: what the user typed (the regions 北京/上海 given to --regions, 火星 an unknown one)
    and the place names suggested for an unknown region ("nearest: 新星市"); nothing else — the default
    --statuses 在职,退休 are shown as words (employed, retired)."""
    rc = main(["compare", str(EXAMPLE), "--mdtrt-id", "BJ002-20251115", "--regions", "北京,上海,火星",
               "--hosp-lv", "3,0", "--lang", "en"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "total cost" in out and "hospital level" in out and "employed" in out and "level 3" in out
    assert "cannot be settled" in out and "unknown region" in out
    rest = re.sub(r"nearest: .*", " ", re.sub("北京|上海|火星", " ", out))
    assert not CJK.findall(rest), sorted(set(CJK.findall(rest)))
    # the Chinese table is unchanged in words
    main(["compare", str(EXAMPLE), "--mdtrt-id", "BJ002-20251115", "--regions", "北京", "--lang", "zh"])
    zh = capsys.readouterr().out
    assert "医疗费总额" in zh and "三级" in zh and "在职" in zh and "基层/社区" not in zh


BROKEN_TABLE = """region: 上海
scheme: 职工
sources:
  n: {title: 通知, issuer: 上海市医保局, date: 2024-01-01, grade: user}
benefits:
  inpatient:
    med_types: 21
    deductible:
      - from: 2023-02-30
        source: n
        basis: per_admission
        amount: 800
      - from: 2024-01-01
        basis: per_admission
        amount: 1000
      - from: 2025-01-01
        source: n
        basis: per_admission
        amount: -5
        colour: red
"""


def test_table_errors_in_chinese_name_file_key_and_line(tmp_path):
    """`tables validate --lang zh` on a broken user table: each problem keeps its file, key path and line;
    the words are Chinese (the key path and the table's own values are not words to translate)."""
    folder = tmp_path / "我的参数表"
    folder.mkdir()
    (folder / "上海-职工.yaml").write_text(BROKEN_TABLE, encoding="utf-8")
    out = _run("tables", "validate", "--tables", str(folder), "--lang", "zh")
    assert "Traceback" not in out
    assert f"{folder / '上海-职工.yaml'}: benefits.inpatient.med_types: 须为医疗类别代码的列表" in out
    assert "日期缺失或无效 '2023-02-30'" in out and "金额须 ≥ 0" in out and "未知的键" in out
    assert "条目既无 `source` 也无 `missing`" in out and "（第 7 行）" in out and "个问题" in out
    # the scan: drop the file and key path at the head of each problem line and the lists of the keys a
    # table may use (（可用：from、source …）, `source`: the words the user types into the file), then no
    # English words
    text = re.sub(r"^\S+: \S+: |（可用：[^）]*）|`[^`]*`", "", out.replace(str(tmp_path), ""), flags=re.M)
    words = english_words(text)
    assert not words, (words, out)
    english = _run("tables", "validate", "--tables", str(folder), "--lang", "en")
    assert "must be a list of visit codes" in english and "(line 7)" in english
    assert not CJK.search(english.replace(str(folder), "").replace("上海-职工.yaml", ""))   # but the user's names
