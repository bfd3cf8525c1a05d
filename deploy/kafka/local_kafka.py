#!/usr/bin/env python3
"""Run a real single-node Apache Kafka 4.x broker (KRaft) for development and CI.

The broker jars come from Maven Central via ``pom.xml`` (needs Java 17+ and Maven):
no Docker, no Kafka tarball. Stdlib only, so it works before any venv exists.

    with LocalKafka(port=19092) as kafka:
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

POM = Path(__file__).resolve().parent / "pom.xml"
# The pom is the single source of truth for the version; it also keys the jar cache.
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
KAFKA_VERSION = ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=_NS)
DEFAULT_PORT = 19092
READY_LINE = b"Kafka Server started"
JVM_OPTS = ["-Xmx512m", "-Xms128m", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
# Kafka logs via slf4j -> log4j2. Everything goes to stdout, which start() redirects to
# kafka.log. log4j2's own shutdown hook would otherwise swallow Kafka's shutdown logging.
LOG4J2 = """\
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
"""
SERVER_PROPERTIES = """\
# Written by local_kafka.py on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={logs}
num.partitions=1
auto.create.topics.enable=true
# Internal topics default to RF 3 and would never become available on one node.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests should not wait 3s for every consumer group to form.
group.initial.rebalance.delay.ms=0
# After a kill the stale registration blocks the restarted broker until its session
# expires; 3s instead of 9s keeps crash/restart tests quick.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
"""


# Added to server.properties when a SASL_SSL listener is asked for: SCRAM-SHA-512 users
# (created when the storage is formatted) over TLS with a PEM key and certificate chain.
SASL_SSL_PROPERTIES = """\
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
"""
SCRAM_MECHANISM = "SCRAM-SHA-512"


class KafkaError(RuntimeError):
    """Fetching or running the broker failed; the message carries the relevant output."""


def default_cache_dir() -> Path:
    env = os.environ.get("BTSBOT_KAFKA_CACHE")
    return Path(env) if env else Path.home() / ".cache/btsbot-stream/kafka" / str(KAFKA_VERSION)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _broker_answers(port: int) -> bool:
    """ApiVersions v0 round trip: the port is bound well before the broker serves."""
    client_id = b"local_kafka"
    req = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    resp = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            while len(resp) < 10:  # length(4) + correlation id(4) + error code(2)
                if not (chunk := s.recv(4096)):
                    return False
                resp += chunk
    except OSError:
        return False
    correlation_id, error = struct.unpack(">ih", resp[4:10])
    return bool(correlation_id == 7 and error == 0)


def _random_cluster_id() -> str:
    while True:  # like Kafka's own generator: no leading '-', which CLIs read as a flag
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, start: int = 0, lines: int = 40) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return "(no log yet)"
    return b"\n".join(data.splitlines()[-lines:]).decode(errors="replace")


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        out = res.stdout.decode(errors="replace")[-4000:]
        raise KafkaError(f"{what} failed ({res.returncode}): {' '.join(cmd)}\n{out}")


def make_test_tls(directory: Path, days: int = 2) -> tuple[Path, Path]:
    """A throw-away CA and a broker certificate for 127.0.0.1/localhost, with openssl.

    Returns ``(ca.crt, broker.pem)``: the CA for clients (``ssl.ca.location``), and the
    broker's unencrypted PKCS#8 key followed by its certificate chain, which Kafka reads
    as a PEM keystore.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.crt", "broker.key", "broker.csr", "broker.crt")
    )
    openssl = shutil.which("openssl")
    if openssl is None:
        raise KafkaError("`openssl` not found on PATH; it makes the test certificates")
    new_key = ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    _run([openssl, *new_key, "-out", str(ca_key)], "openssl (CA key)")
    ca_subject = ["-subj", "/CN=btsbot-stream test CA", "-days", str(days)]
    _run(
        [openssl, "req", "-x509", "-new", "-key", str(ca_key), *ca_subject, "-out", str(ca)],
        "openssl (CA certificate)",
    )
    _run([openssl, *new_key, "-out", str(key)], "openssl (broker key)")
    _run(
        [openssl, "req", "-new", "-key", str(key), "-subj", "/CN=localhost", "-out", str(csr)],
        "openssl (broker request)",
    )
    extensions = directory / "broker.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    sign = ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key)]
    sign += ["-CAcreateserial", "-days", str(days), "-extfile", str(extensions)]
    _run([openssl, *sign, "-out", str(cert)], "openssl (broker certificate)")
    keystore = directory / "broker.pem"
    keystore.write_text(key.read_text() + cert.read_text() + ca.read_text())
    return ca, keystore


