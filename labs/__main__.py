"""The labs' command line (the Makefile's `make labs`, `make lab`, `make lab-check`, ...):

python -m labs list               every lab, and where you are in each
python -m labs start NN           reset the previous lab, put the stack in lab NN's starting
                                  state, print the task
python -m labs check NN           check lab NN on the running stack; exit status 0 when every
                                  point holds
python -m labs reset              undo the current lab's starting state
python -m labs up SERVICE...      rebuild and restart services from your files, with the
                                  current lab's Compose overlays, and wait until healthy
"""

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path

from labs.lablib import ROOT, Check, Lab, LabError, Stack, load_state

LABS_DIR = ROOT / "labs"


def lab_folders() -> dict[str, Path]:
    """{"01": labs/01-follow-a-request, ...}: every folder NN-name with a lab.py."""
    found = {}
    for folder in sorted(LABS_DIR.iterdir()):
        match = re.fullmatch(r"(\d\d)-[\w-]+", folder.name)
        if match and (folder / "lab.py").exists():
            found[match.group(1)] = folder
    return found


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def open_lab(number: str, tree: Path = ROOT) -> Lab:
    folders = lab_folders()
    number = number.zfill(2)
    if number not in folders:
        raise LabError(f"there is no lab {number}; `make labs` lists them")
    module = load_module(folders[number] / "lab.py", f"lab{number}")
    return Lab(number, module, folders[number], tree)


def task_text(lab: Lab) -> str:
    """The "Your task" section of the lab's README: what `make lab` prints."""
    readme = (lab.folder / "README.md").read_text()
    match = re.search(r"^## Your task\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    return match.group(1).strip() if match else ""


def require_running_stack(stack: Stack) -> None:
    # Any answer from lb1's stats page will do: the stack may be broken on purpose (lab 07).
    if stack.get("/", base=stack.stats_url).status == 0:
        raise LabError(
            f"no stack answers on {stack.url} (project {stack.project}): run `make up` first"
        )


# --- The commands --------------------------------------------------------------------------------


def list_labs(tree: Path = ROOT) -> None:
    state = load_state(tree)
    results = state.get("results", {})
    print(f"{'lab':4} {'tier':14} {'min':>4}  {'status':28} title")
    for number in lab_folders():
        module = open_lab(number, tree).module
        result = results.get(number)
        if state.get("lab") == number:
            status = "in progress"
        elif result:
            status = ("passed " if result["passed"] else "not yet ") + result["at"][:16]
        else:
            status = "-"
        print(f"{number:4} {module.TIER:14} {module.MINUTES:>4}  {status:28} {module.TITLE}")
    print("\nmake lab LAB=NN starts one; its README is labs/NN-*/README.md")


def start(number: str, tree: Path = ROOT) -> Lab:
    lab = open_lab(number, tree)
    require_running_stack(lab.stack)
    previous = lab.state.get("lab")
    if previous:
        print(f"== lab {previous} was in progress: resetting it first")
        reset(tree)
        lab = open_lab(number, tree)
    print(f"== lab {lab.number}: {lab.module.TITLE} - setting up the starting state")
    lab.begin()
    lab.module.start(lab)
    print(f"\n{task_text(lab)}\n")
    print(f"Read labs/{lab.folder.name}/README.md; when done:  make lab-check LAB={lab.number}")
    return lab


def check(number: str, tree: Path = ROOT, out=print, wait: float | None = None) -> Check:
    """Run lab NN's checker. `wait`: how long a checker that watches for a procedure (drain,
    scale out) waits for it to happen (default LAB_WAIT, or 180 s)."""
    lab = open_lab(number, tree)
    lab.wait = wait if wait is not None else float(os.environ.get("LAB_WAIT", 180))
    require_running_stack(lab.stack)
    out(f"== lab {lab.number}: {lab.module.TITLE}")
    result = Check(out)
    lab.module.check(lab, result)
    out(f"== {result.summary()}: " + ("lab done, well done!" if result.passed else "not yet"))
    lab.record_result(result.passed)
    return result


def reset(tree: Path = ROOT, rebuild_from: Path | None = None) -> None:
    """Undo the current lab: its runtime changes (the lab's own `reset`, if it has one), its file
    edits, its overlays; then rebuild its services from the files (`rebuild_from`: another tree,
    the tests' pristine checkout) and remove containers of services no longer in the files."""
    current = load_state(tree).get("lab")
    if not current:
        print("no lab in progress: the stack is as your files make it")
        return
    lab = open_lab(current, tree)
    print(f"== resetting lab {lab.number}: {lab.module.TITLE}")
    for note in lab.undo():
        print(f"   {note}")
    stack = Stack(rebuild_from or tree)
    services = tuple(lab.module.SERVICES)
    try:
        if services:
            print(f"   rebuilding {' '.join(services)} from the files")
            stack.rebuild_tier_by_tier(*services)
    finally:
        # What the lab changed at run time (server states, the database), once the files are back.
        if hasattr(lab.module, "reset"):
            lab.module.reset(stack)
    print("   done: the stack is back to its default for this lab's tiers")


def up(services: list[str], tree: Path = ROOT) -> None:
    state = load_state(tree)
    stack = Stack(tree, tuple(state.get("overlays", [])) if state.get("lab") else ())
    result = stack.compose(
        "up", "--detach", "--build", "--wait", "--no-deps", *services, quiet=False
    )
    sys.exit(result.returncode)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    for name in ("start", "check"):
        commands.add_parser(name).add_argument("number")
    commands.add_parser("reset")
    commands.add_parser("up").add_argument("services", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            list_labs()
        elif args.command == "start":
            start(args.number)
        elif args.command == "check":
            return 0 if check(args.number).passed else 1
        elif args.command == "reset":
            reset()
        elif args.command == "up":
            up(args.services)
    except LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
