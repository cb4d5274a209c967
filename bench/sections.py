"""The markdown of each scenario's section on docs/benchmarks.md, from its result document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SECTIONS", "fmt", "soak_section", "table"]


def fmt(value: Any) -> str:
    """Numbers as a reader wants them: integers with separators, fewer decimals as values grow."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
        return f"{value:,.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return [*out, ""]


def _throughput(doc: dict[str, Any]) -> list[str]:
    s = doc["summary"]
    n = doc["params"]["customers"]
    out = [
        f"Initial load of {n:,} customers, Mailchimp without latency. Medians of {s['finished']} run(s).",
        "",
    ]
    rows = [
        [stage, s["stage_seconds"].get(stage), s["stage_rate"].get(stage)]
        for stage in ("poller", "mapper", "loader", "audit")
    ]
    out += table(["Stage done", "seconds after the poll started", "customers/s"], rows)
    out.append(
        f"End to end: **{fmt(s['customers_per_second'])} customers/s** ({fmt(s['wall_seconds'])} s). "
        f"First Mailchimp request after {fmt(s['stage_seconds'].get('loader_start'))} s. "
        f"Records per topic equal customers/commands (no duplicates, no losses): "
        f"{fmt(s['exactly_once'])}."
    )
    out.append("")
    cpu, util, rss = s["cpu_seconds"], s["cpu_utilisation"], s["peak_rss_mb"]
    per = s.get("cpu_ms_per_customer", {})
    procs = [p for p in ("poller", "mapper", "loader", "audit", "harness", "kafka_broker") if p in cpu]
    out += table(
        ["Process", "CPU seconds", "CPU ms per customer", "cores used (CPU s / wall s)", "peak RSS MB"],
        [[p, cpu.get(p), per.get(p), util.get(p), rss.get(p)] for p in procs],
    )
    out.append(
        "`harness` is the benchmark process, which also runs both simulators; `kafka_broker` is the "
        "shared local broker (other work on the machine uses it too)."
    )
    out.append("")
    if s.get("cpu_ms_per_customer_total"):
        out.append(
            f"CPU budget: {fmt(s['cpu_ms_per_customer_total'])} ms of CPU per customer in all processes "
            f"({fmt(s['cpu_ms_per_customer_services'])} ms in the four services). With every core doing "
            "nothing else, that caps this machine at "
            f"**{fmt(s['cpu_bound_customers_per_second'])} customers/s** with the simulators and broker on "
            f"it, {fmt(s['cpu_bound_services_only'])}/s for the services alone. "
            "Unlike wall time this barely depends on what else the machine runs."
        )
        out.append("")
    runs = [r for r in doc["runs"] if r.get("batches")]
    if runs:
        b = runs[len(runs) // 2]["batches"]
        out += table(
            [
                "Service",
                "batches",
                "records per batch",
                "seconds per batch (process + commit)",
                "busy seconds",
            ],
            [
                [k, v["batches"], v["records_per_batch"], v["seconds_per_batch"], v["busy_seconds"]]
                for k, v in b.items()
            ],
        )
    out += _profile(doc)
    return out


def _profile(doc: dict[str, Any]) -> list[str]:
    profile = doc.get("profile")
    if not profile:
        return []
    run = doc.get("profiled_run", {})
    out = [
        "#### Where the time goes (py-spy, CPU samples of a separate profiled run)",
        "",
        f"The profiled run took {fmt(run.get('wall_seconds'))} s ({fmt(run.get('customers_per_second'))} "
        "customers/s): sampling costs CPU, so it is not among the measured runs.",
        "",
    ]
    for service in ("poller", "mapper", "loader", "audit"):
        p = profile.get(service)
        if not p:
            continue
        if "error" in p:
            out += [f"**{service}**: profile unavailable ({p['error'][:200]})", ""]
            continue
        pkgs = ", ".join(f"{e['name']} {e['share']:.0%}" for e in p["self_by_package"][:6])
        out += [f"**{service}** ({p['samples']} samples). Self time by package: {pkgs}.", ""]
        funcs = p["self_by_function"][:8]
        own = [e for e in p["project_inclusive"] if e["share"] < 0.95][:8]
        rows = []
        for i in range(max(len(funcs), len(own))):
            f = funcs[i] if i < len(funcs) else None
            o = own[i] if i < len(own) else None
            rows.append(
                [
                    f"`{f['name']}`" if f else "",
                    f"{f['share']:.0%}" if f else "",
                    f"`{o['name']}`" if o else "",
                    f"{o['share']:.0%}" if o else "",
                ]
            )
        out += table(["top self time", "share", "project code, inclusive", "share"], rows)
    return out


def _ceiling(doc: dict[str, Any]) -> list[str]:
    s, p = doc["summary"], doc["params"]
    lat = p["latency_ms"]
    out = [
        f"{p['customers']:,} customers; Mailchimp latency {lat['batch_members']:.0f} ms per batch call, "
        f"{lat['member_put']:.0f} ms per member PUT; {p['max_connections']} connections per key. "
        f"Ceiling {s['ceiling_members_per_second']:,.0f} members/s. The ideal is the valid members "
        "(commands) at the ceiling; customers rejected by the mapper (no or invalid email) never reach "
        "Mailchimp.",
        "",
    ]
    env = p.get("loader_env")
    if env:
        out += [
            "Loader settings: " + ", ".join(f"`{k}={v}`" for k, v in env.items()) + " (the default keeps one "
            "connection spare for other clients of the key).",
            "",
        ]
    out += table(
        ["Figure", "Value"],
        [
            ["time until Mailchimp up to date (s)", s["loader_seconds"]],
            ["ideal at the ceiling (s)", s["ideal_seconds"]],
            ["ratio to ideal", s["ratio_to_ceiling"]],
            ["members/s", s["members_per_second"]],
            ["first to last Mailchimp request (s)", s["mailchimp_window_seconds"]],
            ["Mailchimp calls", s["mailchimp_calls"]],
            ["members per call", s.get("members_per_call", "-")],
            ["mapper done (s): the loader cannot finish earlier", s.get("mapper_seconds", "-")],
            ["bound in the issue: 1.2 x customers / ceiling (s)", s.get("customers_bound_seconds", "-")],
            ["429 answers", s["status_429"]],
            ["highest concurrent connections", s["max_concurrency"]],
        ],
    )
    return out


def _freshness(doc: dict[str, Any]) -> list[str]:
    p = doc["params"]
    out = [
        f"{p['customers']:,} customers, {p['changes']} changes at random moments over "
        f"{p['window_seconds']:.0f} s, poll interval {p['poll_interval_seconds']:.0f} s, "
        "Mailchimp with realistic latency.",
        "",
    ]
    rows = [
        [strategy, v["p50_seconds"], v["p99_seconds"], v["max_seconds"], f"{v['matched']}/{v['changes']}"]
        for strategy, v in doc["summary"].items()
    ]
    return out + table(["Strategy", "p50 (s)", "p99 (s)", "max (s)", "changes matched"], rows)


def _poll_cost(doc: dict[str, Any]) -> list[str]:
    rows = []
    for r in doc["syspro_runs"]:
        for phase in ("initial", "unchanged", "changed"):
            x = r[phase]
            rows.append(
                [
                    r["strategy"],
                    r["customers"],
                    phase.replace("changed", f"{doc['params']['changes']} changed")
                    if phase == "changed"
                    else phase,
                    x["odata_requests"],
                    x["rows_served"],
                    x["seconds"],
                    x["poller_cpu_seconds"],
                ]
            )
    out = ["SYSPRO side, the poller alone, counted by the SYSPRO simulator:", ""]
    out += table(
        ["Strategy", "Customers", "Run", "OData requests", "Rows served", "Seconds", "Poller CPU s"], rows
    )
    m = doc["mailchimp"]
    out += [
        f"Mailchimp side ({m['customers']:,} customers, all services): "
        f"**{m['unchanged_run']['calls']}** calls in a run where nothing changed; "
        f"**{m['calls_per_changed_customer']}** calls per changed customer "
        f"({m['changed_run']['calls']} calls for {m['changed_customers']} changes: "
        f"{m['changed_run']['calls_by_kind']}).",
        "",
    ]
    return out


def _memory(doc: dict[str, Any]) -> list[str]:
    rows = []
    for r in doc["runs"]:
        label = f"{r['customers']:,}" + ("" if r["finished"] else " (unfinished)")
        rows.append(
            [
                label,
                *[r["peak_rss_mb"].get(s) for s in ("poller", "mapper", "loader", "audit")],
                r["wall_seconds"],
                r["source"],
            ]
        )
    out = table(
        ["Customers", "poller MB", "mapper MB", "loader MB", "audit MB", "load seconds", "from"], rows
    )
    extra = doc["summary"].get("extrapolated_1m_mb")
    if extra and not any(r["customers"] >= 1_000_000 for r in doc["runs"]):
        parts = [f"{s} {fmt(v)} MB" if v is not None else f"{s} flat" for s, v in extra.items()]
        out += [
            "Extrapolated to 1,000,000 customers on the line through these sizes (an estimate, not a "
            'measurement; "flat": no growth beyond noise): ' + ", ".join(parts) + ".",
            "",
        ]
    unfinished = [r for r in doc["runs"] if not r["finished"]]
    for r in unfinished:
        out += [f"Unfinished at {r['customers']:,}: {r.get('unfinished', '')[:300]}", ""]
    return out


def _naive(doc: dict[str, Any]) -> list[str]:
    p, s = doc["params"], doc["summary"]
    out = [
        f"{p['customers']:,} customers, then {p['changes']} changes; Mailchimp with realistic latency; the "
        f"naive sync uses {p['naive_concurrency']} connections.",
        "",
    ]
    rows = []
    for phase, name in (("initial", "initial run"), ("after_changes", f"run after {p['changes']} changes")):
        for metric, label in (
            ("seconds", "seconds"),
            ("mailchimp_calls", "Mailchimp calls"),
            ("rows_read", "SYSPRO rows read"),
            ("cpu_seconds", "CPU seconds"),
        ):
            v = s[phase][metric]
            rows.append([name, label, v["connector"], v["naive"], v["naive_over_connector"]])
    return out + table(["Run", "Figure", "connector", "naive", "naive / connector"], rows)


def soak_section(doc: dict[str, Any]) -> list[str]:
    p = doc["params"]
    verdict = "passed" if doc.get("ok") else "**failed**: " + "; ".join(doc.get("problems", []))
    out = [
        f"`python -m bench.soak --seconds {p['seconds']:.0f}`: {p['customers']:,} customers, "
        f"{p['rate']} changes/s ({doc['changes_made']} changes), poll interval {p['interval']:.0f} s, "
        f"{p['strategy']} strategy. Verdict: {verdict}. Backlog drained: {fmt(doc['drained'])} "
        f"after {fmt(doc['drain_seconds'])} s (unprocessed at the end: {doc['unprocessed_at_end']}; the "
        f"services' `mlc_consumer_lag_records` read {doc.get('lag_gauge_at_end')}).",
        "",
    ]
    rows = [
        [s, t["start_mb"], t["end_mb"], t["peak_mb"], t["slope_mb_per_hour"], t["growth_second_half_mb"]]
        for s, t in doc["memory_trend"].items()
    ]
    out += table(
        ["Service", "RSS start MB", "RSS end MB", "peak MB", "slope MB/h (2nd half)", "growth MB"], rows
    )
    moved = {k: v for k, v in doc["errors"].items() if v}
    out += [f"Error counters that moved: {moved or 'none'}.", ""]
    return out


SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "throughput": _throughput,
    "ceiling": _ceiling,
    "freshness": _freshness,
    "poll_cost": _poll_cost,
    "memory": _memory,
    "naive": _naive,
}
