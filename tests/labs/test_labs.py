"""Every lab, both ways, on the one test stack: its checker must fail on the lab's starting state
and pass once the lab's reference solution (labs/solutions/NN.py) is applied.

Each lab works on a scratch copy of the repository (the files git knows, and .secrets/), so a
solution's edits never touch this checkout: `make lab` and the solution change the scratch copy,
and rebuild only the services the lab touches, under the test stack's project name. Afterwards
`reset` rebuilds those services from this checkout, so the next lab starts from the default stack.

A solution may have `during_check(lab)`: what a student does while the checker watches (labs whose
checker sends load and waits for a procedure, e.g. draining a node). It runs in a thread beside
the check. At the start, such a checker waits only WAIT_AT_START seconds for a procedure that
nobody performs.
"""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from labs.__main__ import check, lab_folders, load_module, open_lab, reset, start
from labs.lablib import ROOT
from tests.stack import Stack

WAIT_AT_START = 4.0


def scratch_copy(destination: Path) -> Path:
    """The working tree's files as git sees them (committed or not, ignored ones left out), plus
    the stack's secrets, so services rebuilt from the copy talk to the same database."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copytree(ROOT / ".secrets", destination / ".secrets")
    return destination


class PhaseClock:
    """Seconds spent in each phase of a lab's test, printed with its result, so that a CI log
    shows where the labs' time goes (rebuilds, checkers' waits, load). A phase is named when it
    begins, so a phase that fails still shows its own seconds, not the next one's."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []
        self.phase: str | None = None
        self.since = time.monotonic()

    def begin(self, phase: str | None) -> None:
        """End the current phase, if any, and begin `phase` (None: end without a next one)."""
        now = time.monotonic()
        if self.phase is not None:
            self.laps.append((self.phase, now - self.since))
        self.phase, self.since = phase, now

    def __str__(self) -> str:
        total = sum(seconds for _, seconds in self.laps)
        laps = ", ".join(f"{phase} {seconds:.0f}s" for phase, seconds in self.laps)
        return f"{total:.0f}s ({laps})"


@pytest.mark.parametrize("number", sorted(lab_folders()))
def test_lab_fails_at_start_and_passes_with_its_solution(
    stack: Stack, number: str, tmp_path: Path
) -> None:
    tree = scratch_copy(tmp_path / "tree")
    solution = load_module(ROOT / "labs" / "solutions" / f"{number}.py", f"solution{number}")
    phases = PhaseClock()
    try:
        phases.begin("start")
        start(number, tree)
        phases.begin("check at start")
        before = check(number, tree, wait=WAIT_AT_START)
        assert not before.passed, f"lab {number}'s checker passes on its starting state"

        phases.begin("solution")
        solution.apply(open_lab(number, tree))
        phases.begin("check solved")
        during = getattr(solution, "during_check", None)
        helper = threading.Thread(target=during, args=(open_lab(number, tree),), daemon=True)
        if during:
            helper.start()
        after = check(number, tree)
        if during:
            helper.join(timeout=300)
        assert after.passed, f"lab {number}'s checker fails with its reference solution"
    finally:
        phases.begin("reset")
        reset(tree, rebuild_from=ROOT)
        phases.begin(None)
        print(f"lab {number}: both ways in {phases}")


def test_every_lab_has_a_readme_a_task_and_a_solution() -> None:
    for number, folder in lab_folders().items():
        lab = open_lab(number)
        readme = (folder / "README.md").read_text()
        assert "## Your task" in readme, f"lab {number}'s README has no task"
        assert lab.module.TITLE and lab.module.MINUTES, number
        assert (ROOT / "labs" / "solutions" / f"{number}.py").exists(), number
    assert os.environ.get("COMPOSE_PROJECT_NAME") != "fourtier", "tests never use `make up`'s stack"
