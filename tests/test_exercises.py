"""The exercises: every starter cell of a chapter notebook runs and its checker says 'not yet';
every exercise has a worked solution in `nbs/solutions/` that its checker passes. The solutions
run here only (`nbs/solutions/.notest` keeps nbdev_test from running them a second time)."""
import contextlib
import io
import json
from pathlib import Path

import pytest

from warpgan import exercises

NBS = Path(__file__).resolve().parents[1] / "nbs"


def _code_cells(path: Path) -> list:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"]


def _starters(path: Path) -> list:
    "The exercise starter cells of a chapter notebook: the cells that call a checker."
    return [s for s in _code_cells(path) if "from warpgan.exercises import check_" in s]


def _run(source: str, namespace: dict) -> dict:
    "Run one cell's source with its printout captured; the verdicts it recorded."
    exercises.VERDICTS.clear()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, "<cell>", "exec"), namespace)
    return dict(exercises.VERDICTS)


CHAPTERS = [p for p in sorted(NBS.glob("[0-9]*.ipynb")) if _starters(p)]


def test_some_chapters_have_checked_exercises():
    assert CHAPTERS, "no chapter notebook calls an exercise checker"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_starters_say_not_yet_and_solutions_pass(chapter):
    "Each starter cell runs and fails its checker; the worked solutions pass every one of them."
    starters = _starters(chapter)
    assert len(starters) >= 3, f"{chapter.name}: {len(starters)} checked exercises, expected ≥ 3"
    asked = {}
    for source in starters:
        verdicts = _run(source, {})
        assert verdicts, f"{chapter.name}: a starter cell recorded no verdict:\n{source}"
        assert not any(verdicts.values()), f"{chapter.name}: a starter already passes: {verdicts}"
        asked.update(verdicts)
    solution = NBS / "solutions" / chapter.name
    assert solution.exists(), f"no worked solutions for {chapter.name} in nbs/solutions/"
    passed, namespace = {}, {}
    for source in _code_cells(solution):
        passed.update(_run(source, namespace))
    assert set(asked) <= set(passed), f"{chapter.name}: no solution for {sorted(set(asked) - set(passed))}"
    assert all(passed[name] for name in asked), passed
