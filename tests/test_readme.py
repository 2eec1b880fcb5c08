"""README.md's commands are the ones a newcomer needs and the ones CI runs."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_lines(text):
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", text, flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip()]


def test_readme_starts_with_install_and_demo_then_tests():
    lines = code_lines((ROOT / "README.md").read_text())
    assert lines[:3] == ['pip install -e ".[dev]"', "warpgan demo", "nbdev_test --n_workers 1 && pytest"]


def test_ci_installs_and_tests_as_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert "nbdev_test --n_workers 1" in ci and "pytest" in ci
    assert "python3 -m venv" in ci, "CI must use a fresh virtualenv"
    assert '"$rc" -eq 5' in ci, "pytest's exit 5 (no tests) must be handled"


def test_readme_benchmark_quotes_the_committed_run():
    "The README's benchmark block is `format_table` of nbs/results/benchmark.json, so its numbers cannot drift from the run."
    from warpgan.evaluate import format_table, read_json
    table = format_table(read_json(ROOT / "nbs" / "results" / "benchmark.json"))
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## The benchmark\n.*?```text\n(.*?)```", readme, flags=re.S).group(1)
    assert block.strip() == table.strip()
