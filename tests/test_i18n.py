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


def test_command_language_from_environment(monkeypatch, capsys, tmp_path):
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
