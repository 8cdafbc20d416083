"""Tables read like a notice: a gap is one short line pointing at its search history in docs/research/,
and no path of any machine appears in the repository."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "tables").glob("*/*.yaml"))

# A `missing` note says what is missing in a sentence, plus its pointer to docs/research/ (about 70 characters).
MISSING_MAX = 200
# Notes on an entry or a source say which paragraph was read and how it was interpreted; the search history
# belongs in docs/research/.
ENTRY_NOTE_MAX = 400
SOURCE_NOTE_MAX = 1200
# a path under the top-level folders work, tmp, root or home (not part of a URL or of a longer name)
MACHINE_PATH = re.compile(r"(^|[^A-Za-z0-9_.])/(work|tmp|root|home)/")
POINTER = re.compile(r"(docs/research/[\w./-]+\.md)#([\w-]+)")


def _walk(node, path=""):
    """Every dict of a table with its key path."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _flat(text) -> str:
    return " ".join(str(text).split())


@pytest.mark.parametrize("table", TABLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_table_notes_are_short(table):
    data = yaml.safe_load(table.read_text(encoding="utf-8"))
    too_long = []
    for path, node in _walk(data):
        if "missing" in node and len(_flat(node["missing"])) > MISSING_MAX:
            too_long.append(f"{path}.missing ({len(_flat(node['missing']))} > {MISSING_MAX})")
        if "from" in node and "note" in node and len(_flat(node["note"])) > ENTRY_NOTE_MAX:
            too_long.append(f"{path}.note ({len(_flat(node['note']))} > {ENTRY_NOTE_MAX})")
    for sid, src in (data.get("sources") or {}).items():
        if len(_flat(src.get("note", ""))) > SOURCE_NOTE_MAX:
            too_long.append(f"sources.{sid}.note ({len(_flat(src['note']))} > {SOURCE_NOTE_MAX})")
    assert not too_long, "move the search history to docs/research/ and leave a pointer: " + "; ".join(too_long)


def test_research_pointers_in_tables_resolve():
    pointers = set()
    for table in TABLES:
        pointers.update(POINTER.findall(table.read_text(encoding="utf-8")))
    assert pointers, "tables point at their search history in docs/research/"
    broken = []
    for file, anchor in sorted(pointers):
        doc = ROOT / file
        if not doc.exists() or f'<a id="{anchor}"></a>' not in doc.read_text(encoding="utf-8"):
            broken.append(f"{file}#{anchor}")
    assert not broken, broken


def _repo_files():
    out = subprocess.run(["git", "ls-files", "tables", "tests", "docs", "src", "tools", "notebooks", "README.md"],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        names = out.stdout.split()
    else:      # not a git checkout (e.g. an unpacked sdist)
        names = [str(p.relative_to(ROOT)) for d in ("tables", "tests", "docs", "src", "tools", "notebooks")
                 for p in (ROOT / d).rglob("*") if p.is_file()] + ["README.md"]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_machine_path_in_the_repository():
    hits = []
    for f in _repo_files():
        if f.suffix not in (".py", ".md", ".yaml", ".yml", ".ipynb", ".toml", ".cfg", ".txt", ".csv"):
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line) and "MACHINE_PATH" not in line and "git grep" not in line:
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not hits, "\n".join(hits)


def test_tables_show_prints_a_gap_as_one_short_line():
    out = subprocess.run([sys.executable, "-m", "ybcalc", "tables", "show", "攀枝花"], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    gap = next(line for line in lines if "inpatient · deductible" in line)
    assert "✖ 未找到攀枝花市职工医保住院起付标准" in gap
    assert "docs/research/regions/panzhihua.md#employee-inpatient-deductible-2023-01-01" in gap
    assert max(len(line) for line in lines) < 300
    assert not MACHINE_PATH.search(out.stdout)
    for word in ("jiusongjiankang", "look-up", "find_string", "第四轮"):
        assert word not in out.stdout
