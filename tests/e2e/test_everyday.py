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


def docker_build(d, tag, dockerfile):
    """Builds `tag` from a Dockerfile's text with the docker CLI's classic builder."""
    ctx = d.root / f"ctx-{tag}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    run([DOCKER, "build", "-q", "-t", tag, str(ctx)], env={**d.env(), "DOCKER_BUILDKIT": "0"})


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


def test_start_period_and_start_interval(bb):
    """During the start period probes run at the start interval and failures do not
    count; the first success makes the container healthy (berth's own CLI)."""
    d = bb
    d.berth("run", "-d", "--name", "sp", "--health-cmd", "test -f /tmp/ok", "--health-retries", "1",
            "--health-interval", "1h", "--health-start-period", "1m", "--health-start-interval", "100ms",
            "busybox", "sleep", "60")
    wait_for(lambda: len(health(d, "sp")["Log"]) >= 3)
    h = health(d, "sp")
    assert h["Status"] == "starting" and h["FailingStreak"] == 0, h
    d.docker("exec", "sp", "touch", "/tmp/ok")
    wait_for(lambda: health(d, "sp")["Status"] == "healthy", timeout=5)
    hc = json.loads(d.docker("inspect", "-f", "{{json .Config.Healthcheck}}", "sp").out)
    assert hc["StartInterval"] == 100_000_000 and hc["StartPeriod"] == 60_000_000_000


def test_probe_runs_as_the_container(bb):
    """Probes run inside the container: its namespaces, user, capabilities, cwd, env."""
    d = bb
    d.docker("run", "-d", "--name", "inside", "--hostname", "probed", "--user", "65534:65534",
             "--cap-drop", "ALL", "-w", "/tmp", "-e", "MARK=here", "--health-interval", "200ms",
             "--health-cmd", "id -u; hostname; pwd; echo $MARK; grep CapBnd /proc/self/status; "
                             "tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc/self/fd | tr '\\n' ' '",
             "busybox", "sleep", "60")
    wait_for(lambda: health(d, "inside")["Status"] == "healthy")
    lines = health(d, "inside")["Log"][-1]["Output"].splitlines()
    assert lines[:4] == ["65534", "probed", "/tmp", "here"], lines
    assert lines[4].split() == ["CapBnd:", "0000000000000000"], lines
    assert lines[5].strip() == "sleep 60", "pid 1 is the container's own process"
    # ls sees stdio and its own directory handle: nothing of the shim's leaks in.
    assert set(lines[6].split()) <= {"0", "1", "2", "3"}, lines[6]
    cid = d.docker("inspect", "-f", "{{.Id}}", "inside").out.strip()
    assert cgroup_file("pids", cid, "pids.current") != "", "the container's cgroup exists"


def test_probe_runs_under_the_containers_seccomp_filter(bb):
    """As an exec would: a user namespace, which needs no capability, only the filter
    refuses; without a filter the same probe succeeds. The helper that forks the probes
    is not in the container."""
    d = bb
    probe = "grep -E '^Seccomp' /proc/self/status; unshare -U true"
    for name, opts in (("filtered", []), ("unfiltered", ["--security-opt", "seccomp=unconfined"])):
        d.docker("run", "-d", "--name", name, *opts, "--health-interval", "200ms",
                 "--health-cmd", probe, "busybox", "sleep", "60")
    wait_for(lambda: health(d, "filtered")["Status"] == "unhealthy")
    wait_for(lambda: health(d, "unfiltered")["Status"] == "healthy")
    out = health(d, "filtered")["Log"][-1]["Output"]
    assert "Seccomp:\t2" in out and "Operation not permitted" in out, out
    first = d.docker("exec", "filtered", "grep", "^Seccomp_filters", "/proc/1/status").out
    assert first.strip() in out, (first, out)
    assert "Seccomp:\t0" in health(d, "unfiltered")["Log"][-1]["Output"]
    listed = d.docker("top", "filtered", "-o", "pid,args").out
    assert "berth" not in listed and "sleep 60" in listed, listed


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
    docker_build(d, "withhc", "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD true\nCMD [\"sleep\", \"60\"]\n")
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
    docker_build(d, "big", "FROM busybox\nLABEL stage=keep\nRUN head -c 300000 /dev/zero > /big\n")
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


# ------------------------------------------------------------------ events


