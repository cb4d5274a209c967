"""The figure on docs/benchmarks.md, drawn from the result files alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["draw"]

_STAGES = ("poller", "mapper", "loader", "audit")
_SERVICES = ("poller", "mapper", "loader", "audit")


def _missing(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, "no result", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _median_run(doc: dict[str, Any]) -> dict[str, Any] | None:
    runs: list[dict[str, Any]] = [r for r in doc.get("runs", []) if r.get("finished")]
    if not runs:
        return None
    runs.sort(key=lambda r: float(r["wall_seconds"]))
    return runs[len(runs) // 2]


def _throughput(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "1. Initial load, customers done per stage"
    run = _median_run(doc) if doc else None
    if run is None or not run.get("progress"):
        _missing(ax, title)
        return
    series = run["progress"]
    t = [p[0] for p in series]
    for i, stage in enumerate(_STAGES, start=1):
        values = [p[i] for p in series]
        if stage == "audit":
            continue  # the audit counts records of every topic, not customers
        ax.plot(t, values, label=stage)
    n = run["customers"]
    ax.axhline(n, color="grey", lw=0.6, ls=":")
    commands = run.get("commands")
    if commands:
        ax.axhline(commands, color="tab:green", lw=0.6, ls=":", label="commands (valid customers)")
    done = run["stage_seconds"].get("audit")
    if done:
        ax.axvline(done, color="black", lw=0.8, ls="--", label="audit caught up")
    ax.set_title(f"{title}\n({n:,} customers, {run['customers_per_second']:,.0f}/s end to end)", fontsize=10)
    ax.set_xlabel("seconds since the poll started")
    ax.set_ylabel("customers")
    ax.legend(fontsize=8)


def _ceiling(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "2. Load against Mailchimp's ceiling"
    s = (doc or {}).get("summary") or {}
    if not s.get("loader_seconds"):
        _missing(ax, title)
        return
    ideal = s["ideal_seconds"]
    bars = {"ideal at\n2,500/s": ideal, "target\n(1.2x)": 1.2 * ideal, "measured": s["loader_seconds"]}
    colors = ["#bbbbbb", "#dddddd", "#1f77b4"]
    ax.bar(list(bars), list(bars.values()), color=colors)
    for i, v in enumerate(bars.values()):
        ax.text(i, v, f"{v:.1f}s", ha="center", va="bottom", fontsize=8)
    n = doc["params"]["customers"] if doc else 0
    ax.set_title(f"{title}\n({n:,} customers, 429 answers: {int(s.get('status_429') or 0)})", fontsize=10)
    ax.set_ylabel("seconds until Mailchimp is up to date")


def _freshness(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "3. Freshness: change -> MemberSynced"
    runs = (doc or {}).get("runs") or []
    if not runs:
        _missing(ax, title)
        return
    for strategy in sorted({r["strategy"] for r in runs}):
        delays = sorted(d for r in runs if r["strategy"] == strategy for d in r["delays"])
        if delays:
            ax.step(delays, [(i + 1) / len(delays) for i in range(len(delays))], where="post", label=strategy)
    goal = doc["params"]["poll_interval_seconds"] + 2 if doc else 7
    ax.axvline(goal, color="red", lw=0.8, ls="--", label=f"p99 target {goal:.0f}s")
    ax.set_title(
        f"{title}\n(poll interval {doc['params']['poll_interval_seconds']:.0f}s)" if doc else title,
        fontsize=10,
    )
    ax.set_xlabel("delay (s)")
    ax.set_ylabel("share of changes")
    ax.legend(fontsize=8)


def _memory(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "5. Peak RSS per service"
    runs = (doc or {}).get("runs") or []
    if not runs:
        _missing(ax, title)
        return
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        values = [r["peak_rss_mb"].get(s, 0) for s in _SERVICES]
        xs = [x + i * width for x in range(len(_SERVICES))]
        label = f"{r['customers']:,}" + ("" if r["finished"] else " (unfinished)")
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(_SERVICES))], list(_SERVICES))
    ax.axhline(300, color="red", lw=0.8, ls="--", label="target 300 MB")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("MB")
    ax.legend(fontsize=8, title="customers", title_fontsize=8)


def _poll_cost(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "4. Rows read from SYSPRO per poll run (10 changes)"
    runs = (doc or {}).get("syspro_runs") or []
    if not runs:
        _missing(ax, title)
        return
    sizes = sorted({r["customers"] for r in runs})
    for strategy in ("snapshot", "cursor"):
        rows = [
            next(
                (
                    r["changed"]["rows_served"]
                    for r in runs
                    if r["customers"] == n and r["strategy"] == strategy
                ),
                None,
            )
            for n in sizes
        ]
        ax.plot(sizes, [max(v or 0, 1) for v in rows], marker="o", label=strategy)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("customers in SYSPRO")
    ax.set_ylabel("rows served")
    ax.legend(fontsize=8)


def _naive(ax: Axes, doc: dict[str, Any] | None) -> None:
    title = "6. Connector vs naive full sync"
    s = (doc or {}).get("summary") or {}
    if not s:
        _missing(ax, title)
        return
    labels, ours, theirs = [], [], []
    for phase, name in (("initial", "initial"), ("after_changes", "10 changes")):
        for metric, unit in (("seconds", "s"), ("mailchimp_calls", "calls")):
            labels.append(f"{name}\n{unit}")
            ours.append(max(s[phase][metric]["connector"] or 0, 0.1))
            theirs.append(max(s[phase][metric]["naive"] or 0, 0.1))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="connector")
    ax.bar([x + 0.2 for x in xs], theirs, width=0.4, label="naive")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    n = doc["params"]["customers"] if doc else 0
    ax.set_title(f"{title}\n({n:,} customers, realistic Mailchimp latency)", fontsize=10)
    ax.legend(fontsize=8)


def draw(results: dict[str, dict[str, Any]], path: Path) -> Path:
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    _throughput(axes[0][0], results.get("throughput"))
    _ceiling(axes[0][1], results.get("ceiling"))
    _freshness(axes[0][2], results.get("freshness"))
    _poll_cost(axes[1][0], results.get("poll_cost"))
    _memory(axes[1][1], results.get("memory"))
    _naive(axes[1][2], results.get("naive"))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
