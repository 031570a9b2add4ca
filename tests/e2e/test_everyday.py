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


# ------------------------------------------------------------------ update


def test_update_running_and_stopped(bb):
    d = bb
    cid = d.docker("run", "-d", "--name", "up1", "-m", "64m", "busybox", "sleep", "60").out.strip()
    out = d.docker("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "0.5",
                   "--cpu-shares", "512", "--pids-limit", "40", "--restart", "on-failure:3", "up1").out
    assert out.strip() == "up1"
    assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(128 << 20)
    assert cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert cgroup_file("cpu", cid, "cpu.shares") == "512"
    assert cgroup_file("pids", cid, "pids.max") == "40"
    hc = json.loads(d.docker("inspect", "-f", "{{json .HostConfig}}", "up1").out)
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"], hc["PidsLimit"]) == \
        (128 << 20, 256 << 20, 500_000_000, 512, 40)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    stats = d.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "up1").out
    assert stats.strip().endswith("/ 128MiB"), stats

    # What the kernel or Docker refuses leaves the old limits in place.
    bad = d.docker("update", "--cpuset-cpus", "0-63", "up1", check=False)
    assert bad.returncode != 0 and "Requested CPUs are not available" in bad.err
    d.docker("exec", "up1", "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null")
    bad = d.docker("update", "-m", "10m", "--memory-swap", "10m", "up1", check=False)
    assert bad.returncode != 0 and "Cannot update container" in bad.err, bad.err
    assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(128 << 20)
    assert json.loads(d.docker("inspect", "-f", "{{json .HostConfig.Memory}}", "up1").out) == 128 << 20
    bad = d.docker("update", "--memory", "300m", "up1", check=False)
    assert "update the memoryswap at the same time" in bad.err

    # A stopped container keeps the new limits for its next start (docker-py).
    c = d.client().containers.get("up1")
    c.stop(timeout=1)
    c.update(mem_limit="100m", memswap_limit="200m")
    c.start()
    assert cgroup_file("memory", cid, "memory.limit_in_bytes") == str(100 << 20)
    events = d.client().events(since=int(time.time()) - 60, until=int(time.time()) + 1, decode=True,
                               filters={"event": "update", "container": "up1"})
    assert len(list(events)) == 2


# ------------------------------------------------------------------ disk usage and prune


def test_df_and_prunes(bb):
    d = bb
    ctx = d.root / "dctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nLABEL stage=keep\nRUN head -c 300000 /dev/zero > /big\n")
    run([DOCKER, "build", "-q", "-t", "big", str(ctx)], env={**d.env(), "DOCKER_BUILDKIT": "0"})
    d.docker("run", "--name", "stopped", "busybox", "sh", "-c", "head -c 200000 /dev/zero > /w")
    d.docker("run", "-d", "--name", "running", "--label", "keep=1", "big", "sleep", "60")
    d.docker("volume", "create", "named")
    d.docker("run", "--rm", "-v", "named:/v", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /v/x")
    d.docker("network", "create", "--label", "team=a", "na")
    d.docker("network", "create", "nb")

    df = d.client().df()
    images = {tuple(i["RepoTags"]): i for i in df["Images"]}
    assert images[("big:latest",)]["Containers"] == 1
    assert images[("busybox:latest",)]["SharedSize"] > 0, "busybox's layer is shared with big"
    sizes = {c["Names"][0]: c["SizeRw"] for c in df["Containers"]}
    assert sizes["/stopped"] >= 200000
    vols = {v["Name"]: v["UsageData"] for v in df["Volumes"]}
    assert vols["named"]["Size"] >= 100000 and vols["named"]["RefCount"] == 0
    assert df["BuildCache"], "the build's steps are cache records"
    summary = d.docker("system", "df").out
    for row in ("Images", "Containers", "Local Volumes", "Build Cache"):
        assert row in summary
    verbose = d.docker("system", "df", "-v").out
    assert "Build cache usage" in verbose and "named" in verbose

    bad = d.docker("container", "prune", "-f", "--filter", "colour=red", check=False)
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.err
    # Label filters select; nothing running or in use is ever pruned.
    out = d.docker("network", "prune", "-f", "--filter", "label=team=a").out
    assert "na" in out and "nb" not in out
    report = d.client().containers.prune()
    assert len(report["ContainersDeleted"]) == 1 and report["SpaceReclaimed"] >= 200000
    assert d.docker("ps", "-q", "--filter", "name=running").out.strip()
    assert d.client().volumes.prune()["VolumesDeleted"] is None, "named volumes need all=true"
    report = d.client().volumes.prune(filters={"all": "true"})
    assert report["VolumesDeleted"] == ["named"] and report["SpaceReclaimed"] >= 100000
    report = d.client().images.prune(filters={"dangling": False})
    deleted = [x.get("Untagged") for x in report["ImagesDeleted"] or []]
    assert "big:latest" not in deleted, "an image a container uses stays"
    assert d.client().networks.prune()["NetworksDeleted"] == ["nb"]
    out = d.docker("builder", "prune", "-af").out
    assert "Total reclaimed space" in out
    assert d.docker("run", "--rm", "big", "cat", "/big").returncode == 0

    out = d.docker("system", "prune", "-af").out
    assert "Total reclaimed space" in out
    assert d.docker("ps", "-q").out.strip(), "the running container survives"


def test_prune_racing_creates_never_breaks_a_run(bb):
    d = bb
    failures = []

    succeeded = []

    def runner(i):
        r = d.docker("run", "--name", f"race{i}", "-v", f"racevol{i}:/d", "busybox", "true", check=False)
        if r.returncode == 0:
            succeeded.append(i)
        elif "No such image" not in r.err and "Unable to find image" not in r.err:
            failures.append(r.err)

    def pruner():
        wait_for(lambda: d.docker("ps", "-aq").out.strip(), timeout=30, step=0.01)
        for _ in range(6):
            d.docker("volume", "prune", "-af", check=False)
            d.docker("image", "prune", "-af", check=False)
            d.docker("container", "prune", "-f", check=False)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(6)]
    threads.append(threading.Thread(target=pruner))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert succeeded, "some runs got their image before it was pruned"
