"""Containers for real, through the docker CLI, docker-py and our CLI: namespaces, the
overlay rootfs, stdio, exit codes, logs, exec, lifecycle, and surviving a daemon crash."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DOCKER, Daemon, container_cgroups, mounts_under


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def run_in_pty(argv, env, timeout=20):
    """Runs argv with a pseudo-terminal as its stdin/stdout, as a user at a terminal."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            out += chunk
            if chunk:
                continue
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            os.close(fd)
            return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)
    raise AssertionError(f"{argv} did not finish; output so far: {out!r}")


def test_run_is_isolated_and_exit_codes_pass_through(bb):
    cgroups_before = container_cgroups()
    out = bb.docker("run", "--rm", "busybox", "ps", "aux").out.splitlines()
    assert len(out) == 2 and re.match(r"\s*1\s+root\s+ps aux", out[1]), out
    assert bb.docker("run", "--rm", "busybox", "sh", "-c", "exit 3", check=False).returncode == 3
    hostname = bb.docker("run", "--rm", "--hostname", "box1", "busybox", "hostname").out.strip()
    assert hostname == "box1"
    # Own mount, UTS, IPC and network namespaces: with --network none only lo, up; on
    # the default bridge, lo and eth0.
    links = bb.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").out
    assert "lo:" in links and "eth" not in links and "UP" in links
    links = bb.docker("run", "--rm", "busybox", "ip", "-o", "link").out
    assert "lo:" in links and "eth0@" in links
    assert bb.docker("run", "--rm", "busybox", "ping", "-c1", "-W2", "127.0.0.1").returncode == 0
    missing = bb.docker("run", "--rm", "busybox", "nosuchcmd", check=False)
    assert missing.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in missing.err
    noexec = bb.docker("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert noexec.returncode == 126
    # --rm left nothing: no container, no directory, no mount, no cgroup.
    assert bb.docker("ps", "-aq").out.strip() == ""
    assert not list((bb.data_root / "containers").iterdir())
    assert not mounts_under(bb.data_root)
    assert not container_cgroups() - cgroups_before


def test_stdin_and_env_and_user(bb):
    assert bb.docker("run", "-i", "--rm", "busybox", "cat", input="hi there\n").out == "hi there\n"
    out = bb.docker("run", "--rm", "-e", "A=1", "-e", "B=two", "-w", "/tmp", "busybox", "sh", "-c", "echo $A $B $(pwd) $HOSTNAME").out
    a, b, cwd, host = out.split()
    assert (a, b, cwd) == ("1", "two", "/tmp") and len(host) == 12
    assert bb.docker("run", "--rm", "-u", "nobody", "busybox", "id", "-u").out.strip() == "65534"
    assert bb.docker("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint").out.strip() == "via entrypoint"


def test_two_containers_do_not_share_writes_and_diff(bb):
    a = bb.docker("run", "-d", "--name", "wa", "busybox", "sh", "-c", "echo a > /tmp/file; mkdir /newdir; rm /etc/group; sleep 30").out.strip()
    b = bb.docker("run", "-d", "--name", "wb", "busybox", "sleep", "30").out.strip()
    deadline = time.time() + 10
    while time.time() < deadline and bb.docker("exec", "wa", "ls", "/newdir", check=False).returncode != 0:
        time.sleep(0.1)
    assert bb.docker("exec", "wa", "cat", "/tmp/file").out == "a\n"
    assert bb.docker("exec", "wb", "ls", "/tmp/file", check=False).returncode != 0
    changes = bb.docker("diff", "wa").out.splitlines()
    assert "A /newdir" in changes and "D /etc/group" in changes and "C /tmp" in changes
    assert "A /tmp/file" in changes
    bb.docker("rm", "-f", a, b)
    assert not mounts_under(bb.data_root)


def test_detached_logs_stop_and_inspect(bb):
    cid = bb.docker("run", "-d", "--name", "talker", "-l", "team=core", "busybox", "sh", "-c",
                    "echo out; echo err >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done").out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    deadline = time.time() + 10
    while time.time() < deadline and "err" not in bb.docker("logs", "talker").err:
        time.sleep(0.05)
    logs = bb.docker("logs", "talker")
    assert logs.out == "out\n" and logs.err == "err\n"
    stamped = bb.docker("logs", "-t", "--tail", "1", "talker")
    assert re.match(r"\d{4}-\d\d-\d\dT", stamped.out + stamped.err)
    ps = bb.docker("ps").out.splitlines()
    assert re.split(r"\s{2,}", ps[0].strip()) == ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert cid[:12] in ps[1] and "Up " in ps[1] and ps[1].rstrip().endswith("talker")
    assert bb.docker("ps", "--filter", "label=team=core", "-q").out.strip() == cid[:12]
    doc = json.loads(bb.docker("inspect", "talker").out)[0]
    assert doc["Id"] == cid and doc["Name"] == "/talker"
    assert doc["State"]["Running"] is True and doc["State"]["Pid"] > 0
    assert doc["Config"]["Labels"] == {"team": "core"}
    assert doc["GraphDriver"]["Name"] == "overlay2"
    # Follow, then stop: the follower ends when the container does.
    follower = subprocess.Popen([DOCKER, "logs", "-f", "talker"], env=bb.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    bb.docker("stop", "talker")
    out, _ = follower.communicate(timeout=15)
    assert out.decode().endswith("bye\n")
    doc = json.loads(bb.docker("inspect", "talker").out)[0]
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 0
    assert "Exited (0)" in bb.docker("ps", "-a").out
    bb.docker("rm", "talker")


def test_exec_and_its_exit_codes(bb):
    bb.docker("run", "-d", "--name", "ex", "busybox", "sleep", "60")
    assert bb.docker("exec", "ex", "echo", "hello").out == "hello\n"
    assert bb.docker("exec", "ex", "sh", "-c", "exit 7", check=False).returncode == 7
    assert bb.docker("exec", "-e", "X=42", "-w", "/etc", "ex", "sh", "-c", "echo $X $(pwd)").out.strip() == "42 /etc"
    assert bb.docker("exec", "-i", "ex", "cat", input="piped").out == "piped"
    missing = bb.docker("exec", "ex", "nosuch", check=False)
    assert missing.returncode == 127 or "executable file not found" in missing.err
    procs = bb.docker("top", "ex").out
    assert "sleep 60" in procs
    bb.docker("rm", "-f", "ex")


def test_tty_run_and_exec_under_a_terminal(bb):
    code, out = run_in_pty([DOCKER, "run", "-it", "--rm", "busybox", "sh", "-c", "tty; echo done"], bb.env())
    assert code == 0, out
    assert "/dev/pts/0" in out and "done" in out
    bb.docker("run", "-d", "--name", "tt", "busybox", "sleep", "60")
    code, out = run_in_pty([DOCKER, "exec", "-it", "tt", "sh", "-c", "tty"], bb.env())
    assert code == 0 and "/dev/pts/" in out, out
    bb.docker("rm", "-f", "tt")


def test_lifecycle_errors_and_conflicts(bb):
    bb.docker("run", "-d", "--name", "busy", "busybox", "sleep", "60")
    conflict = bb.docker("run", "-d", "--name", "busy", "busybox", "true", check=False)
    assert conflict.returncode == 125
    assert 'The container name "/busy" is already in use' in conflict.err
    refused = bb.docker("rm", "busy", check=False)
    assert refused.returncode == 1 and "stop the container before removing or force remove" in refused.err
    assert bb.docker("ps", "-q").out.strip() != ""
    bb.docker("pause", "busy")
    assert json.loads(bb.docker("inspect", "busy").out)[0]["State"]["Status"] == "paused"
    assert "(Paused)" in bb.docker("ps").out
    bb.docker("unpause", "busy")
    bb.docker("restart", "-t", "1", "busy")
    assert json.loads(bb.docker("inspect", "busy").out)[0]["State"]["Running"] is True
    bb.docker("rename", "busy", "calm")
    assert bb.docker("ps", "--format", "{{.Names}}").out.strip() == "calm"
    bb.docker("kill", "calm")
    assert bb.docker("wait", "calm").out.strip() == "137"
    bb.docker("rm", "calm")
    missing = bb.docker("rm", "ghost", check=False)
    assert missing.returncode == 1 and "No such container: ghost" in missing.err
    bad = bb.docker("run", "-m", "1k", "busybox", "true", check=False)
    assert bad.returncode == 125 and "Minimum memory limit allowed is 6MB" in bad.err
    bad = bb.berth("run", "-m", "lots", "busybox", "true", check=False)
    assert bad.returncode == 125
    assert bb.docker("ps", "-aq").out.strip() == ""


def test_stats_and_limits(bb):
    bb.docker("run", "-d", "--name", "lim", "-m", "64m", "--pids-limit", "50", "busybox", "sleep", "60")
    row = bb.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "lim").out.strip()
    name, usage, _, limit, pids = row.split()
    assert name == "lim" and limit == "64MiB" and int(pids) >= 1
    stats = bb.client().containers.get("lim").stats(stream=False)
    assert stats["memory_stats"]["limit"] == 64 * 1024 * 1024
    assert stats["pids_stats"]["limit"] == 50
    bb.docker("rm", "-f", "lim")


def test_docker_py_containers(bb):
    client = bb.client()
    assert client.containers.run("busybox", "echo pyhello", remove=True) == b"pyhello\n"
    c = client.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2; sleep 30"], detach=True, name="py1")
    deadline = time.time() + 10
    while time.time() < deadline and b"b" not in c.logs():
        time.sleep(0.05)
    assert c.logs(stdout=True, stderr=False) == b"a\n"
    result = c.exec_run("sh -c 'echo in; exit 2'")
    assert result.exit_code == 2 and result.output == b"in\n"
    c.reload()
    assert c.status == "running"
    c.stop(timeout=1)
    assert c.wait()["StatusCode"] == 137
    assert [x.name for x in client.containers.list(all=True)] == ["py1"]
    c.remove()
    import docker.errors

    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", "sh -c 'exit 9'", remove=True)
    assert failed.value.exit_status == 9


def test_our_cli_runs_containers(bb):
    out = bb.berth("run", "--rm", "busybox", "ps", "aux").out.splitlines()
    assert re.match(r"\s*1\s+root\s+ps aux", out[1])
    assert bb.berth("run", "--rm", "busybox", "sh", "-c", "exit 4", check=False).returncode == 4
    assert bb.berth("run", "-i", "--rm", "busybox", "cat", input="x\n").out == "x\n"
    bb.berth("run", "-d", "--name", "ours", "busybox", "sleep", "60")
    assert bb.berth("exec", "ours", "echo", "e").out == "e\n"
    assert "ours" in bb.berth("ps").out
    bb.berth("rm", "-f", "ours")
    assert bb.berth("ps", "-aq").out.strip() == ""


def test_containers_survive_a_daemon_kill9(tmp_root, busybox_tar):
    d = Daemon(tmp_root).start()
    d.docker("import", str(busybox_tar), "busybox")
    d.docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    d.docker("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1; exit 42")
    pid_before = json.loads(d.docker("inspect", "survivor").out)[0]["State"]["Pid"]
    d.kill9()
    time.sleep(1.5)  # quitter exits while no daemon is running
    d2 = Daemon(tmp_root).start()
    try:
        doc = json.loads(d2.docker("inspect", "survivor").out)[0]
        assert doc["State"]["Running"] is True and doc["State"]["Pid"] == pid_before
        os.kill(pid_before, 0)  # really still there
        quitter = json.loads(d2.docker("inspect", "quitter").out)[0]["State"]
        assert quitter["Status"] == "exited" and quitter["ExitCode"] == 42
        assert "Exited (42)" in d2.docker("ps", "-a").out
        d2.docker("stop", "survivor")
        assert json.loads(d2.docker("inspect", "survivor").out)[0]["State"]["ExitCode"] == 0
        d2.docker("rm", "survivor", "quitter")
    finally:
        assert d2.stop() == 0
    assert not mounts_under(tmp_root / "data")


def test_restart_policy_and_auto_remove(bb):
    bb.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
    deadline = time.time() + 15
    while time.time() < deadline:
        doc = json.loads(bb.docker("inspect", "flaky").out)[0]
        if doc["RestartCount"] == 2 and doc["State"]["Status"] == "exited":
            break
        time.sleep(0.1)
    assert doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 1
    bb.docker("rm", "flaky")
    cid = bb.docker("run", "-d", "--rm", "busybox", "true").out.strip()
    deadline = time.time() + 10
    while time.time() < deadline and bb.docker("ps", "-aq").out.strip():
        time.sleep(0.05)
    assert bb.docker("ps", "-aq").out.strip() == ""
    assert not (bb.data_root / "containers" / cid).exists()


def test_cp_export_and_commit(bb, tmp_path):
    bb.docker("run", "-d", "--name", "files", "busybox", "sh", "-c", "mkdir -p /data; echo inside > /data/f; sleep 60")
    deadline = time.time() + 10
    while time.time() < deadline and bb.docker("exec", "files", "cat", "/data/f", check=False).out != "inside\n":
        time.sleep(0.05)
    bb.docker("cp", "files:/data/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "inside\n"
    bb.docker("cp", "files:/data", str(tmp_path / "d"))
    assert (tmp_path / "d" / "f").read_text() == "inside\n"
    (tmp_path / "up").write_text("from host\n")
    bb.docker("cp", str(tmp_path / "up"), "files:/data/")
    assert bb.docker("exec", "files", "cat", "/data/up").out == "from host\n"
    missing = bb.docker("cp", "files:/nope", str(tmp_path / "x"), check=False)
    assert missing.returncode != 0 and "Could not find the file /nope" in missing.err
    bb.docker("export", "-o", str(tmp_path / "fs.tar"), "files")
    import tarfile

    names = tarfile.open(tmp_path / "fs.tar").getnames()
    assert "data/f" in names and "bin/busybox" in names
    image_id = bb.docker("commit", "-c", "ENV COMMITTED=yes", "-m", "snap", "files", "snap:1").out.strip()
    assert image_id.startswith("sha256:")
    doc = json.loads(bb.docker("image", "inspect", "snap:1").out)[0]
    assert len(doc["RootFS"]["Layers"]) == 2 and "COMMITTED=yes" in doc["Config"]["Env"]
    bb.docker("rm", "-f", "files")
    assert bb.docker("run", "--rm", "snap:1", "cat", "/data/up").out == "from host\n"
    # A stopped container's files are reachable too.
    bb.docker("create", "--name", "cold", "snap:1", "true")
    bb.docker("cp", "cold:/data/f", str(tmp_path / "cold"))
    assert (tmp_path / "cold").read_text() == "inside\n"
    bb.docker("rm", "cold")
    assert not mounts_under(bb.data_root)


def test_init_and_oom(bb):
    out = bb.docker("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args").out.splitlines()
    assert "docker-init" in out[1], out
    assert bb.docker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 6", check=False).returncode == 6
    bb.docker("run", "--name", "hog", "-m", "8m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1", check=False)
    state = json.loads(bb.docker("inspect", "hog").out)[0]["State"]
    assert state["ExitCode"] == 137 and state["OOMKilled"] is True, state
    bb.docker("rm", "hog")


@pytest.mark.skipif(not __import__("shutil").which("runc"), reason="no runc binary on this machine")
def test_external_runtime_runs_the_same_bundle(bb):
    cgroups_before = container_cgroups()
    assert "runc" in json.loads(bb.docker("info", "--format", "{{json .Runtimes}}").out)
    assert bb.docker("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo via runc; exit 3", check=False).returncode == 3
    cid = bb.docker("run", "-d", "--runtime", "runc", "busybox", "sleep", "60").out.strip()
    assert bb.docker("exec", cid, "echo", "in").out == "in\n"
    bb.docker("pause", cid)
    bb.docker("unpause", cid)
    assert json.loads(bb.docker("inspect", cid).out)[0]["HostConfig"]["Runtime"] == "runc"
    bb.docker("rm", "-f", cid)
    # runc removed its cgroups too, --rm or rm -f.
    assert not container_cgroups() - cgroups_before
    bad = bb.docker("run", "--rm", "--runtime", "nosuch", "busybox", "true", check=False)
    assert bad.returncode == 125 and "unknown or invalid runtime name: nosuch" in bad.err


def test_volumes_and_bind_mounts(bb, tmp_path, busybox_tar):
    host = tmp_path / "host"
    host.mkdir()
    (host / "f").write_text("fromhost\n")
    ro = bb.docker("run", "--rm", "-v", f"{host}:/h:ro", "busybox", "sh", "-c", "cat /h/f; echo x > /h/g", check=False)
    assert ro.out == "fromhost\n" and "Read-only file system" in ro.err and ro.returncode != 0
    bb.docker("run", "--rm", "-v", f"{host}:/h", "busybox", "sh", "-c", "echo written > /h/g")
    assert (host / "g").read_text() == "written\n"
    # A missing -v host directory is created, as Docker does.
    bb.docker("run", "--rm", "-v", f"{tmp_path}/made:/m", "busybox", "true")
    assert (tmp_path / "made").is_dir()
    # Named volumes are created on first use and outlive containers.
    bb.docker("run", "--rm", "-v", "named:/data", "busybox", "sh", "-c", "echo persisted > /data/p")
    assert bb.docker("run", "--rm", "-v", "named:/data", "busybox", "cat", "/data/p").out == "persisted\n"
    doc = json.loads(bb.docker("volume", "inspect", "named").out)[0]
    assert doc["Name"] == "named" and doc["Driver"] == "local" and doc["Scope"] == "local"
    assert Path(doc["Mountpoint"], "p").read_text() == "persisted\n"
    # Image VOLUMEs get an anonymous volume initialised from the image; rm -v removes it.
    (tmp_path / "rootfs").mkdir()
    import tarfile

    seeded = tmp_path / "seeded.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(seeded, "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        data = b"image-content\n"
        info = tarfile.TarInfo("srv/seed")
        info.size = len(data)
        dst.addfile(info, __import__("io").BytesIO(data))
    bb.docker("import", "-c", "VOLUME /srv", str(seeded), "withvol")
    before = set(bb.docker("volume", "ls", "-q").out.split())
    assert bb.docker("run", "--name", "iv", "withvol", "cat", "/srv/seed").out == "image-content\n"
    mounts = json.loads(bb.docker("inspect", "iv").out)[0]["Mounts"]
    assert mounts[0]["Type"] == "volume" and mounts[0]["Destination"] == "/srv" and len(mounts[0]["Name"]) == 64
    assert len(set(bb.docker("volume", "ls", "-q").out.split()) - before) == 1
    bb.docker("rm", "-v", "iv")
    assert set(bb.docker("volume", "ls", "-q").out.split()) == before
    # --rm takes its anonymous volumes along; named ones stay.
    bb.docker("run", "--rm", "withvol", "true")
    assert set(bb.docker("volume", "ls", "-q").out.split()) == before
    # In use: refused with Docker's wording; then removable.
    cid = bb.docker("run", "-d", "-v", "named:/data", "busybox", "sleep", "60").out.strip()
    busy = bb.docker("volume", "rm", "named", check=False)
    assert busy.returncode == 1 and f"remove named: volume is in use - [{cid}]" in busy.err
    bb.docker("rm", "-f", cid)
    bb.docker("volume", "rm", "named")
    # Bad specifications create nothing.
    for args, wording in (
        (["-v", "a:b:c:d"], "invalid volume specification: 'a:b:c:d'"),
        (["-v", "bad name!:/x"], "includes invalid characters for a local volume name"),
        (["-v", "vol:relative"], "must be absolute"),
        (["--mount", "type=bind,source=/nonexistent-berth,target=/x"], "bind source path does not exist"),
    ):
        bad = bb.docker("run", "--rm", *args, "busybox", "true", check=False)
        assert bad.returncode == 125 and wording in bad.err, (args, bad.err)
    assert bb.docker("ps", "-aq").out.strip() == ""
    assert set(bb.docker("volume", "ls", "-q").out.split()) == before - {"named"}
    tmpfs = bb.docker("run", "--rm", "--mount", "type=tmpfs,target=/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts").out
    assert "tmpfs" in tmpfs
    # docker-py
    client = bb.client()
    v = client.volumes.create("pyvol", labels={"k": "v"})
    assert v.name == "pyvol" and client.volumes.get("pyvol").attrs["Labels"] == {"k": "v"}
    out = client.containers.run("busybox", "sh -c 'echo py > /v/f; cat /v/f'", volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
    assert out == b"py\n"
    assert "pyvol" in [x.name for x in client.volumes.list()]
    v.remove()
    assert bb.docker("volume", "inspect", "pyvol", check=False).returncode == 1


def test_volumes_from_and_driver_options(bb):
    bb.docker("run", "-d", "--name", "owner", "-v", "shared:/data", "-v", "/scratch", "busybox",
              "sh", "-c", "echo hi > /data/x; echo y > /scratch/y; sleep 60")
    deadline = time.time() + 10
    while time.time() < deadline and bb.docker("exec", "owner", "cat", "/scratch/y", check=False).returncode != 0:
        time.sleep(0.05)
    ro = bb.docker("run", "--rm", "--volumes-from", "owner:ro", "busybox", "sh", "-c", "cat /data/x /scratch/y; touch /data/z", check=False)
    assert ro.out == "hi\ny\n" and "Read-only file system" in ro.err
    bb.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=16m", "tv")
    mounts = bb.docker("run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts; echo ok > /t/f").out
    assert "tmpfs" in mounts and "size=16384k" in mounts
    assert bb.docker("run", "--rm", "-v", "tv:/t", "busybox", "cat", "/t/f").out == "ok\n"
    bb.docker("rm", "-f", "owner")
    bb.docker("volume", "rm", "tv", "shared")
    assert not mounts_under(bb.data_root)


def test_default_seccomp_profile(bb):
    assert "Seccomp:\t2" in bb.docker("run", "--rm", "busybox", "cat", "/proc/self/status").out
    # Making a user namespace needs no capability, only the profile stops it.
    blocked = bb.docker("run", "--rm", "busybox", "unshare", "-U", "true", check=False)
    assert blocked.returncode != 0 and "Operation not permitted" in blocked.err
    assert bb.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true").returncode == 0
    assert "Seccomp:\t0" in bb.docker("run", "--rm", "--privileged", "busybox", "cat", "/proc/self/status").out
    nnp = bb.docker("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "cat", "/proc/self/status").out
    assert "NoNewPrivs:\t1" in nnp and "Seccomp:\t2" in nnp
    # A custom profile in Docker's format, as the CLIs read it from a file.
    profile = bb.root / "no-mkdir.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }))
    for cli in (bb.docker, bb.berth):
        denied = cli("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/made", check=False)
        assert denied.returncode != 0 and "Operation not permitted" in denied.err, denied.err
    allowed = bb.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "unshare", "-U", "true")
    assert allowed.returncode == 0
    assert bb.docker("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "true").returncode == 0


def test_exec_runs_under_the_containers_seccomp_filter(bb):
    default = bb.docker("run", "-d", "busybox", "sleep", "60").out.strip()
    custom = bb.root / "no-mkdir-exec.json"
    custom.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }))
    confined = bb.docker("run", "-d", "--security-opt", f"seccomp={custom}", "busybox", "sleep", "60").out.strip()
    unconfined = bb.docker("run", "-d", "--security-opt", "seccomp=unconfined", "busybox", "sleep", "60").out.strip()
    try:
        def status(cid, pid, *flags):
            text = bb.docker("exec", *flags, cid, "cat", f"/proc/{pid}/status").out
            return {k: v.strip() for k, v in (l.split(":", 1) for l in text.splitlines())}

        # The same filter and capabilities as the container's first process, as Docker.
        first, execd = status(default, 1), status(default, "self")
        assert execd["Seccomp"] == "2"
        for field in ("Seccomp_filters", "CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert execd[field] == first[field], field
        assert status(default, "self", "-u", "1000")["CapEff"] == "0000000000000000"
        for cli in (bb.docker, bb.berth):
            blocked = cli("exec", default, "unshare", "-U", "true", check=False)
            assert blocked.returncode != 0 and "Operation not permitted" in blocked.err
            denied = cli("exec", confined, "mkdir", "/made", check=False)
            assert denied.returncode != 0 and "Operation not permitted" in denied.err
        assert bb.docker("exec", unconfined, "unshare", "-U", "true").returncode == 0
        assert status(unconfined, "self")["Seccomp"] == "0"
        # docker-py's exec goes the same way.
        code, out = bb.client().containers.get(default).exec_run("unshare -U true")
        assert code != 0 and b"Operation not permitted" in out
    finally:
        bb.docker("rm", "-f", default, confined, unconfined)


def test_system_df(bb):
    bb.docker("run", "--name", "dfc", "-v", "dfvol:/v", "busybox", "sh", "-c", "echo data > /v/f; echo x > /f")
    out = bb.docker("system", "df").out.splitlines()
    assert re.split(r"\s{2,}", out[0].strip()) == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    rows = {re.split(r"\s{2,}", l.strip())[0]: re.split(r"\s{2,}", l.strip()) for l in out[1:]}
    assert rows["Images"][1] == "1" and rows["Containers"][1:3] == ["1", "0"]
    assert rows["Local Volumes"][1:3] == ["1", "1"]
    usage = bb.client().df()
    assert usage["LayersSize"] > 1_000_000
    assert usage["Volumes"][0]["UsageData"] == {"Size": 5, "RefCount": 1}
    assert "Local Volumes" in bb.berth("system", "df").out
    bb.docker("rm", "-v", "dfc")
    bb.docker("volume", "rm", "dfvol")
