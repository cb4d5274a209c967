"""A broker that only speaks SASL_SSL to clients: a private CA, a server certificate for ``localhost``,
and SASL/PLAIN users, so the services' TLS and SASL settings meet a real broker.

``scripts/kafka/kafka-local.sh`` renders a plaintext configuration only; this runs the same jars with
a configuration of its own (a plaintext listener stays, for the broker's own inter-broker traffic,
on a port no test client is given).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from simulators._server import free_port

__all__ = ["SaslSslBroker"]

REPO = Path(__file__).resolve().parents[2]
LIBS = REPO / ".run" / "kafka" / "libs"
LOG4J = REPO / "scripts" / "kafka" / "log4j2.properties"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_certificates(directory: Path) -> tuple[Path, Path]:
    """A CA and a server certificate for localhost/127.0.0.1; returns (ca.pem, server.pem with key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("mlc test CA"))
        .issuer_name(_name("mlc test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, server_path = directory / "ca.pem", directory / "server.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_path.write_bytes(
        _pem_key(key)
        + cert.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM)
    )
    return ca_path, server_path


@dataclass
class SaslSslBroker:
    """One KRaft node whose client listener is SASL_SSL with SASL/PLAIN users ``{name: password}``."""

    directory: Path
    users: dict[str, str]

    def __post_init__(self) -> None:
        self.port = free_port()
        self.internal_port = free_port()
        self.controller_port = free_port()
        self.ca, self.server_pem = write_certificates(self.directory / "tls")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"localhost:{self.port}"

    def _properties(self) -> str:
        users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=INTERNAL://127.0.0.1:{self.internal_port},SASL_SSL://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=INTERNAL://127.0.0.1:{self.internal_port},SASL_SSL://localhost:{self.port}",
                "inter.broker.listener.name=INTERNAL",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
                "sasl.enabled.mechanisms=PLAIN",
                f"listener.name.sasl_ssl.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.server_pem}",
                f"log.dirs={self.directory / 'data'}",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=2",
                "num.io.threads=2",
                "log.cleaner.dedupe.buffer.size=33554432",
            ]
        )

    def start(self, timeout: float = 180.0) -> None:
        props = self.directory / "server.properties"
        props.write_text(self._properties() + "\n")
        java = ["java", f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{LIBS}/*"]
        formatted = subprocess.run(
            [
                *java[:1],
                "-Xmx256m",
                *java[1:],
                "kafka.tools.StorageTool",
                "format",
                "-t",
                "mlcTlsTestCluster01",
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if formatted.returncode != 0:
            raise RuntimeError(f"formatting failed:\n{formatted.stdout[-2000:]}{formatted.stderr[-2000:]}")
        log = open(self.directory / "broker.log", "ab")  # noqa: SIM115 - the broker owns it until stop()
        self.proc = subprocess.Popen(
            [*java[:1], "-Xms128m", "-Xmx384m", *java[1:], "kafka.Kafka", str(props)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while "Kafka Server started" not in (self.directory / "broker.log").read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.directory / "broker.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"the SASL_SSL broker did not start:\n{tail}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
