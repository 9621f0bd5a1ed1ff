"""Mutation testing of the core rules with mutmut 3 (`make mutation`); writes the score to docs/testing.md.

mutmut changes one small thing at a time in the modules named in pyproject's ``[tool.mutmut]``
(a flipped comparison, a changed constant, a dropped argument) and runs the fast tests that reach
the changed function: the tests under tests/unit and tests/rules marked ``@pytest.mark.mutation``
(the selection is pyproject's ``[tool.mutmut]``). A mutant the tests do not notice "survives". The
run happens in a scratch copy of the package and tests (``--workdir``), so the checkout is never
touched and several people can keep editing while it runs. Results accumulate in the scratch
folder, so a run per module (``--modules acceptance translate``) adds to the previous ones.

Survivors that no test can kill (the mutant computes the same thing) are listed in
docs/testing.md under "Equivalent mutants" as ``- `<mutant name>`: <one-line reason>``; the score
reports them apart. Everything else that survives is listed as open.

    python benchmarks/mutation.py                          # every module, 1 child process
    python benchmarks/mutation.py --modules acceptance plan --threads 1
    python benchmarks/mutation.py --report-only            # rewrite the doc from the last results
    python benchmarks/mutation.py --dry-run                # copy, run the selected tests once, mutate nothing
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "testing.md"
BEGIN, END = "<!-- mutation:begin (written by benchmarks/mutation.py) -->", "<!-- mutation:end -->"

# module key -> file (the scope of issue 11); the mutant names start with the dotted module path
MODULES = {
    "acceptance": "m2m_pipeline/acceptance.py",
    "translate": "m2m_pipeline/translate.py",
    "plan": "m2m_pipeline/plan.py",
    "metrics": "m2m_pipeline/metrics.py",
    "pools.config": "m2m_pipeline/pools/config.py",
    "pools.draws": "m2m_pipeline/pools/draws.py",
    "pools.generate": "m2m_pipeline/pools/generate.py",
    "pools.shard": "m2m_pipeline/pools/shard.py",
    "pools.backends": "m2m_pipeline/pools/backends.py",
    "pools.reuse": "m2m_pipeline/pools/reuse.py",
    "pools.sources.stored": "m2m_pipeline/pools/sources/stored.py",
    "pools.sources.translated": "m2m_pipeline/pools/sources/translated.py",
    "pools.sources.reused": "m2m_pipeline/pools/sources/reused.py",
    "pools.rules": "m2m_pipeline/pools/rules.py",
    "training.losses": "m2m_pipeline/training/losses.py",
    "training.schedule": "m2m_pipeline/training/schedule.py",
    "training.loop": "m2m_pipeline/training/loop.py",
    "training.methods": "m2m_pipeline/training/methods.py",
}
KILLED = {"killed", "timeout", "caught by type check"}
RUN_LOG = "RUNS.jsonl"   # in the workdir: one line per run whose verdicts the report shows


def machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{cpus}-core CPU ({platform.processor() or platform.machine()}), no GPU, {platform.system()} {platform.release()}"


def copy_tree(src_root: Path, dst: Path, ref: str | None, overlay: list[str] = (), fresh: bool = False) -> str:
    """Copy the package, the tests, pyproject.toml and params.yaml into ``dst``. With ``ref``, the
    package and the tests come from that git revision (``git archive``, read-only), with the
    ``overlay`` files of the work tree laid over them; returns a description of the source."""
    if dst.exists():
        for name in ("m2m_pipeline", "tests"):
            shutil.rmtree(dst / name, ignore_errors=True)
    dst.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    if ref:
        archive = subprocess.run(["git", "-C", str(src_root), "archive", ref, "m2m_pipeline", "tests", "params.yaml"],
                                 check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
        rev = subprocess.run(["git", "-C", str(src_root), "rev-parse", "--short", ref], check=True,
                             capture_output=True, text=True).stdout.strip()
        source = f"package and tests at git {rev}"
        for rel in overlay:  # work-tree files laid over the revision (e.g. a change not yet committed)
            shutil.copy2(src_root / rel, dst / rel)
        if overlay:
            source += f", work-tree {', '.join(overlay)}"
    else:
        shutil.copytree(src_root / "m2m_pipeline", dst / "m2m_pipeline", ignore=ignore)
        rev = subprocess.run(["git", "-C", str(src_root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src_root), "status", "--porcelain", "m2m_pipeline", "tests"],
                               capture_output=True, text=True).stdout.strip()
        source = f"work tree at git {rev}" + (" with uncommitted changes" if dirty else "")
        shutil.copytree(src_root / "tests", dst / "tests", ignore=ignore)
        shutil.copy2(src_root / "params.yaml", dst / "params.yaml")
    shutil.copy2(src_root / "pyproject.toml", dst / "pyproject.toml")  # the mutmut settings of the work tree
    # Verdicts carry over between runs (one module at a time) only for the very same package: mutmut
    # does not refresh every copied file in mutants/, so a changed package starts afresh. Changed
    # tests keep the verdicts (tests are added to kill survivors) and the survivors are re-run.
    def digest(top: tuple[str, ...]) -> str:
        h = hashlib.sha256()
        for path in sorted(p for p in dst.rglob("*") if p.is_file() and p.parts[len(dst.parts)] in top):
            h.update(str(path.relative_to(dst)).encode() + path.read_bytes())
        return h.hexdigest()

    package, tests = digest(("m2m_pipeline", "params.yaml", "pyproject.toml")), digest(("tests",))
    stamp = dst / "CONTENT_SHA256"
    old = stamp.read_text().split() if stamp.exists() else []
    if fresh or len(old) != 2 or old[0] != package:
        shutil.rmtree(dst / "mutants", ignore_errors=True)
        (dst / RUN_LOG).unlink(missing_ok=True)   # the runs behind the verdicts go with them
    elif old[1] != tests:
        (dst / "TESTS_CHANGED").write_text("1\n")
    stamp.write_text(f"{package} {tests}\n")
    return source


def run_mutmut(workdir: Path, modules: list[str], max_children: int, threads: int, log) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    mutmut = [sys.executable, "-m", "mutmut"]
    patterns = [f"m2m_pipeline.{m}.*" for m in modules]
    start = time.perf_counter()
    for pattern in patterns:
        cmd = mutmut + ["run", "--max-children", str(max_children), pattern]
        log(f"$ (cd {workdir} && {' '.join(cmd[1:])})")
        proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = proc.stdout.strip().splitlines()[-5:]
        log("\n".join(tail))
        if proc.returncode not in (0, 1):
            raise SystemExit(f"error: mutmut run {pattern} failed with exit code {proc.returncode}")
    return time.perf_counter() - start


def rerun_survivors(workdir: Path, test_files: list[str], max_children: int, threads: int, log) -> float:
    """Lay the work tree's ``test_files`` over the scratch copy (and mutmut's copy of it) and run
    only the surviving mutants again: the way to check that new tests kill them without re-running
    every mutant. The package is not re-copied, so the verdicts stay those of the same code."""
    for rel in test_files:
        for base in (workdir, workdir / "mutants"):
            shutil.copy2(ROOT / rel, base / rel)
    # survivors, and mutants no test reached before (new tests may reach them)
    survivors = [n for n, s in read_results(workdir).items() if s in ("survived", "no tests")]
    log(f"re-running {len(survivors)} surviving mutants with the work tree's {', '.join(test_files)}")
    if not survivors:
        return 0.0
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *survivors],
                          cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log("\n".join(proc.stdout.strip().splitlines()[-3:]))
    if test_files:
        with open(workdir / "SOURCE", "a") as fh:
            fh.write(f"survivors re-run with the work tree's {', '.join(test_files)}\n")
    return time.perf_counter() - start


def read_results(workdir: Path) -> dict[str, str]:
    """{mutant name: status} of every mutant mutmut has a verdict (or none) for."""
    proc = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir,
                          capture_output=True, text=True)
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s+(\S+): (.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def mutant_diff(workdir: Path, name: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir, capture_output=True, text=True)
    changed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("-", "+")) and not ln.startswith(("---", "+++"))]
    return " / ".join(ln[:1] + " " + ln[1:].strip() for ln in changed)[:220]


def module_of(name: str) -> str:
    dotted = name.split(".x_")[0].split(".xǁ")[0]
    parts = dotted.split(".")[1:]
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in MODULES:
            return key
    return ".".join(parts[:1])


def equivalent_reasons(doc: str) -> dict[str, str]:
    """The hand-written list in docs/testing.md: ``- `name`: reason`` under '## Equivalent mutants'."""
    section = doc.split("## Equivalent mutants", 1)[1] if "## Equivalent mutants" in doc else ""
    section = section.split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^- `([^`]+)`: (.+)$", section, flags=re.M)}


def log_run(workdir: Path, **record) -> None:
    """Append a run (command, date, wall time, baseline, modules) to the workdir's run log."""
    record["date"] = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}"
    with open(workdir / RUN_LOG, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def read_runs(workdir: Path) -> list[dict]:
    path = workdir / RUN_LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def render(results: dict[str, str], equivalent: dict[str, str], workdir: Path, *, source: str) -> str:
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for name, status in sorted(results.items()):
        mod = module_of(name)
        if status == "not checked":  # generated but not run (a module left out of this run)
            by_module[mod]["not run"] += 1
        elif status in KILLED:
            by_module[mod]["killed"] += 1
        elif status == "survived" and name in equivalent:
            by_module[mod]["equivalent"] += 1
        elif status == "survived":
            by_module[mod]["survived"] += 1
            survivors[mod].append(name)
        else:
            by_module[mod][status] += 1
    lines = [BEGIN, "", f"- report written: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
             f"- machine: {machine()}",
             f"- source: {source}; mutmut {mutmut_version()}",
             "- the runs behind these verdicts (in order):"]
    for run in read_runs(workdir):
        what = ", ".join(run["modules"]) if run["modules"] else "the survivors of the runs before"
        lines.append(f"  - `{run['command']}` ({run['date']}; {run['max_children']} mutmut child process(es), "
                     f"{run['threads']} thread(s) each): {what}; {run['seconds'] / 60:.1f} min wall; the selected "
                     f"fast tests alone took {run['tests_seconds']:.1f} s in the same run")
    failing = (workdir / "DESELECTED").read_text().split() if (workdir / "DESELECTED").exists() else []
    if failing:
        lines.append(f"- deselected because they failed before any mutation: {', '.join(f'`{n}`' for n in failing)}")
    lines += ["", "Score = killed / (killed + survived), equivalent mutants left out; 'no tests' = no selected "
              "test reaches the function (counted apart).", "",
              "| module | mutants | killed | survived | equivalent | no tests / other | score |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    tot = Counter()
    for mod in MODULES:
        c = by_module.get(mod, Counter())
        not_run = c.pop("not run", 0)
        if not c:
            lines.append(f"| {mod} | - | - | - | - | - | not run |")
            continue
        other = sum(v for k, v in c.items() if k not in ("killed", "survived", "equivalent"))
        n = sum(c.values())
        tested = c["killed"] + c["survived"]
        score = f"{100 * c['killed'] / tested:.1f}%" if tested else "-"
        if not_run:
            score += f" (partial: {not_run} of {n + not_run} not run)"
        lines.append(f"| {mod} | {n} | {c['killed']} | {c['survived']} | {c['equivalent']} | {other} | {score} |")
        tot.update(c)
        tot["n"] += n
        tot["other"] += other
    tested = tot["killed"] + tot["survived"]
    total_score = f"{100 * tot['killed'] / tested:.1f}%" if tested else "-"
    lines.append(f"| **all run** | {tot['n']} | {tot['killed']} | {tot['survived']} | {tot['equivalent']} | "
                 f"{tot['other']} | **{total_score}** |")
    if tot["n"]:
        lines += ["", f"Counting the equivalent mutants as not killed: {tot['killed']} of {tot['n']} = "
                      f"{100 * tot['killed'] / tot['n']:.1f}%."]
    lines += ["", "### Surviving mutants (open)", ""]
    if not any(survivors.values()):
        lines.append("None.")
    for mod, names in survivors.items():
        for name in names:
            lines.append(f"- `{name}`: {mutant_diff(workdir, name)}")
    other = sorted(n for n, s in results.items() if s not in KILLED | {"survived", "not checked"})
    if other:
        lines += ["", "### Mutants without a verdict (no selected test reaches them, or other)", ""]
        lines += [f"- `{n}`: {results[n]}" for n in other]
    lines += ["", END]
    return "\n".join(lines)


def mutmut_version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def baseline_run(workdir: Path, threads: int) -> tuple[float, list[str], str]:
    """Run the selected tests once without mutation: their time (the baseline each mutant's run is
    compared to), the tests that already fail (mutmut needs a green start, so they are deselected
    and reported), and the slowest durations."""
    import tomllib

    conf = tomllib.loads((workdir / "pyproject.toml").read_text())["tool"]["mutmut"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", *conf["pytest_add_cli_args_test_selection"],
                           *conf["pytest_add_cli_args"], "-rfE", "--durations=8"], cwd=workdir, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if "error during collection" in proc.stdout or "errors during collection" in proc.stdout:
        errors = re.findall(r"^ERROR (\S+)", proc.stdout, flags=re.M)
        raise SystemExit(f"error: the selected tests do not collect (a test file does not import): {' '.join(errors)}")
    failing = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$", proc.stdout, flags=re.M)))
    durations = proc.stdout.split("slowest 8 durations", 1)[-1].split("===", 2)[-1] if "slowest" in proc.stdout else ""
    summary = (proc.stdout.strip().splitlines() or [""])[-1]   # "N passed, M deselected in S s": the selection's size
    durations = durations.strip()
    if summary not in durations:
        durations = (durations + "\n" + summary).strip()
    return seconds, failing, durations


def deselect(workdir: Path, nodeids: list[str]) -> None:
    """Add ``--deselect`` for each node id to the scratch copy's mutmut pytest arguments."""
    path = workdir / "pyproject.toml"
    text = path.read_text()
    extra = "".join(f', "--deselect", "{n}"' for n in nodeids)
    text = re.sub(r'^(pytest_add_cli_args = \[.*?)\]', lambda m: m.group(1) + extra + "]", text, count=1,
                  flags=re.M | re.S)
    path.write_text(text)


def write_doc(block: str) -> None:
    doc = DOC.read_text() if DOC.exists() else ""
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + block + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip() + "\n\n## Mutation score\n\n" + block + "\n"
    DOC.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", choices=sorted(MODULES), default=None,
                    help="modules to mutate (default: all of them)")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "m2m-mutation")
    ap.add_argument("--ref", default=None, help="mutate the package and tests of this git revision (add work-tree files with --overlay)")
    ap.add_argument("--overlay", nargs="*", default=[], help="with --ref: work-tree files to lay over the revision")
    ap.add_argument("--max-children", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="only rewrite docs/testing.md from the last results")
    ap.add_argument("--rerun-survivors", nargs="+", metavar="TEST_FILE", default=None,
                    help="lay these work-tree test files over the last run's copy and re-run its survivors only")
    ap.add_argument("--fresh", action="store_true", help="drop the verdicts of earlier runs")
    ap.add_argument("--no-doc", action="store_true", help="print the report instead of writing docs/testing.md")
    ap.add_argument("--dry-run", action="store_true",
                    help="copy the tree and run the selected (mutation-marked) tests once; mutate nothing, write nothing")
    args = ap.parse_args(argv)

    command = "python benchmarks/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    modules = args.modules or [m for m in MODULES if (ROOT / MODULES[m]).exists()]
    seconds = tests_seconds = None
    source_file = args.workdir / "SOURCE"
    source = "; ".join(source_file.read_text().strip().splitlines()) if source_file.exists() else "unknown"
    if args.rerun_survivors:
        for rel in args.rerun_survivors:
            shutil.copy2(ROOT / rel, args.workdir / rel)
        tests_seconds, failing, durations = baseline_run(args.workdir, args.threads)
        print(f"baseline: the selected tests take {tests_seconds:.1f} s without mutation\n{durations}", flush=True)
        if failing:
            raise SystemExit(f"error: tests fail before any mutation: {' '.join(failing)}")
        seconds = rerun_survivors(args.workdir, args.rerun_survivors, args.max_children, args.threads,
                                  lambda s: print(s, flush=True))
        source = "; ".join(source_file.read_text().strip().splitlines())
        modules = []
    elif not args.report_only:
        source = copy_tree(ROOT, args.workdir, args.ref, args.overlay, args.fresh)
        (args.workdir / "SOURCE").write_text(source + "\n")
        tests_seconds, failing, durations = baseline_run(args.workdir, args.threads)
        print(f"baseline: the selected tests take {tests_seconds:.1f} s without mutation\n{durations}", flush=True)
        if args.dry_run:
            print("failing before any mutation: " + (" ".join(failing) or "none"))
            return 1 if failing else 0
        if failing:
            print("deselected (failing before any mutation): " + " ".join(failing), flush=True)
            deselect(args.workdir, failing)
        (args.workdir / "DESELECTED").write_text("\n".join(failing) + "\n")
        seconds = run_mutmut(args.workdir, modules, args.max_children, args.threads, lambda s: print(s, flush=True))
        if (args.workdir / "TESTS_CHANGED").exists():  # earlier survivors, against the new tests
            seconds += rerun_survivors(args.workdir, [], args.max_children, args.threads, lambda s: print(s, flush=True))
            (args.workdir / "TESTS_CHANGED").unlink()
    results = read_results(args.workdir)
    doc = DOC.read_text() if DOC.exists() else ""
    if not args.report_only:
        log_run(args.workdir, command=command, seconds=seconds, tests_seconds=tests_seconds, modules=modules,
                max_children=args.max_children, threads=args.threads)
    block = render(results, equivalent_reasons(doc), args.workdir, source=source)
    if args.no_doc:
        print(block)
    else:
        write_doc(block)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
