# syntax=docker/dockerfile:1
#
# One image for every part of ml-connector; the command picks what runs:
#   docker run IMAGE run poller|mapper|loader|audit     a service (probes and /metrics on 9101-9104)
#   docker run IMAGE topics create                      create or verify the Kafka topics, then exit
#   docker run IMAGE sim syspro|mailchimp --host 0.0.0.0   the simulators (demo and tests only)
#
# The build stage installs the project (runtime dependencies only, no dev extras) into a virtualenv;
# the runtime stage copies that virtualenv, so no compiler, pip cache or source tree ships.

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY simulators ./simulators
RUN /opt/venv/bin/pip install --no-cache-dir .


FROM python:3.11-slim

LABEL org.opencontainers.image.title="ml-connector" \
      org.opencontainers.image.description="Keeps Mailchimp audiences in sync with SYSPRO's customer master" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLC_LOG_FORMAT=json

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and mounted secrets can be
# made readable to exactly this user.
RUN groupadd --system --gid 10001 mlc \
    && useradd --system --uid 10001 --gid mlc --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin mlc \
    && install --directory --owner mlc --group mlc --mode 0750 /var/lib/ml-connector

COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /opt/ml-connector/healthcheck.py

# The working directory is the only writable place the image needs (the SQLite audit store, when no
# PostgreSQL URL is configured).
WORKDIR /var/lib/ml-connector
USER 10001:10001

# /metrics, /healthz and /readyz of poller, mapper, loader and audit (the audit API shares 9104).
EXPOSE 9101 9102 9103 9104

HEALTHCHECK --interval=30s --timeout=6s --start-period=60s --retries=3 \
    CMD ["python", "/opt/ml-connector/healthcheck.py"]

ENTRYPOINT ["ml-connector"]
CMD ["--help"]