def fetch_jars(cache_dir: Path | None = None) -> Path:
    """Download the broker jars once. ``<cache>/jars`` appears, atomically, only when complete."""
    cache_dir = Path(cache_dir or default_cache_dir())
    jars = cache_dir / "jars"
    complete = jars / f"kafka_2.13-{KAFKA_VERSION}.jar"  # a version bump re-fetches
    if complete.exists():
        return jars
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent caller waits here, then finds the jars
        if complete.exists():
            return jars
        if not shutil.which("mvn"):
            raise KafkaError("`mvn` not found on PATH; Maven 3.6+ is needed to fetch Kafka")
        tmp = Path(tempfile.mkdtemp(prefix=".jars-", dir=cache_dir))
        cmd = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
        cmd.append(f"-DoutputDirectory={tmp}")
        if repo := os.environ.get("BTSBOT_KAFKA_M2_REPO"):
            cmd.append(f"-Dmaven.repo.local={repo}")
        try:
            _run(cmd, "maven")
        except KafkaError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(jars, ignore_errors=True)  # jars of another version
        tmp.rename(jars)
    return jars


def _with_sasl_ssl(properties: str, sasl_port: int, keystore: Path | None) -> str:
    """server.properties with a SASL_SSL listener beside the PLAINTEXT one."""
    lines = []
    for line in properties.splitlines():
        if line.startswith(("listeners=", "advertised.listeners=")):
            line += f",SASL_SSL://127.0.0.1:{sasl_port}"
        elif line.startswith("listener.security.protocol.map="):
            continue  # replaced below
        lines.append(line)
    return "\n".join(lines) + "\n" + SASL_SSL_PROPERTIES.format(keystore=keystore)


