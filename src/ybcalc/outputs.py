"""The files a command writes: checked before any work, so that a run neither destroys what it reads
nor fails at its end on an output it could never have written.

Every command that writes a file (``score``, ``diff``, ``compare``) calls ``check_outputs`` first.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .i18n import tr

TABLES = (".csv", ".parquet", ".pq")            # the suffix chooses the format


def check_outputs(outputs: dict, inputs: dict) -> None:
    """Refuse outputs that would overwrite an input or another output, or could not be written.

    ``outputs``: {flag: (path or None, allowed suffixes)}, e.g. {"-o": ("out.csv", TABLES)};
    ``inputs``: {what the user calls it (``tr("输入文件", "the input file")``): path, or a list of
    paths, or None}. Raises ValueError naming the flag and the user's path."""
    given = {flag: (Path(p), suffixes) for flag, (p, suffixes) in outputs.items() if p is not None}
    read = [(what, Path(p)) for what, ps in inputs.items() if ps is not None
            for p in (ps if isinstance(ps, (list, tuple)) else [ps])]
    seen: dict = {}
    for flag, (p, suffixes) in given.items():
        shown = f"{flag} {p}"
        if p.suffix.lower() not in suffixes:
            raise ValueError(tr(f"{shown}：文件名须以 {' 或 '.join(suffixes)} 结尾（后缀决定格式）",
                                f"{shown}: give a {' or '.join(suffixes)} file name (the suffix chooses the format)"))
        for what, src in read:
            if _same_file(p, src):
                raise ValueError(tr(f"{shown} 就是{what}：写入会覆盖正在读取的文件",
                                    f"{shown} is {what}: writing it would overwrite what is being read"))
        key = os.path.normcase(os.path.abspath(p.resolve()))
        if key in seen:
            raise ValueError(tr(f"{shown} 与 {seen[key]} 是同一个文件，请给两个不同的文件名",
                                f"{shown} is the {seen[key]} file too: give two file names"))
        seen[key] = flag
        _check_writable(p, shown)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and (os.path.samefile(a, b) or a.resolve() == b.resolve())
    except OSError:
        return False


def _check_writable(p: Path, shown: str) -> None:
    """The output is written beside itself under a temporary name, then renamed over it: its folder
    must exist and take a new file (tried, not guessed from permissions: root passes any permission
    check, not a read-only file system), and an existing output must be a plain file (a rename over
    /dev/null would replace the device)."""
    folder = p.resolve().parent
    if not folder.is_dir():
        raise ValueError(tr(f"{shown}：文件夹 {folder} 不存在", f"{shown}: folder {folder} does not exist"))
    if p.exists() and not p.is_file():
        raise ValueError(tr(f"{shown}：已存在，且不是普通文件（是文件夹或设备）",
                            f"{shown}: exists and is not a plain file (a folder or a device)"))
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ybcalc-write-check-")
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ValueError(tr(f"{shown}：无法在文件夹 {folder} 中写入文件（{why}）",
                            f"{shown}: cannot write a file in folder {folder} ({why})")) from None
    os.close(fd)
    os.unlink(probe)


def cannot_write(exc, outputs: dict) -> ValueError:
    """A ``batch.OutputError`` (disk full …) as a message naming the flag and the user's output."""
    flag = next((f for f, p in outputs.items() if p is not None and Path(p) == exc.path), None)
    shown = f"{flag} {exc.path}" if flag else str(exc.path)
    return ValueError(tr(f"{shown}：写入失败（{exc.why}），原有文件保持不变",
                         f"{shown}: cannot be written ({exc.why}); an earlier file stays as it was"))