def test_events_filters_formats_and_restart(tmp_root, busybox_tar):
    d = Daemon(tmp_root).start()
    try:
        start = time.time()
        d.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
        d.docker("network", "create", "evnet")
        d.docker("volume", "create", "evvol")
        d.docker("run", "--name", "ev", "--label", "team=x", "--network", "evnet", "-v", "evvol:/d",
                 "busybox", "true")
        d.docker("rename", "ev", "ev2")
        d.docker("tag", "busybox", "bb2")
        d.docker("rmi", "bb2")
        d.docker("rm", "ev2")
        d.docker("volume", "rm", "evvol")
        d.docker("network", "rm", "evnet")
        time.sleep(1.1)

        def actions(*args):
            out = d.docker("events", "--since", str(int(start)), "--until", "0s", *args,
                           "--format", "{{.Type}} {{.Action}}").out
            return [line for line in out.splitlines() if line]

        every = actions()
        for expected in ("image import", "image tag", "image untag", "network create", "network connect",
                         "network disconnect", "network destroy", "volume create", "volume mount",
                         "volume unmount", "volume destroy", "container create", "container start",
                         "container die", "container rename", "container destroy"):
            assert expected in every, (expected, every)
        assert set(actions("--filter", "type=volume")) == {
            "volume create", "volume mount", "volume unmount", "volume destroy"}
        assert actions("--filter", "label=team=x", "--filter", "event=die") == ["container die"]
        assert "network connect" in actions("--filter", "network=evnet")
        assert actions("--filter", "container=ev2", "--filter", "event=rename") == ["container rename"]
        line = d.docker("events", "--since", str(int(start)), "--until", "0s", "--filter", "event=rename",
                        "--format", "{{json .}}").out.strip()
        event = json.loads(line)
        assert event["Actor"]["Attributes"]["oldName"] == "/ev" and event["timeNano"] > 0

        bad = d.docker("events", "--since", "not-a-time", "--until", "0s", check=False)
        assert bad.returncode != 0
        bad = d.docker("events", "--filter", "colour=red", "--until", "0s", check=False)
        assert bad.returncode != 0 and "invalid filter 'colour'" in bad.err

        # Past events survive a daemon killed with -9.
        d.kill9()
        d.start()
        assert "container rename" in actions()
        seen = list(d.client().events(since=int(start), until=int(time.time()), decode=True,
                                      filters={"type": "network"}))
        assert {e["Action"] for e in seen} >= {"create", "connect", "disconnect", "destroy"}
    finally:
        d.stop()


# ------------------------------------------------------------------ info and operating the daemon


def test_info_as_docker_shows_it(daemon):
    info = daemon.client().info()
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images",
                "Driver", "LoggingDriver", "CgroupDriver", "CgroupVersion", "KernelVersion",
                "OperatingSystem", "NCPU", "MemTotal", "Name", "ID", "DockerRootDir", "Debug",
                "RegistryConfig", "LiveRestoreEnabled", "SecurityOptions", "Warnings"):
        assert key in info, key
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["NCPU"] == os.cpu_count()
    assert any("seccomp" in s for s in info["SecurityOptions"])
    out = daemon.docker("info").out
    for label in ("Storage Driver: overlay2", "Logging Driver: json-file", "Cgroup Driver: cgroupfs",
                  "Docker Root Dir: " + str(daemon.data_root), "Live Restore Enabled: true"):
        assert label in out, label


def test_reload_validate_pidfile_json_logs(tmp_root):
    cfg = tmp_root / "daemon.json"
    cfg.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:5999"]}))
    ok = run([str(BERTHD), "--validate", "--config-file", str(cfg)], check=False)
    assert ok.returncode == 0 and "configuration OK" in ok.out
    broken = tmp_root / "broken.json"
    broken.write_text('{"debug": tru')
    bad = run([str(BERTHD), "--validate", "--config-file", str(broken)], check=False)
    assert bad.returncode != 0 and "unable to configure the daemon" in bad.err
    unknown = tmp_root / "unknown.json"
    unknown.write_text('{"colour": "red"}')
    bad = run([str(BERTHD), "--validate", "--config-file", str(unknown)], check=False)
    assert "don't match any configuration option: colour" in bad.err

    pidfile = tmp_root / "berthd.pid"
    d = Daemon(tmp_root, extra_args=["--config-file", str(cfg), "--pidfile", str(pidfile),
                                     "--log-format", "json"])
    d.start()
    try:
        assert pidfile.read_text().strip() == str(d.proc.pid)
        info = d.client().info()
        assert info["Debug"] is False and info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5999/"]
        cfg.write_text(json.dumps({"debug": True, "labels": ["zone=a"],
                                   "registry-mirrors": ["http://127.0.0.1:5998"]}))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.client().info()["Debug"])
        info = d.client().info()
        assert info["Labels"] == ["zone=a"] and info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5998/"]
        time.sleep(1.1)
        reload = d.docker("events", "--since", "1m", "--until", "0s", "--filter", "type=daemon",
                          "--format", "{{.Action}}").out.split()
        assert reload == ["reload"]
        # A file that does not parse keeps the running configuration.
        cfg.write_text('{"debug": fal')
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration not reloaded" in d.read_log())
        assert d.client().info()["Debug"] is True
        assert d.proc.poll() is None
        records = [json.loads(line) for line in d.read_log().splitlines() if line.startswith("{")]
        assert any(r["fields"]["message"] == "configuration reloaded" for r in records)
    finally:
        d.stop()
    assert not pidfile.exists()


