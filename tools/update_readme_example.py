"""Rewrite the outputs shown in the READMEs from the commands above them (tests fail while one is stale).

A README shows a command's output as a ```text block right after the command's own ``` block; this
runs each such command from the repository root and writes what it prints into the block.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "README.zh.md"]
# a one-line ybcalc command in its own block, followed by the block of its output
COMMAND_AND_OUTPUT = re.compile(r"```\n(ybcalc [^\n]+)\n```\n\n```text\n(.*?)```", re.S)


def run(command: str) -> str:
    """What the command prints, run as `python -m ybcalc` from the repository root."""
    args = shlex.split(command)
    done = subprocess.run([sys.executable, "-m", "ybcalc", *args[1:]], capture_output=True, text=True,
                          cwd=ROOT, encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"`{command}` failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def shown_outputs(text: str) -> list[tuple[str, str]]:
    """(command, output as shown) for every command whose output a README shows."""
    return COMMAND_AND_OUTPUT.findall(text)


def refresh(text: str) -> str:
    return COMMAND_AND_OUTPUT.sub(lambda m: f"```\n{m.group(1)}\n```\n\n```text\n{run(m.group(1))}```", text)


def main() -> int:
    for path in READMES:
        if path.exists():
            path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")
            print(f"{path.name}: the outputs of {len(shown_outputs(path.read_text(encoding='utf-8')))} "
                  "command(s) updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
