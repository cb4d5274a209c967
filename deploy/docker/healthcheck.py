"""Container health probe of the ml-connector image: GET ``/healthz`` (``--ready``: ``/readyz``).

Every service runs from the same image, so Docker's ``HEALTHCHECK`` cannot name a port. The command
line of PID 1 (``ml-connector run <service>``) says which service this container runs; its port is
``MLC_HTTP_PORT`` when set, else the service's default from ``shared.settings.DEFAULT_PORTS``, the
same rule the runtime applies. Containers that run no service (``topics create``, ``credentials``,
the simulators) have nothing to probe and report healthy, so a one-shot job is never marked unhealthy.

Exit code 0 means healthy, 1 unhealthy; the one-line reason goes to stdout, which Docker keeps in
``docker inspect``'s health log.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from shared.settings import DEFAULT_PORTS

FALLBACK_PORT = 9100
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def service_of(argv: Sequence[str]) -> str | None:
    """The service a command line runs (``... run loader`` -> ``loader``), or None."""
    for index, arg in enumerate(argv[:-1]):
        if arg == "run":
            return argv[index + 1]
    return None


def pid1_argv(cmdline: Path = Path("/proc/1/cmdline")) -> list[str]:
    try:
        raw = cmdline.read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def probe_url(service: str, environ: Mapping[str, str], ready: bool) -> str:
    """Where the service answers its probes, by the runtime's own port and host rules."""
    port = int(environ.get("MLC_HTTP_PORT") or 0) or DEFAULT_PORTS.get(service, FALLBACK_PORT)
    host = environ.get("MLC_HTTP_HOST", "")
    host = "127.0.0.1" if host in _ANY_ADDRESS else host
    return f"http://{host}:{port}{'/readyz' if ready else '/healthz'}"


def probe(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local probe URL
            return response.status == 200, f"{url}: {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url}: {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {getattr(exc, 'reason', exc)}"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready", action="store_true", help="probe /readyz instead of /healthz")
    parser.add_argument("--service", help="the service to probe (default: read from PID 1's command line)")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds before the probe fails")
    args = parser.parse_args(argv)
    service = args.service or service_of(pid1_argv())
    if service is None:
        print("no ml-connector service runs in this container: nothing to probe")
        return 0
    url = probe_url(service, os.environ if environ is None else environ, args.ready)
    healthy, detail = probe(url, args.timeout)
    print(detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
