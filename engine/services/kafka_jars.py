"""The Kafka broker's jars from Maven Central: a generated minimal POM, resolved into a cache.

The broker jars (``org.apache.kafka:kafka_2.13``) and their runtime dependencies are copied
by Maven into ``<cache>/kafka/<version>/libs``. Maven's POM does not carry a logging backend
(the binary distribution adds one), so the POM adds the matching slf4j binding.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from engine.services import ServicesError

__all__ = ["SCALA_BINARY", "major_version", "render_pom", "resolve_jars"]

SCALA_BINARY = "2.13"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# The binary distribution pairs each Kafka line with a logging backend the POM leaves out:
# Kafka 4.x logs through log4j2 (slf4j 1.7 binding ``log4j-slf4j-impl``), 3.x through reload4j.
_LOG4J2 = "2.25.3"
_LOGGING_DEPS: dict[int, tuple[tuple[str, str, str], ...]] = {
    4: (
        ("org.apache.logging.log4j", "log4j-api", _LOG4J2),
        ("org.apache.logging.log4j", "log4j-core", _LOG4J2),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", _LOG4J2),
    ),
    3: (
        ("org.slf4j", "slf4j-reload4j", "1.7.36"),
        ("ch.qos.reload4j", "reload4j", "1.2.25"),
    ),
}
_COMPLETE_MARKER = ".complete"


def major_version(version: str) -> int:
    """The Kafka line (3 or 4): it decides the logging backend; other lines are refused."""
    head = version.split(".", 1)[0]
    if not head.isdigit() or int(head) not in _LOGGING_DEPS:
        raise ServicesError(f"unsupported Kafka version {version!r}: use 3.x or 4.x")
    return int(head)


def render_pom(version: str) -> str:
    """A minimal POM whose runtime dependency closure is the broker plus a logging backend."""
    broker = ("org.apache.kafka", f"kafka_{SCALA_BINARY}", version)
    deps = [broker, *_LOGGING_DEPS[major_version(version)]]
    body = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId>"
        "<version>{}</version></dependency>".format(*dep)
        for dep in deps
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion><groupId>dev.tact.services</groupId>\n"
        f"  <artifactId>kafka-runtime-{version}</artifactId><version>1</version>\n"
        f"  <packaging>pom</packaging>\n  <dependencies>\n{body}\n  </dependencies>\n</project>\n"
    )


def _libs_complete(libs: Path, pom_digest: str) -> bool:
    marker = libs / _COMPLETE_MARKER
    try:
        lines = marker.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if not lines or lines[0] != pom_digest:
        return False
    jars = lines[1:]
    return bool(jars) and all((libs / jar).is_file() for jar in jars)


def resolve_jars(cache_root: Path, version: str) -> tuple[Path, bool]:
    """Ensure the broker's jars are in ``<cache_root>/kafka/<version>/libs``.

    Returns the libs directory and whether Maven had to run (False: the cache was complete).
    Resolution goes to a temporary directory that is renamed into place, so an interrupted or
    concurrent run never leaves a half-filled cache that looks complete.
    """
    base = cache_root / "kafka" / version
    libs = base / "libs"
    pom = render_pom(version)
    digest = hashlib.sha256(pom.encode()).hexdigest()
    if _libs_complete(libs, digest):
        return libs, False
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServicesError("Maven (`mvn`) is required to fetch the Kafka jars; install it")
    base.mkdir(parents=True, exist_ok=True)
    (base / "pom.xml").write_text(pom, encoding="utf-8")
    staging = base / f"libs.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    goal = f"{DEPENDENCY_PLUGIN}:copy-dependencies"
    cmd = [mvn, "-q", "-B", "-f", str(base / "pom.xml"), goal, "-DincludeScope=runtime"]
    cmd.append(f"-DoutputDirectory={staging}")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ServicesError(f"Maven could not resolve Kafka {version}:\n{tail}")
    jars = sorted(p.name for p in staging.glob("*.jar"))
    if not any(j.startswith(f"kafka_{SCALA_BINARY}-") for j in jars):
        shutil.rmtree(staging, ignore_errors=True)
        raise ServicesError(f"Maven finished but no kafka_{SCALA_BINARY} jar was copied")
    (staging / _COMPLETE_MARKER).write_text("\n".join([digest, *jars]) + "\n", encoding="utf-8")
    if _libs_complete(libs, digest):  # a concurrent resolution finished first
        shutil.rmtree(staging, ignore_errors=True)
        return libs, True
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs, True
