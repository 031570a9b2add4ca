"""End-to-end harness: a real berthd on a temporary data root and socket, driven by
our CLI, the real docker CLI and docker-py. Everything a test creates is removed."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import http.client
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("BERTH_TARGET_DIR", REPO / "target" / "debug"))
BERTHD = TARGET / "berthd"
BERTH = TARGET / "berth"
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
BRIDGES_MADE = set()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Daemon:
    """One berthd process on its own temporary roots."""

    def __init__(self, root: Path, extra_args=(), config=None):
        self.root = root
        self.data_root = root / "data"
        self.exec_root = root / "run"
        self.sock = self.exec_root / "berth.sock"
        self.log_path = root / "berthd.log"
        self.extra_args = list(extra_args)
        self.config = config
        self.proc = None
        # Each data root gets its own default bridge, so that daemons never share one;
        # a daemon started again on the same root finds the same one.
        self.bridge = "bt" + hashlib.sha256(str(root).encode()).hexdigest()[:10]
        BRIDGES_MADE.add(self.bridge)

    @property
    def host(self):
        return f"unix://{self.sock}"

    def env(self):
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("BERTH_HOST", None)
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        return env

    def start(self, wait=True):
        args = [str(BERTHD), "--data-root", str(self.data_root), "--exec-root", str(self.exec_root)]
        if self.config is not None:
            cfg = self.root / "daemon.json"
            cfg.write_text(json.dumps(self.config))
            args += ["--config-file", str(cfg)]
        args += ["--bridge", self.bridge]
        args += self.extra_args
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"berthd exited {self.proc.returncode}:\n{self.read_log()}")
            try:
                status, _, _ = self.request("GET", "/_ping")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"berthd not ready after {timeout}s:\n{self.read_log()}")

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = UnixHTTPConnection(str(self.sock), timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    # Clients ---------------------------------------------------------------

    def docker(self, *args, input=None, check=True, timeout=120):
        return run([DOCKER, *args], env=self.env(), input=input, check=check, timeout=timeout)

    def berth(self, *args, input=None, check=True, timeout=120):
        return run([str(BERTH), *args], env=self.env(), input=input, check=check, timeout=timeout)

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=120)


def run(cmd, env=None, input=None, check=True, timeout=120):
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(cmd, env=env, input=input, capture_output=True, timeout=timeout)
    proc.out = proc.stdout.decode(errors="replace")
    proc.err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout: {proc.out}\nstderr: {proc.err}")
    return proc


def mounts_under(path: Path):
    text = Path("/proc/self/mountinfo").read_text()
    return [line for line in text.splitlines() if str(path) in line]


def container_cgroups():
    """Every `<hierarchy>/berth/<id>` cgroup directory that exists now."""
    found = set()
    for berth in Path("/sys/fs/cgroup").glob("*/berth"):
        found |= {str(d) for d in berth.iterdir() if d.is_dir()}
    return found


def iptables_rules_for(link):
    """(table, rule) pairs of iptables rules that mention a link."""
    found = []
    for table in ("nat", "filter"):
        out = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("-A ") and f" {link} " in f"{line} ":
                found.append((table, line[3:]))
    return found


def remove_bridge(name):
    for table, rule in iptables_rules_for(name):
        subprocess.run(["iptables", "-w", "-t", table, "-D", *rule.split()], check=False)
    subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.fixture
def tmp_root():
    root = Path(tempfile.mkdtemp(prefix="berth-e2e-"))
    yield root
    # Default bridges and their rules outlive berthd, as docker0 outlives dockerd.
    while BRIDGES_MADE:
        remove_bridge(BRIDGES_MADE.pop())
    for line in reversed(mounts_under(root)):
        subprocess.run(["umount", "-l", line.split()[4]], check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def daemon(tmp_root):
    d = Daemon(tmp_root).start()
    yield d
    # Containers outlive the daemon by design (live-restore): remove them first.
    left = d.docker("ps", "-aq", check=False).out.split()
    if left:
        d.docker("rm", "-f", *left, check=False)
    d.docker("network", "prune", "-f", check=False)
    code = d.stop()
    assert code == 0, f"berthd did not shut down cleanly ({code}):\n{d.read_log()}"
    assert not d.sock.exists(), "socket left behind after shutdown"
    assert not mounts_under(tmp_root), "mounts left behind"


def make_busybox_rootfs(root: Path):
    """A small real userland: busybox-static with its applets as symlinks."""
    (root / "bin").mkdir(parents=True)
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (root / d).mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory):
    base = tmp_path_factory.mktemp("busybox")
    rootfs = base / "rootfs"
    make_busybox_rootfs(rootfs)
    out = base / "busybox.tar"
    with tarfile.open(out, "w") as tar:
        for entry in sorted(rootfs.iterdir()):
            tar.add(entry, arcname=entry.name)
    return out


def store_files(daemon: Daemon):
    """Blobs, layers, image records and references present in the store."""
    out = {}
    for sub in ("blobs/sha256", "layers", "images", "refs"):
        p = daemon.data_root / sub
        out[sub] = sorted(x.name for x in p.iterdir()) if p.exists() else []
    return out
