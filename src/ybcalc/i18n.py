"""One language on screen: everything a user reads is Chinese (``zh``) or English (``en``).

Every user-facing text is written once with both languages side by side, where it is used::

    from .i18n import tr
    raise ValueError(tr(f"第 {row} 行：金额不是数字", f"row {row}: the amount is not a number"))

``tr`` picks the text of the current language.

The command line (``ybcalc …``) chooses, in this order (:func:`default_lang`):

1. ``--lang zh|en``;
2. the environment variable ``YBCALC_LANG`` (``zh`` / ``en``);
3. the locale: ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the first one set, as POSIX reads them) — ``zh_*`` is
   Chinese; on Windows, a Chinese system locale;
4. otherwise English. A locale naming another language means a reader who more likely reads English
   than Chinese; a ``C``/``POSIX`` or unset locale is a server, container or CI job, whose terminal and
   logs may not show Chinese and whose scripts read the national field names. ``YBCALC_LANG=zh``
   makes such a machine Chinese.

The library (``import ybcalc``, the notebooks and widgets) writes Chinese unless told otherwise
(:func:`set_lang` ``("en")`` or ``YBCALC_LANG=en``): what a notebook shows must not depend on the locale
of the machine that runs it.

:func:`set_lang` also writes ``YBCALC_LANG``, so worker processes (the batch path's pool, a local Dask
cluster) write their reject reasons and warnings in the same language.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

LANGS = ("zh", "en")
_current: str | None = None


def normalize(lang: str | None) -> str | None:
    """``zh``/``zh_CN.UTF-8``/``Chinese`` → ``zh``; ``en``/``en_US`` → ``en``; anything else → None."""
    if not lang:
        return None
    s = str(lang).strip().lower()
    if s.startswith(("zh", "chinese")):
        return "zh"
    if s.startswith(("en", "english")):
        return "en"
    return None


def locale_lang(environ=None) -> str:
    """The language the locale asks for: ``zh`` for a Chinese locale, else ``en`` (see the module text)."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return "zh" if normalize(value) == "zh" else "en"
    if sys.platform == "win32" and environ is None:      # Windows sets no LANG: ask the system locale
        import locale
        if normalize((locale.getlocale()[0] or "")) == "zh":
            return "zh"
    return "en"


def default_lang(environ=None) -> str:
    """The language when no ``--lang`` is given: ``YBCALC_LANG``, else the locale's."""
    env = os.environ if environ is None else environ
    return normalize(env.get("YBCALC_LANG")) or locale_lang(env)


def current() -> str:
    """The language user-facing text is written in now: the one set, else ``YBCALC_LANG``, else Chinese."""
    return _current or normalize(os.environ.get("YBCALC_LANG")) or "zh"


def set_lang(lang: str | None) -> str:
    """Make ``lang`` (or, when None, the default) the current language, for this process and the worker
    processes it starts. Returns the language set."""
    global _current
    chosen = normalize(lang) or default_lang()
    _current = chosen
    os.environ["YBCALC_LANG"] = chosen
    return chosen


@contextmanager
def language(lang: str | None):
    """Within the block, ``lang`` (or the default) is the current language, also for worker processes
    started in it; afterwards the language and ``YBCALC_LANG`` are as before (a test, a notebook or a
    library caller running several commands does not inherit one's language)."""
    global _current
    saved, saved_env = _current, os.environ.get("YBCALC_LANG")
    try:
        yield set_lang(lang)
    finally:
        _current = saved
        if saved_env is None:
            os.environ.pop("YBCALC_LANG", None)
        else:
            os.environ["YBCALC_LANG"] = saved_env


def tr(zh: str, en: str, lang: str | None = None) -> str:
    """The text of ``lang`` (default: the current language) among its Chinese and English versions."""
    return zh if (lang or current()) == "zh" else en


# Kinds of warning on a bill, in the order they are listed (most important first). A warning's text
# is prefixed by its kind's label; the summary counts bills by kind. ``note`` is information, not a
# warning: it goes to the ``notes`` column and never makes a bill "warned".
WARNING_KINDS = {
    "assumption": ("假设", "assumption"),          # a value the user assumed (--assume) was used
    "missing": ("缺失", "missing"),                # a value the bill needs has no source: not applied
    "exclusion": ("可能不予支付", "possibly excluded"),  # a line a rule may exclude: check it
    "input": ("输入", "input"),                     # the bill was read in a way to check (unknown region …)
    "national": ("按国家规定", "national rule"),      # the region's own rule is not in the tables: national rule used
    "other": ("其他", "other"),
    "note": ("说明", "note"),                      # information: a value's grade (二手来源) …
}
NOTE_KINDS = frozenset({"note"})


def kind_label(kind: str, lang: str | None = None) -> str:
    return tr(*WARNING_KINDS.get(kind, WARNING_KINDS["other"]), lang=lang)


