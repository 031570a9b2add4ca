"""The everyday engine: health checks, update, disk usage and pruning, events, info,
and operating the daemon (reload, validate, socket activation), through the docker
CLI, docker-py and compose."""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BERTHD, DOCKER, Daemon, run


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def wait_for(predicate, timeout=15, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met in {timeout}s")


def health(d, name):
    out = d.docker("inspect", "-f", "{{json .State.Health}}", name).out
    return json.loads(out)


def cgroup_file(controller, cid, name):
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    base = Path("/sys/fs/cgroup/berth") if v2 else Path(f"/sys/fs/cgroup/{controller}/berth")
    return (base / cid / name).read_text().strip()


# ------------------------------------------------------------------ health checks


def test_health_goes_starting_unhealthy_healthy(bb):
    d = bb
    d.docker("run", "-d", "--name", "hc", "--health-cmd", "cat /tmp/ok",
             "--health-interval", "300ms", "--health-retries", "2", "busybox", "sleep", "60")
    assert "(health: starting)" in d.docker("ps", "--filter", "name=hc").out
    wait_for(lambda: health(d, "hc")["Status"] == "unhealthy")
    h = health(d, "hc")
    assert h["FailingStreak"] >= 2
    assert h["Log"][-1]["ExitCode"] == 1
    assert "No such file" in h["Log"][-1]["Output"]
    assert "(unhealthy)" in d.docker("ps", "--filter", "name=hc").out
    assert d.docker("ps", "-q", "--filter", "health=unhealthy").out.strip()

    d.docker("exec", "hc", "sh", "-c", "echo fine > /tmp/ok")
    wait_for(lambda: health(d, "hc")["Status"] == "healthy")
    h = health(d, "hc")
    assert h["FailingStreak"] == 0 and h["Log"][-1] == {**h["Log"][-1], "ExitCode": 0, "Output": "fine\n"}
    wait_for(lambda: len(health(d, "hc")["Log"]) == 5, timeout=5)
    time.sleep(0.7)
    assert len(health(d, "hc")["Log"]) == 5, "only the last five probes are kept"
    assert "(healthy)" in d.docker("ps", "--filter", "name=hc").out
    assert d.docker("ps", "-q", "--filter", "health=healthy").out.strip()
    assert not d.docker("ps", "-q", "--filter", "health=none").out.strip()

    time.sleep(1.1)  # `--until 0s` is whole seconds
    events = d.docker("events", "--since", "1m", "--until", "0s",
                      "--filter", "container=hc", "--format", "{{.Action}}").out.split("\n")
    assert "health_status: unhealthy" in events and "health_status: healthy" in events
    bad = d.docker("ps", "--filter", "health=bogus", check=False)
    assert bad.returncode != 0 and "Unrecognised filter value for health: bogus" in bad.err


def test_health_timeout_missing_command_and_none(bb):
    d = bb
    d.docker("run", "-d", "--name", "slow", "--health-cmd", "sleep 30", "--health-interval", "200ms",
             "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "60")
    wait_for(lambda: health(d, "slow")["Status"] == "unhealthy")
    entry = health(d, "slow")["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (300ms)"
    # The timed-out probe was killed: no probe's sleep is left running in the container.
    time.sleep(0.3)
    top = d.docker("top", "slow").out
    assert top.count("sleep 30") <= 1, top

    client = d.client()
    c = client.containers.run("busybox", "sleep 60", detach=True, name="nocmd",
                              healthcheck={"test": ["CMD", "/no/such/probe"], "interval": 200_000_000,
                                           "retries": 1})
    wait_for(lambda: health(d, "nocmd")["Status"] == "unhealthy")
    entry = health(d, "nocmd")["Log"][-1]
    assert entry["ExitCode"] == -1 and "/no/such/probe" in entry["Output"]
    c.reload()
    assert c.status == "running", "a broken probe never takes the container down"

    # An image's HEALTHCHECK applies; --no-healthcheck turns it off.
    ctx = d.root / "hctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD true\nCMD [\"sleep\", \"60\"]\n")
    run([DOCKER, "build", "-q", "-t", "withhc", str(ctx)], env={**d.env(), "DOCKER_BUILDKIT": "0"})
    d.docker("run", "-d", "--name", "fromimage", "withhc")
    wait_for(lambda: health(d, "fromimage")["Status"] == "healthy")
    d.docker("run", "-d", "--name", "off", "--no-healthcheck", "withhc")
    assert d.docker("inspect", "-f", "{{.State.Health}}", "off").out.strip() == "<nil>"
    assert "health" not in d.docker("ps", "--filter", "name=off").out.split("\n")[1]


def test_health_resumes_after_daemon_kill9(tmp_root, busybox_tar):
    d = Daemon(tmp_root).start()
    try:
        d.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
        d.docker("run", "-d", "--name", "hk", "--health-cmd", "true", "--health-interval", "200ms",
                 "busybox", "sleep", "60")
        wait_for(lambda: health(d, "hk")["Status"] == "healthy")
        d.kill9()
        d.start()
        assert health(d, "hk")["Status"] == "healthy", "the verdict is kept"
        last = health(d, "hk")["Log"][-1]["End"]
        wait_for(lambda: health(d, "hk")["Log"][-1]["End"] > last, timeout=5)
    finally:
        d.docker("rm", "-f", "hk", check=False)
        d.stop()


def test_compose_waits_for_a_healthy_service(bb):
    d = bb
    project = d.root / "hcompose"
    project.mkdir()
    (project / "docker-compose.yml").write_text("""
version: "2.4"
services:
  db:
    image: busybox
    command: sh -c "sleep 1; touch /tmp/ready; sleep 60"
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 300ms
      retries: 20
  app:
    image: busybox
    command: sleep 60
    depends_on:
      db:
        condition: service_healthy
""")
    compose = shutil.which("docker-compose")
    env = d.env()
    try:
        run([compose, "-f", str(project / "docker-compose.yml"), "-p", "hc", "up", "-d"], env=env, timeout=120)
        out = d.docker("ps", "--format", "{{.Names}} {{.Status}}").out
        assert "hc_db_1" in out and "(healthy)" in out, out
        # `--until 0s` is whole seconds (as with dockerd): let the second turn.
        time.sleep(1.1)
        db_healthy = [e for e in d.docker("events", "--since", "2m", "--until", "0s", "--filter",
                                          "event=health_status", "--format", "{{json .}}").out.splitlines()]
        assert db_healthy, "db became healthy"
        healthy_at = json.loads(db_healthy[0])["timeNano"]
        app_start = d.docker("events", "--since", "2m", "--until", "0s", "--filter", "container=hc_app_1",
                             "--filter", "event=start", "--format", "{{.TimeNano}}").out.split()
        assert app_start and int(app_start[0]) >= healthy_at, "app started only once db was healthy"
    finally:
        run([compose, "-f", str(project / "docker-compose.yml"), "-p", "hc", "down", "-t", "1"], env=env, check=False, timeout=120)