class LocalKafka:
    """One KRaft broker+controller on 127.0.0.1; all its state lives in ``data_dir``."""

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        sasl_ssl_port: int | None = None,
        scram_users: dict[str, str] | None = None,
        keystore: Path | None = None,
    ) -> None:
        """``sasl_ssl_port`` adds a SASL_SSL listener (SCRAM-SHA-512) beside PLAINTEXT,
        with ``keystore`` (see :func:`make_test_tls`) and ``scram_users`` (name ->
        password, created when the storage is first formatted)."""
        if sasl_ssl_port is not None and (keystore is None or not scram_users):
            raise KafkaError("a SASL_SSL listener needs a keystore and SCRAM users")
        self.sasl_ssl_port = sasl_ssl_port
        self.scram_users = dict(scram_users or {})
        self.keystore = keystore
        self.port = port
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="btsbot-kafka-")).resolve()
        self.cache_dir = Path(cache_dir or default_cache_dir())
        self._pid_path = self.data_dir / "kafka.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_data_dir(cls, data_dir: Path, cache_dir: Path | None = None) -> LocalKafka:
        """Attach to a data dir used before (e.g. by the CLI), with its port."""
        state = json.loads((Path(data_dir) / "local_kafka.json").read_text())
        return cls(state["port"], data_dir, cache_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap(self) -> str:
        if self.sasl_ssl_port is None:
            raise KafkaError("this broker has no SASL_SSL listener")
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    def ensure_jars(self) -> Path:
        return fetch_jars(self.cache_dir)

    def is_running(self) -> bool:
        return self._alive() and _broker_answers(self.port)

    def start(self, timeout: float = 90, detach: bool = False) -> LocalKafka:
        """Start and block until the broker serves. Unless ``detach``, it is stopped at exit."""
        if self._alive():
            raise KafkaError(f"a broker is already running in {self.data_dir}")
        if _port_open(self.port):
            raise KafkaError(f"127.0.0.1:{self.port} is already in use")
        self.ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self._configure()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # A new session (own process group): signals reach only the JVM, and a detached
            # broker survives the CLI and its terminal exiting.
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(props)),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_path.write_text(str(self._proc.pid))
        if not detach:
            atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self._proc.poll()) is not None:
                self._forget()
                tail = _tail(self.log_path, offset)
                raise KafkaError(f"kafka exited early ({code}); {self.log_path}:\n{tail}")
            with self.log_path.open("rb") as f:
                f.seek(offset)  # only this start's lines: the log is kept across restarts
                ready = READY_LINE in f.read()
            if ready and _broker_answers(self.port):
                return self
            time.sleep(0.25)
        self.kill()
        raise KafkaError(
            f"kafka not ready in {timeout}s; {self.log_path}:\n{_tail(self.log_path, offset)}"
        )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM for a clean shutdown (restarts skip log recovery); SIGKILL if it hangs."""
        if not self._signal(signal.SIGTERM, timeout):
            self._signal(signal.SIGKILL, 10)
        self._forget()

    def kill(self) -> None:
        """SIGKILL, like a crash, to test recovery."""
        self._signal(signal.SIGKILL, 10)
        self._forget()

    def restart(self, timeout: float = 90) -> LocalKafka:
        """Stop, then start on the same data dir and port; topics and offsets survive."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop()
        if self._owns_data_dir and exc_type is None:  # after a failure, keep kafka.log
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _java(self, main: str, *args: str) -> list[str]:
        java = Path(os.environ["JAVA_HOME"], "bin/java") if "JAVA_HOME" in os.environ else "java"
        if not shutil.which(java):
            raise KafkaError(f"{java} not found: Kafka {KAFKA_VERSION} needs Java 17+ (JAVA_HOME)")
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        return [str(java), *JVM_OPTS, log4j, "-cp", str(self.cache_dir / "jars/*"), main, *args]

    def _configure(self) -> Path:
        """Write the configs; format the storage on first use."""
        # Static voters (not `format --standalone`) keep no controller endpoint in the data
        # dir, so the controller takes any free port on each start and cannot collide later.
        (self.data_dir / "local_kafka.json").write_text(json.dumps({"port": self.port}))
        (self.data_dir / "log4j2.properties").write_text(LOG4J2)
        props = self.data_dir / "server.properties"
        logs = self.data_dir / "logs"
        text = SERVER_PROPERTIES.format(port=self.port, cport=_free_port(), logs=logs)
        if self.sasl_ssl_port is not None:
            text = _with_sasl_ssl(text, self.sasl_ssl_port, self.keystore)
        props.write_text(text)
        if not (logs / "meta.properties").exists():
            cluster_id = _random_cluster_id()
            scram = [
                arg
                for name, password in self.scram_users.items()
                for arg in ("--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]")
            ]
            storage = self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props), *scram
            )
            _run(storage, "kafka-storage format")
        return props

    def _saved_pid(self) -> int | None:
        try:
            pid = int(self._pid_path.read_text())
            os.kill(pid, 0)
            # Guard against PID reuse: trust the pid only if it is our broker (where /proc is).
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and str(self.data_dir).encode() not in cmdline.read_bytes():
                return None
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        return pid

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None  # poll() reaps our child; kill(pid, 0) sees zombies
        return self._saved_pid() is not None

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        """Signal the broker's process group (ours or the pid file's); wait until it is gone."""
        pid = self._proc.pid if self._proc and self._proc.poll() is None else self._saved_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while self._alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _forget(self) -> None:
        self._pid_path.unlink(missing_ok=True)
        self._proc = None
        atexit.unregister(self.stop)


