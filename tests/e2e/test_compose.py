"""A compose v1 project (Debian's docker-compose, on its own docker-py) driving berthd:
two services sharing a named volume on the project's network, the volume surviving
`down` and going with `down -v`; and the volume events a run emits."""

import json
import os
import random
import shutil
import subprocess
import threading
import time

import pytest

COMPOSE = shutil.which("docker-compose") or "/usr/bin/docker-compose"

COMPOSE_FILE = """version: "3"
services:
  writer:
    image: busybox
    command: sh -c "echo shared-data > /data/file; exec sleep 300"
    volumes:
      - shared:/data
  reader:
    image: busybox
    command: sleep 300
    volumes:
      - shared:/data
volumes:
  shared: {}
"""


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def compose(d, project_dir, project, *args, check=True):
    env = d.env()
    proc = subprocess.run([COMPOSE, "-p", project, *args], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker-compose {args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_compose_v1_services_share_a_named_volume(bb):
    project_dir = bb.root / "project"
    project_dir.mkdir()
    (project_dir / "docker-compose.yml").write_text(COMPOSE_FILE)
    project = f"bt{random.randint(0, 1 << 30)}"
    compose(bb, project_dir, project, "up", "-d")
    volume = f"{project}_shared"
    seen = ""
    for _ in range(50):  # the writer writes once it runs
        seen = compose(bb, project_dir, project, "exec", "-T", "reader", "cat", "/data/file", check=False).stdout
        if "shared-data" in seen:
            break
        time.sleep(0.1)
    assert "shared-data" in seen
    # Service names resolve on the project network.
    assert compose(bb, project_dir, project, "exec", "-T", "reader", "ping", "-c1", "-W2", "writer").returncode == 0
    ps = compose(bb, project_dir, project, "ps").stdout
    assert ps.count(" Up ") == 2 or ps.count("Up") >= 2, ps

    compose(bb, project_dir, project, "down")
    assert volume in bb.docker("volume", "ls", "-q").out.split()
    assert bb.docker("ps", "-aq").out.strip() == ""
    # Still holding the data for the next `up`.
    again = bb.docker("run", "--rm", "-v", f"{volume}:/data", "busybox", "cat", "/data/file").out
    assert again.strip() == "shared-data"

    compose(bb, project_dir, project, "down", "-v")
    assert volume not in bb.docker("volume", "ls", "-q").out.split()
    assert f"{project}_default" not in bb.docker("network", "ls", "--format", "{{.Name}}").out.split()


def test_volume_events_for_create_mount_unmount_and_destroy(bb):
    since = str(int(time.time()) - 1)
    bb.docker("volume", "create", "evvol")
    bb.docker("run", "--rm", "-v", "evvol:/data", "busybox", "true")
    bb.docker("volume", "rm", "evvol")
    until = str(int(time.time()) + 1)
    out = bb.docker("events", "--since", since, "--until", until, "--filter", "type=volume",
                    "--format", "{{json .}}").out
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    actions = [e["Action"] for e in events if e["Actor"]["ID"] == "evvol"]
    assert actions == ["create", "mount", "unmount", "destroy"], actions
    mount = next(e for e in events if e["Action"] == "mount")
    assert mount["Actor"]["Attributes"]["destination"] == "/data"
    assert mount["Actor"]["Attributes"]["read/write"] == "true"