# argparse's own words ("usage:", "options:", its error messages), in Chinese. argparse looks them up
# through its module-level ``_``/``ngettext`` (gettext) at the time it prints: :func:`use_argparse_lang`
# points those at this catalogue.
_ARGPARSE_ZH = {
    "usage: ": "用法：",
    "options": "选项",
    "positional arguments": "位置参数",
    "show this help message and exit": "显示本帮助并退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s：错误：%(message)s\n",
    "the following arguments are required: %s": "缺少必需的参数：%s",
    "unrecognized arguments: %s": "无法识别的参数：%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的选项 %(value)r（可选：%(choices)s）",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s：%(message)s",
    "expected one argument": "需要一个值",
    "expected at least one argument": "至少需要一个值",
    "expected at most one argument": "至多一个值",
    "expected %s argument": "需要 %s 个值",
    "expected %s arguments": "需要 %s 个值",
    "invalid %(type)s value: %(value)r": "无效的 %(type)s 值：%(value)r",
    "ambiguous option: %(option)s could match %(matches)s": "有歧义的选项：%(option)s 可指 %(matches)s",
    "not allowed with argument %s": "不能与参数 %s 同用",
    "one of the arguments %s is required": "需要参数 %s 之一",
    "ignored explicit argument %r": "忽略了多余的值 %r",
    "can't open '%(filename)s': %(error)s": "无法打开 '%(filename)s'：%(error)s",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "未知的子命令 %(parser_name)r（可选：%(choices)s）",
    "show program's version number and exit": "显示版本号并退出",
}


def use_argparse_lang(lang: str | None = None) -> None:
    """Make argparse print its own words in ``lang`` (default: the current language)."""
    import argparse
    import gettext
    if (lang or current()) != "zh":
        argparse._ = gettext.gettext
        argparse.ngettext = gettext.ngettext
        return
    argparse._ = lambda msg: _ARGPARSE_ZH.get(msg, gettext.gettext(msg))
    argparse.ngettext = lambda one, many, n: _ARGPARSE_ZH.get(one if n == 1 else many,
                                                              gettext.ngettext(one, many, n))


def lang_in_argv(argv) -> str | None:
    """The ``--lang`` an argument list asks for (the last one wins), read before the parser is built so
    that the help itself is in that language."""
    found = None
    argv = list(argv)
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--lang" and i + 1 < len(argv):
            found = normalize(argv[i + 1]) or found
        elif a.startswith("--lang="):
            found = normalize(a.split("=", 1)[1]) or found
    return found


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character takes two (wcwidth)."""
    from wcwidth import wcswidth
    w = wcswidth(str(text))
    return w if w >= 0 else len(str(text))


def pad(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` terminal columns (CJK-aware ``ljust``)."""
    return str(text) + " " * max(0, columns - width(text))


def terminal_table(frame, **to_string) -> str:
    """A DataFrame as text whose columns line up with Chinese in them (pandas measures East Asian wide
    characters as two columns with this option), never wrapped to the terminal's width."""
    import pandas as pd
    with pd.option_context("display.unicode.east_asian_width", True, "display.width", 100_000,
                           "display.max_columns", None, "display.max_colwidth", None):
        return frame.to_string(**to_string)


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most ``columns`` terminal columns: English breaks at spaces, Chinese between any two
    characters (not before its closing punctuation)."""
    import re
    tokens = re.findall(r"[^\x00-\u2e7f]|[^\s\u2e80-\U0010ffff]+|\s+", " ".join(str(text).split()))
    lines, line = [], ""
    for tok in tokens:
        if tok.isspace():
            line += " " if line else ""
            continue
        if line and width(line.rstrip() + tok) > columns and tok not in "，。；：、）》」』！？,.;:)":
            carried = line[-1] if line[-1] in "（《「『(" and len(line) > 1 else ""   # an opening bracket goes along
            lines.append(line[: len(line) - len(carried)].rstrip())
            line = carried
        line += tok
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


def help_formatter():
    """argparse's help formatter, measuring text in terminal columns (a CJK character takes two) so that
    Chinese help lines up and wraps; built on first use (argparse is imported only by the command line)."""
    import argparse

    class WidthAwareHelpFormatter(argparse.HelpFormatter):
        def add_argument(self, action):
            if action.help is not argparse.SUPPRESS:
                invocations = [self._format_action_invocation(action)]
                invocations += [self._format_action_invocation(a) for a in self._iter_indented_subactions(action)]
                self._action_max_length = max(self._action_max_length,
                                              max(map(width, invocations)) + self._current_indent)
                self._add_item(self._format_action, [action])

        def _format_action(self, action):       # argparse's, with width() for len() and pad() for %-*s
            help_position = min(self._action_max_length + 2, self._max_help_position)
            help_width = max(self._width - help_position, 11)
            action_width = help_position - self._current_indent - 2
            header = self._format_action_invocation(action)
            indent_first = 0
            if not action.help:
                header = " " * self._current_indent + header + "\n"
            elif width(header) <= action_width:
                header = " " * self._current_indent + pad(header, action_width) + "  "
            else:
                header = " " * self._current_indent + header + "\n"
                indent_first = help_position
            parts = [header]
            if action.help and action.help.strip():
                help_text = self._expand_help(action)
                if help_text:
                    help_lines = self._split_lines(help_text, help_width)
                    parts.append(" " * indent_first + help_lines[0] + "\n")
                    parts += [" " * help_position + line + "\n" for line in help_lines[1:]]
            elif not header.endswith("\n"):
                parts.append("\n")
            for sub in self._iter_indented_subactions(action):
                parts.append(self._format_action(sub))
            return self._join_parts(parts)

        def _split_lines(self, text, columns):
            return wrap(text, columns)

        def _fill_text(self, text, columns, indent):
            return "\n".join(indent + line for line in wrap(text, columns - len(indent)))

    return WidthAwareHelpFormatter
