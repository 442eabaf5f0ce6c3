"""Runs every benchmark module in its own process and prints one table (``make bench``).

Each module exposes ``run(report)``; a separate process per module keeps one module's memory
and JIT warm-up out of another's figures, and lets us read the child's peak RSS from the kernel.
Results also go to ``bench-results/latest.json`` for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

MODULES = [
    "benchmarks.bench_records",
    "benchmarks.bench_segments",
    "benchmarks.bench_wal",
    "benchmarks.bench_log",
    "benchmarks.bench_grpc",
    "benchmarks.bench_kafka_consume",
    "benchmarks.bench_kafka_produce",
    "benchmarks.bench_sql",
]


def run_one(module: str) -> None:
    """Child side: import the module and print each result as a JSON line."""
    import importlib

    def report(name: str, records_per_s: float, peak_mem_mb: float, **extra: object) -> None:
        line = {"name": name, "records_per_s": records_per_s, "peak_mem_mb": peak_mem_mb, **extra}
        print("RESULT " + json.dumps(line), flush=True)

    importlib.import_module(module).run(report)


def run_all(modules: list[str]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for module in modules:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.run", "--one", module],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        lines = proc.stdout.read().splitlines()
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak_rss_mb = rusage.ru_maxrss / 1024
        for line in lines:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                result["module"] = module
                result["process_peak_rss_mb"] = round(peak_rss_mb, 1)
                results.append(result)
            else:
                print(line)
        if proc.returncode != 0:
            print(f"{module} failed with exit code {proc.returncode}", file=sys.stderr)
        print(f"# {module}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", help="run a single module (internal)")
    parser.add_argument("modules", nargs="*", help="subset of modules to run")
    args = parser.parse_args()
    if args.one:
        run_one(args.one)
        return 0
    modules = [m if m.startswith("benchmarks.") else f"benchmarks.{m}" for m in args.modules]
    results = run_all(modules or MODULES)
    print(f"\n{'benchmark':58} {'records/s':>14} {'peak MB':>9} {'RSS MB':>8}")
    for r in results:
        print(
            f"{r['name']:58} {r['records_per_s']:>14,.0f} {r['peak_mem_mb']:>9.1f} "
            f"{r['process_peak_rss_mb']:>8.1f}"
        )
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    (out / "latest.json").write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
