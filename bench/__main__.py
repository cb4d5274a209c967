"""``python -m bench``: run the benchmark scenarios, save their JSON, regenerate docs/benchmarks.md.

python -m bench                      all scenarios, full size, 3 repetitions
python -m bench --quick              all scenarios, small size, 1 repetition (a few minutes)
python -m bench --only throughput    some scenarios (comma-separated)
python -m bench report               rebuild docs/benchmarks.md and the plot from bench/results/
python -m bench list                 the scenarios
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.env import REPO, RESULTS_DIR, broker_pid, ensure_kafka, load_average, machine_info
from bench.observe import FOREIGN_CORES, ForeignLoad
from bench.report import DOC_PATH, write_report
from bench.results import save
from bench.scenarios import SCENARIOS
from bench.stack import Interrupted, install_signal_handlers

log = logging.getLogger("bench")


def _under_load(foreign: float | None, before: list[float], after: list[float]) -> bool:
    # Unmeasured (a scenario too short to sample): fall back on the load average.
    if foreign is not None:
        return foreign > FOREIGN_CORES
    return max(before[0], after[0]) > (os.cpu_count() or 1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of ml-connector against the simulators and a real Kafka broker.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "report", "list"],
        help="run scenarios (default), rebuild the page from the JSON files, or list the scenarios",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition: a few minutes")
    p.add_argument("--only", default="", help="comma-separated scenarios to run (default: all)")
    p.add_argument("--skip", default="", help="comma-separated scenarios not to run")
    p.add_argument("--repeat", type=int, default=None, help="runs per scenario for medians (3 full, 1 quick)")
    p.add_argument("--no-profile", action="store_true", help="skip the extra py-spy profiled run")
    p.add_argument(
        "--max-customers",
        type=int,
        default=1_000_000,
        help="largest customer count any scenario uses (e.g. 100000 to leave out the 1M runs)",
    )
    p.add_argument(
        "--customers", type=int, default=None, help="use this customer count in every scenario (smoke runs)"
    )
    p.add_argument("--load-timeout", type=float, default=1800.0, help="bound on one load, in seconds")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--doc", type=Path, default=DOC_PATH, help="markdown page to regenerate")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the markdown page")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _selected(only: str, skip: str) -> list[str]:
    names = [n.strip() for n in only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names + [s.strip() for s in skip.split(",") if s.strip()] if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    skipped = {s.strip() for s in skip.split(",") if s.strip()}
    return [n for n in SCENARIOS if n in names and n not in skipped]


def _headline(document: dict[str, Any]) -> str:
    lines = []
    for t in document.get("targets", []):
        verdict = {True: "met", False: "NOT met", None: ""}[t["met"]]
        goal = "" if t["goal"] is None else f" (target {t['direction']} {t['goal']} {t['unit']})".rstrip()
        lines.append(f"  {t['name']}: {t['measured']} {t['unit']}{goal} {verdict}".rstrip())
    return "\n".join(lines)


async def _run(args: argparse.Namespace, names: list[str]) -> int:
    bootstrap = ensure_kafka()
    ctx = BenchContext(
        bootstrap=bootstrap,
        quick=args.quick,
        repeat=args.repeat or (1 if args.quick else 3),
        profile=not args.no_profile,
        max_customers=args.max_customers,
        load_timeout=args.load_timeout,
        results_dir=args.results_dir,
        customers=args.customers,
    )
    failures = 0
    for name in names:
        title, scenario = SCENARIOS[name]
        log.info("== %s: %s", name, title)
        before = load_average()
        started = time.monotonic()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        broker = broker_pid()
        with ForeignLoad([broker] if broker else []) as foreign:
            try:
                result = await scenario(ctx)
            except Exception as exc:
                log.exception("scenario %s failed", name)
                failures += 1
                result = {"error": f"{type(exc).__name__}: {exc}"[:4000]}
        after = load_average()
        cpu = foreign.figures()
        document = {
            "scenario": name,
            "title": title,
            "mode": "quick" if ctx.quick else "full",
            "repeat": ctx.repeat,
            "started_at": started_at,
            "duration_seconds": round(time.monotonic() - started, 1),
            "machine": machine_info(),
            "load_average_before": before,
            "load_average_after": after,
            **cpu,
            "under_load": _under_load(cpu["foreign_cpu_cores"], before, after),
            **result,
        }
        path = save(ctx.results_dir, name, document)
        print(f"[{name}] {title} -> {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        print(_headline(document) or f"  error: {document.get('error')}")
        print(json.dumps(document.get("summary", {}), default=str)[:2000])
        sys.stdout.flush()
    if not args.no_report:
        doc = write_report(ctx.results_dir, args.doc)
        print(f"report: {doc}")
    return 1 if failures else 0


async def _main(args: argparse.Namespace, names: list[str]) -> int:
    task = asyncio.current_task()
    assert task is not None
    install_signal_handlers(task)
    return await _run(args, names)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "list":
        for name, (title, _) in SCENARIOS.items():
            print(f"{name:12} {title}")
        return 0
    if args.command == "report":
        print(write_report(args.results_dir, args.doc))
        return 0
    names = _selected(args.only, args.skip)
    try:
        return asyncio.run(_main(args, names))
    except (KeyboardInterrupt, asyncio.CancelledError, Interrupted):
        print("interrupted: services stopped, run topics deleted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
