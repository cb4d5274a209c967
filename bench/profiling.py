"""Sampling profiles of the service processes with py-spy, summarised as "where the time goes".

py-spy attaches from outside (ptrace), so the services run unchanged. ``--nonblocking`` keeps it from
pausing the process at each sample; idle time (waiting on sockets) is not sampled, so the shares are of
CPU time. A profile is taken in a separate run from the measured ones: sampling four processes costs
CPU on a two-core machine.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.env import REPO

__all__ = ["PySpy", "summarise"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PROJECT = ("services/", "shared/")


def _py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(REPO))
    return path


def _frame(raw: str) -> tuple[str, str]:
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), ""
    return match["func"], _short(match["file"])


def _package(file: str) -> str:
    if file.startswith(_PROJECT):
        return "/".join(file.split("/")[:2]).removesuffix(".py")
    head = file.split("/", 1)[0].removesuffix(".py")
    return head or "?"


def summarise(raw_text: str, top: int = 12) -> dict[str, Any]:
    """Self time per function and package, and inclusive time of the project's own functions."""
    self_funcs: Counter[str] = Counter()
    self_pkgs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw_text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        # py-spy prefixes a thread frame ("process ... " / "thread ...") when asked; skip non-code frames.
        frames = [f for f in frames if f[1]]
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        self_funcs[f"{func} ({file})"] += count
        self_pkgs[_package(file)] += count
        seen: set[str] = set()
        for func, file in frames:
            name = f"{func} ({file})"
            if file.startswith(_PROJECT) and name not in seen:
                seen.add(name)
                inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "share": round(n / total, 3), "samples": n} for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "self_by_package": share(self_pkgs),
        "self_by_function": share(self_funcs),
        "project_inclusive": share(inclusive),
    }


class PySpy:
    """``py-spy record`` on several processes at once; ``stop()`` returns their summaries."""

    def __init__(self, pids: dict[str, int], outdir: Path, rate: int = 50) -> None:
        self.pids = pids
        self.outdir = outdir
        self.rate = rate
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.error: str | None = None

    def start(self) -> PySpy:
        exe = _py_spy()
        if exe is None:
            self.error = "py-spy is not installed (pip install py-spy)"
            return self
        self.outdir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.procs[name] = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(self.rate),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(self.outdir / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(self.outdir / f"{name}.err", "wb"),  # noqa: SIM115 - child owns it
            )
        return self

    def stop(self) -> dict[str, Any]:
        """Stop sampling (SIGINT makes py-spy write its file) and summarise each process."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        out: dict[str, Any] = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            data = self.outdir / f"{name}.txt"
            if data.exists() and data.stat().st_size:
                out[name] = summarise(data.read_text(errors="replace"))
            else:
                err = (self.outdir / f"{name}.err").read_text(errors="replace")[-500:]
                out[name] = {"error": err.strip() or f"py-spy exited with {proc.returncode}"}
        if self.error:
            out["error"] = self.error
        return out
