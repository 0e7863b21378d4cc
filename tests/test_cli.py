"""Every script's command line: ``--help`` documents every option, a closed pipe is no traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p for p in (ROOT / "scripts").glob("*.py") if 'if __name__ == "__main__"' in p.read_text()
)
ENTRY = re.compile(r"^  (\S.*)$")  # an option or positional argument, at argparse's indent
SUBCOMMANDS = re.compile(r"^  \{([\w,-]+)\}")


def help_text(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, *argv, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def undocumented(text: str) -> list[str]:
    """Entries of argparse's help listing with no description on their line or the next."""
    lines = text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        match = ENTRY.match(line)
        if not match or line.rstrip().endswith(":") or match.group(1).startswith("{"):
            continue
        entry = match.group(1)
        if re.search(r"\S {2,}\S", entry):  # "--flag VALUE    what it does"
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.startswith(" " * 8) and following.strip():
            continue
        missing.append(entry.strip())
    return missing


def commands() -> list[tuple[str, ...]]:
    """Every script, and each subcommand of those that have them."""
    found: list[tuple[str, ...]] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = dict(zip(SCRIPTS, pool.map(lambda p: help_text(str(p)), SCRIPTS), strict=True))
    for script, text in texts.items():
        found.append((str(script.relative_to(ROOT)),))
        for match in SUBCOMMANDS.finditer(text.replace("\n", "\n")):
            found.extend((str(script.relative_to(ROOT)), sub) for sub in match.group(1).split(","))
    return found


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, ...], str]:
    argvs = commands()
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(argvs, pool.map(lambda argv: help_text(*argv), argvs), strict=True))


def test_every_script_is_covered() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"ask.py", "local.py", "evaluate.py", "cost_calculator.py", "doctor.py"} <= names


def test_every_option_has_help_text(helps: dict[tuple[str, ...], str]) -> None:
    missing = {" ".join(argv): undocumented(text) for argv, text in helps.items()}
    assert not {argv: m for argv, m in missing.items() if m}


def test_the_checker_sees_an_undocumented_option() -> None:
    text = "options:\n  -h, --help  show this help\n  --format {text,json}\n  --seed SEED  seed\n"
    assert undocumented(text) == ["--format {text,json}"]


def test_a_closed_pipe_ends_quietly() -> None:
    """A script whose reader leaves (``… | head -c 1``) exits 141 without a traceback."""
    code = (
        "import sys; sys.path.insert(0, 'scripts'); import cli\n"
        "def main():\n"
        "    for _ in range(100_000):\n"
        "        print('x' * 100)\n"
        "cli.run(main)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.read(1)
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141
    assert stderr == "", stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_exits_through_cli_run(script: Path) -> None:
    assert "cli.run(main)" in script.read_text()


def test_no_script_puts_paths_on_sys_path() -> None:
    """Scripts import the core as an installed package (pyproject.toml), not through a shim."""
    shims = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "scripts").rglob("*.py")
        if re.search(r"^(import _bootstrap|if str\(.*\) not in sys\.path)", path.read_text(), re.M)
    ]
    assert not shims