def test_socket_activation_and_second_host(tmp_root):
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate (package systemd) is installed by scripts/deps.sh"
    sock = tmp_root / "activated.sock"
    extra = tmp_root / "docker.sock"
    data, run_dir = tmp_root / "data", tmp_root / "run"
    cfg = tmp_root / "daemon.json"
    cfg.write_text(json.dumps({"hosts": ["fd://", f"unix://{extra}"]}))
    bridge = "bt" + os.urandom(5).hex()
    from conftest import BRIDGES_MADE
    BRIDGES_MADE.add(bridge)
    log = open(tmp_root / "berthd.log", "wb")
    proc = subprocess.Popen([activate, "-l", str(sock), str(BERTHD), "--data-root", str(data),
                             "--exec-root", str(run_dir), "--config-file", str(cfg), "--bridge", bridge],
                            stdout=log, stderr=log)
    try:
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(tmp_root / "dc")}
        wait_for(sock.exists, timeout=10, step=0.02)
        # The first connection starts berthd: systemd-socket-activate execs it then.
        out = run([DOCKER, "version", "--format", "{{.Server.Version}}"], env=env, timeout=30)
        assert out.out.strip()
        env["DOCKER_HOST"] = f"unix://{extra}"
        assert run([DOCKER, "info", "--format", "{{.DockerRootDir}}"], env=env).out.strip() == str(data)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        log.close()
    assert proc.returncode == 0


# ------------------------------------------------------------------ the CLI as people use it


def test_cli_help_completion_formats_details(bb):
    d = bb
    top = d.berth("--help").out
    common, management, rest = (top.index("Common Commands:"), top.index("Management Commands:"),
                                top.index("\nCommands:"))
    assert common < management < rest
    assert "  run " in top[common:management] and "  volume " in top[management:rest]
    for shell, marker in (("bash", "complete -F _berth"), ("zsh", "#compdef berth"), ("fish", "complete -c berth")):
        script = d.berth("completion", shell).out
        assert marker in script.replace("-o bashdefault -o default -o nosort ", ""), shell
    check = subprocess.run(["bash", "-c", f"source <({d.berth('completion', 'bash').args[0]} completion bash) "
                            "&& complete -p berth"], capture_output=True, text=True, env=d.env())
    assert "_berth" in check.stdout, check.stderr

    d.berth("run", "-d", "--name", "fmt", "--label", "tier=web", "--log-opt", "env=COLOUR",
            "-e", "COLOUR=blue", "-v", "/tmp:/host:ro", "busybox", "sh", "-c", "echo ready; sleep 60")
    out = d.berth("ps", "--format", '{{.Names}}|{{.Status}}|{{.RunningFor}}|{{.Networks}}|{{.Mounts}}|'
                  '{{.Label "tier"}}|{{.Size}}').out.strip()
    name, status, running_for, networks, mounts, tier, size = out.split("|")
    assert (name, networks, mounts, tier) == ("fmt", "bridge", "/tmp", "web"), out
    assert status.startswith("Up ") and running_for.endswith("ago") and "virtual" in size
    wait_for(lambda: "ready" in d.docker("logs", "fmt").out)
    assert d.berth("logs", "--details", "fmt").out == "COLOUR=blue ready\n"
    assert d.docker("logs", "--details", "fmt").out == "COLOUR=blue ready\n"
    assert d.docker("logs", "fmt").out == "ready\n"

    assert d.berth("update", "--pids-limit", "33", "fmt").out.strip() == "fmt"
    assert d.docker("inspect", "-f", "{{.HostConfig.PidsLimit}}", "fmt").out.strip() == "33"
    bad = d.berth("update", "--cpuset-cpus", "0-63", "fmt", check=False)
    assert bad.returncode != 0 and "Requested CPUs are not available" in bad.err
    d.berth("run", "--name", "done", "busybox", "true")
    out = d.berth("system", "prune", "-f").out
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    assert d.docker("ps", "-aq").out.split() == [d.docker("inspect", "-f", "{{.Id}}", "fmt").out.strip()[:12]]


def test_image_prune_counts_only_the_layers_it_frees(bb):
    d = bb
    docker_build(d, "ontop", "FROM busybox\nLABEL prune=me\nRUN head -c 50000 /dev/zero > /f\n")
    report = d.client().images.prune(filters={"dangling": False, "label": "prune=me"})
    assert {"Untagged": "ontop:latest"} in report["ImagesDeleted"]
    # Its own 50 kB layer is freed; busybox's layer (about 2 MB) stays with busybox.
    assert 50_000 <= report["SpaceReclaimed"] < 1_000_000, report
    assert d.docker("images", "-q", "busybox").out.strip()
