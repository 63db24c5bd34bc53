"""`make bench`: run every bench/bench_*.py and write BENCHMARKS.md.

Each benchmark measures dataprep and the baseline a user would otherwise write, in the same run on the same
machine, and reports the ratio. Numbers are never copied from elsewhere: rerun this to refresh them.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["dataprep", "pyarrow", "pandas", "polars", "xxhash", "datasets", "torch", "transformers", "peft"]


@dataclass
class Result:
    name: str
    ours: float
    baseline: float
    unit: str            # e.g. "rows/s", "s"
    baseline_name: str
    higher_is_better: bool = True
    notes: str = ""

    @property
    def ratio(self) -> float:
        if not self.ours or not self.baseline:
            return float("nan")
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours


# A child's own peak RSS, read from /proc/self/status at its exit. Not wait4's ru_maxrss: Linux carries the
# parent's high-water mark across fork and exec into it, so every child of a bench process that has loaded
# torch would report at least the parent's size.
_PEAK_RSS = ("import atexit as _atexit, sys as _sys\n_atexit.register(lambda: print('peak_rss_kb', next("
             "line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')), "
             "file=_sys.stderr))\n")


@dataclass
class Child:
    seconds: float
    rss_mb: float
    stdout: str


def run_python(args: list[str], cwd: Path) -> Child:
    """Run `python -c CODE ARG...` (args = ["-c", CODE, ...]) or `python SCRIPT ARG...` in a fresh process;
    its wall time, its own peak RSS and its stdout. Raises with the end of its stderr when it fails."""
    if args[0] == "-c":
        argv = [sys.executable, "-c", _PEAK_RSS + args[1], *args[2:]]
    else:
        run_script = f"import runpy, sys\nsys.argv = {args!r}\nrunpy.run_path({args[0]!r}, run_name='__main__')"
        argv = [sys.executable, "-c", _PEAK_RSS + run_script]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0][:60]!r} failed:\n{proc.stderr[-3000:]}")
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("peak_rss_kb ")]
    return Child(seconds, int(peak[-1]) / 1024, proc.stdout)


def machine() -> list[str]:
    versions = []
    for pkg in PACKAGES:
        try:
            versions.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return [f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            f"- python: {sys.version.split()[0]}", f"- versions: {', '.join(versions)}"]


def render(results: list[Result], seconds: float) -> str:
    lines = ["# Benchmarks", "", "Written by `make bench` (bench/run.py); every ratio compares dataprep with its",
             "baseline measured in the same run. Ratio > 1 means dataprep is better.", "", *machine(),
             f"- total bench time: {seconds:.0f} s", "",
             "| benchmark | dataprep | baseline | baseline is | ratio | notes |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.name} | {r.ours:,.4g} {r.unit} | {r.baseline:,.4g} {r.unit} | {r.baseline_name} "
                     f"| {r.ratio:.2f}× | {r.notes} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--only", help="run only bench/bench_<ONLY>.py")
    args = parser.parse_args()
    out = Path(args.out).resolve()  # benchmarks may change directory (to the repository root)
    sys.path.insert(0, str(HERE))
    modules = sorted(p.stem for p in HERE.glob("bench_*.py") if not args.only or p.stem == f"bench_{args.only}")
    started, results = time.perf_counter(), []
    for name in modules:
        print(f"== {name}", file=sys.stderr)
        for r in importlib.import_module(name).run():
            print(f"   {r.name}: {r.ours:.4g} vs {r.baseline:.4g} {r.unit} -> {r.ratio:.2f}x", file=sys.stderr)
            results.append(r)
    out.write_text(render(results, time.perf_counter() - started))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