# -- CLI ------------------------------------------------------------------------------------
ENV_HELP = f"""environment (defaults for the flags):
  BTSBOT_KAFKA_PORT      --port (default {DEFAULT_PORT})
  BTSBOT_KAFKA_DATA_DIR  --data-dir
  BTSBOT_KAFKA_CACHE     --cache-dir (default ~/.cache/btsbot-stream/kafka/{KAFKA_VERSION})
  BTSBOT_KAFKA_M2_REPO   Maven local repository for the fetch (default: Maven's, ~/.m2)
  JAVA_HOME              Java 17+ that runs the broker (default: java on PATH)"""
COMMANDS = {
    "start": "start a detached broker, wait until it serves, print its bootstrap address",
    "stop": "stop the broker of --data-dir (SIGTERM, then SIGKILL after 30s)",
    "status": "print whether the broker of --data-dir serves; exit status 1 if not",
    "logs": "print the end of the broker log of --data-dir",
    "fetch": "only download the Kafka jars into the cache (e.g. in a CI cache step)",
}


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    raw = argparse.RawDescriptionHelpFormatter
    desc = f"Single-node Apache Kafka {KAFKA_VERSION} (KRaft) on 127.0.0.1."
    parser = argparse.ArgumentParser(
        prog="local_kafka.py", description=desc, epilog=ENV_HELP, formatter_class=raw
    )
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text, epilog=ENV_HELP, formatter_class=raw)
        if name in ("start", "fetch"):
            help_ = "jar cache (env BTSBOT_KAFKA_CACHE)"
            p.add_argument("--cache-dir", type=Path, default=env("BTSBOT_KAFKA_CACHE"), help=help_)
        if name == "start":
            port = int(env("BTSBOT_KAFKA_PORT", DEFAULT_PORT))
            help_ = "PLAINTEXT port on 127.0.0.1 (env BTSBOT_KAFKA_PORT; default %(default)s)"
            p.add_argument("--port", type=int, default=port, help=help_)
            help_ = "seconds to wait until it serves (default %(default)s)"
            p.add_argument("--timeout", type=float, default=90, help=help_)
        if name != "fetch":
            data_dir = env("BTSBOT_KAFKA_DATA_DIR")
            help_ = "holds config, data, kafka.log, kafka.pid (env BTSBOT_KAFKA_DATA_DIR"
            help_ += "; default: a new temp dir)" if name == "start" else ")"
            required = name != "start" and data_dir is None
            p.add_argument("--data-dir", type=Path, default=data_dir, required=required, help=help_)
        if name == "logs":
            p.add_argument("-n", "--lines", type=int, default=100, help="default 100; 0 = all")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "fetch":
        print(fetch_jars(args.cache_dir))
        return 0
    if args.cmd == "start":
        kafka = LocalKafka(args.port, args.data_dir, args.cache_dir)
        kafka.start(args.timeout, detach=True)
        stop = f"{sys.argv[0]} stop --data-dir {kafka.data_dir}"
        print(f"kafka {KAFKA_VERSION} running; log {kafka.log_path}; stop: {stop}", file=sys.stderr)
        print(kafka.bootstrap)  # alone on stdout, for BOOTSTRAP=$(local_kafka.py start)
        return 0
    if not (args.data_dir / "local_kafka.json").exists():
        print(f"no broker was ever started in {args.data_dir}", file=sys.stderr)
        return 1
    kafka = LocalKafka.from_data_dir(args.data_dir)
    if args.cmd == "stop":
        kafka.stop()
    elif args.cmd == "status":
        up = kafka.is_running()
        print(f"{'running' if up else 'stopped'} {kafka.bootstrap} {kafka.data_dir}")
        return 0 if up else 1
    else:
        print(_tail(kafka.log_path, lines=args.lines or sys.maxsize))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaError as e:
        sys.exit(f"error: {e}")
