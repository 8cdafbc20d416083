"""The project keeps its promises: README and CI in step, tables shipped inside the wheel."""
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    setup = (ROOT / "README.md").read_text(encoding="utf-8").split("## Set-up")[1].split("\n## ")[0]
    cmds = re.findall(r"```\n(.+?)\n```", setup)
    assert len(cmds) == 2
    assert cmds[0].startswith("pip install . && ybcalc score examples/")
    assert cmds[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_wheel_contains_the_tables(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("ybcalc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tables = sorted(p for p in (ROOT / "tables").rglob("*.yaml"))
    for p in tables:
        assert f"ybcalc/_tables/{p.relative_to(ROOT / 'tables').as_posix()}" in names


def test_installed_package_finds_its_tables():
    import ybcalc
    from ybcalc.policy.loader import default_tables_dir
    root = default_tables_dir()
    assert (root / "regions.yaml").exists()
    pkg = Path(ybcalc.__file__).parent
    # a non-editable install reads the copy shipped in the package
    if "site-packages" in str(pkg):
        assert root == pkg / "_tables"


def test_readme_library_example_runs():
    """The README's Python snippet runs as written and its explanation names its sources."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    env: dict = {}
    exec(compile(snippet, "README.md", "exec"), env)
    result = env["result"]
    assert str(result["medfee_sumamt"]) == "4200.00"
    assert "来源" in str(result.explain())


def test_benchmark_script_runs_and_prints_its_figures():
    """bench/bench_score.py (the performance figures of the README) on a tiny file: it generates the
    bills, runs pyarrow's read and `ybcalc score` repeatedly, and prints one row of figures."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_score.py"), "3000", "--repeat", "2",
                          "--jobs", "1"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    header, row = out.splitlines()[1], out.splitlines()[-1]
    assert "time×read" in header and "median" in header and "CPU s" in header
    assert row.split()[0] == "3,000" and len(row.split()) == 11    # one figure per column
    assert float(row.split()[6]) > 0                                # CPU seconds of the scoring
    # the same bills as a Parquet input, against pyarrow's Parquet read
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_score.py"), "3000", "--repeat", "1",
                          "--jobs", "1", "--parquet-in"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "input .parquet" in out.splitlines()[0] and out.splitlines()[-1].split()[0] == "3,000"


def test_floor_script_prints_the_unavoidable_steps_and_adds_them_up():
    """bench/floor.py (the README's floor under the time target) on a tiny file: every unavoidable
    step is timed, the floor is their CPU-seconds added up, and the target is twice the plain read."""
    import re
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "floor.py"), "3000", "--repeat", "1"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from floor import STEPS
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines()[2:] if not line.startswith(("target", "floor", "left"))}
    assert set(STEPS) <= set(rows) and "pyarrow plain read" in rows
    cpu = sum(float(rows[s][1]) for s in STEPS)
    floor = float(re.search(r"floor \(the steps above\): ([0-9.]+) CPU-s", out).group(1))
    assert abs(floor - cpu) <= 0.005 * len(STEPS)          # each row is rounded to 0.01
    target = float(re.search(r"target \(2 × plain read\): ([0-9.]+) s wall", out).group(1))
    assert abs(target - 2 * float(rows["pyarrow plain read"][0])) <= 0.011
    assert re.search(r"left for all settlement logic: -?[0-9.]+ s wall = [0-9,]+ ns of CPU per line item", out)


def test_benchmark_script_explains_its_arguments():
    """`--help` prints the usage (it used to be read as a size and crash), and a bad size is named."""
    import subprocess
    import sys
    script = str(ROOT / "bench" / "bench_score.py")
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, check=True)
    assert "--repeat" in out.stdout and "1e6" in out.stdout
    bad = subprocess.run([sys.executable, script, "ten"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'ten'" in bad.stderr


def test_readme_dask_example_runs(monkeypatch):
    """The README's Dask snippet settles the bundled example as the local path does."""
    import pytest
    pytest.importorskip("dask")
    import ybcalc
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("### Past one machine")[1]
    snippet = section.split("```\n", 1)[1].split("\n```", 1)[0]
    assert "ybcalc.dask.read_csv" in snippet
    monkeypatch.chdir(ROOT)
    env: dict = {}
    exec(compile(snippet.replace("bills.csv", "examples/bills.csv"), "README.md", "exec"), env)
    local = ybcalc.score(__import__("pandas").read_csv(ROOT / "examples" / "bills.csv", dtype=str,
                                                       keep_default_na=False))
    assert sorted(env["bills"]["mdtrt_id"]) == sorted(local["mdtrt_id"]) and len(env["rejects"]) == 0


def _readme_tool():
    """tools/update_readme_example.py, which finds the README's commands with their shown output."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("update_readme_example", ROOT / "tools" / "update_readme_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


READMES = ("README.md", "README.zh.md")
_TABLES_HASH = re.compile(r"#[0-9a-f]{8}\b")      # the policy version's hash changes with any table edit


def test_readme_worked_example_shows_what_its_command_prints():
    """The worked example (我能报多少) shows the output its command prints today, in both READMEs."""
    tool = _readme_tool()
    printed = {}
    for name in READMES:
        shown = tool.shown_outputs((ROOT / name).read_text(encoding="utf-8"))
        assert any("explain" in command for command, _ in shown), f"{name} lost its worked example"
        for command, output in shown:
            if command not in printed:
                printed[command] = tool.run(command)
            assert _TABLES_HASH.sub("#", output) == _TABLES_HASH.sub("#", printed[command]), \
                f"{name}: the output shown for `{command}` is stale: run `python tools/update_readme_example.py`"


def test_readme_worked_example_reading_quotes_the_output():
    """The amounts the 'how to read it' paragraph names are the ones the output shows."""
    tool = _readme_tool()
    money = re.compile(r"\d{1,3}(?:,\d{3})*\.\d\d")
    for name in READMES:
        text = (ROOT / name).read_text(encoding="utf-8")
        (command, output), = [s for s in tool.shown_outputs(text) if "explain" in s[0]]
        reading = text.split(output, 1)[1].split("\n## ", 1)[0]
        quoted = set(money.findall(reading))
        assert len(quoted) >= 5, name
        assert quoted <= set(money.findall(output)), (name, quoted - set(money.findall(output)))


def test_chinese_readme_keeps_step_with_the_english_one():
    """README.zh.md has the same sections and the very same commands, code and outputs as README.md."""
    english, chinese = ((ROOT / n).read_text(encoding="utf-8") for n in READMES)
    fenced = re.compile(r"```[a-z]*\n.*?```", re.S)
    assert fenced.findall(chinese) == fenced.findall(english)
    assert len(re.findall(r"^## ", chinese, re.M)) == len(re.findall(r"^## ", english, re.M))
    assert "README.zh.md" in english and "README.md" in chinese     # each links to the other


def test_gitignore_covers_what_the_readme_commands_write():
    """The files the README's commands write in the checkout are not left untracked in `git status`."""
    ignored = {line.strip().lstrip("/") for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()}
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    written = set(re.findall(r"(?:-o|--out|--rejects|--csv)\s+([\w.-]+\.(?:csv|parquet|png))\b", text))
    assert {"settlements.csv", "compare.png"} <= written
    assert written <= ignored, written - ignored
