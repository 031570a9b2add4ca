"""berth vs dockerd, measured in the same run on the same machine.

Each row is a median over repeated runs; the ratio column is peer / berth (above 1 means
berth is faster or smaller). Daemons run on temporary roots and sockets and are stopped
by PID at the end."""

import argparse
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "target" / "release"
DOCKER_CLI = shutil.which("docker", path="/usr/local/bin:/usr/bin") or "docker"


def ping(sock_path):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(sock_path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
        return ok
    except OSError:
        return False


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Peer:
    name = "?"

    def __init__(self, root):
        self.root = Path(root)
        self.sock = str(self.root / "run" / "api.sock")
        self.proc = None

    def start(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=open(self.root / "log", "ab"))
        deadline = time.time() + 60
        while not ping(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{self.name} failed to start; see {self.root / 'log'}")
            time.sleep(0.001)
        return time.perf_counter() - t0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss(self):
        total = rss_kib(self.proc.pid)
        for child in children(self.proc.pid):
            total += rss_kib(child)
        return total

    def env(self):
        env = dict(os.environ)
        env["DOCKER_HOST"] = f"unix://{self.sock}"
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        return env


BENCH_BRIDGES = []


class Berth(Peer):
    name = "berthd"

    def argv(self):
        # Its own default bridge, so a berthd already on this host is not disturbed.
        bridge = f"bb{os.getpid() % 100000}{len(BENCH_BRIDGES)}"
        BENCH_BRIDGES.append(bridge)
        return [str(RELEASE / "berthd"), "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "run"), "-H", f"unix://{self.sock}", "--bridge", bridge]


class Dockerd(Peer):
    name = "dockerd"

    def argv(self):
        return ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "-H", f"unix://{self.sock}", "--pidfile", str(self.root / "docker.pid"),
                "--bridge", "none", "--iptables=false", "--ip6tables=false",
                "--containerd-namespace", f"bench{os.getpid()}", "--log-level", "error"]


def median_time(fn, runs):
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def tiny_tar(i):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"image {i}\n".encode()
        info = tarfile.TarInfo(f"file{i}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_many(peer, count):
    for i in range(count):
        subprocess.run([DOCKER_CLI, "import", "-", f"bench/img{i}:latest"], input=tiny_tar(i),
                       env=peer.env(), check=True, capture_output=True)


def row(name, berth, peer, unit, smaller_is_better=True):
    ratio = (peer / berth) if smaller_is_better and berth else (berth / peer if peer else float("nan"))
    return f"| {name} | {berth:.1f} {unit} | {peer:.1f} {unit} | {ratio:.1f}x |"


def busybox_tar(base):
    out = base / "busybox.tar"
    if out.exists():
        return out
    rootfs = base / "bb-rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("etc", "tmp", "proc", "sys", "dev"):
        (rootfs / d).mkdir()
    busybox = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout.split():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    out = base / "busybox.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(out), "."], check=True)
    return out


def runc_bundle(base, tar):
    """A plain OCI bundle for bare runc: the same rootfs, runc's default spec."""
    bundle = base / "runc-bundle"
    (bundle / "rootfs").mkdir(parents=True)
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-xf", str(tar)], check=True)
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    import json as _json
    spec = _json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(_json.dumps(spec))
    return bundle


def docker(peer, *args, input=None):
    return subprocess.run([DOCKER_CLI, *args], env=peer.env(), check=True, capture_output=True, input=input)


def container_rows(base, have_dockerd, runs):
    rows = []
    tar = busybox_tar(base)
    peers = []
    for cls in [Berth] + ([Dockerd] if have_dockerd else []):
        root = base / f"{cls.name}-containers"
        (root / "run").mkdir(parents=True)
        peer = cls(root)
        peer.start()
        docker(peer, "import", str(tar), "busybox")
        docker(peer, "run", "--rm", "--network", "none", "busybox", "true")  # warm
        peers.append(peer)
    berth_peer = peers[0]
    berth_cli = [str(RELEASE / "berth"), "-H", f"unix://{berth_peer.sock}"]
    ours = median_time(lambda: subprocess.run(berth_cli + ["run", "--rm", "--network", "none", "busybox", "true"],
                                              check=True, capture_output=True), runs) * 1000
    docker_on_berth = median_time(lambda: docker(berth_peer, "run", "--rm", "--network", "none", "busybox", "true"), runs) * 1000
    docker_on_dockerd = (median_time(lambda: docker(peers[1], "run", "--rm", "--network", "none", "busybox", "true"), runs) * 1000
                         if have_dockerd else float("nan"))
    rows.append(row("`run --rm busybox true` (berth CLI) vs docker on dockerd", ours, docker_on_dockerd, "ms"))
    rows.append(row("`docker run --rm busybox true`: berthd vs dockerd", docker_on_berth, docker_on_dockerd, "ms"))
    if shutil.which("runc"):
        bundle = runc_bundle(base, tar)
        counter = iter(range(10**6))
        bare = median_time(lambda: subprocess.run(["runc", "--root", str(base / "runc-state"), "run", "--bundle", str(bundle),
                                                   f"bench-{os.getpid()}-{next(counter)}"], check=True, capture_output=True), runs) * 1000
        rows.append(row("`run --rm true` (berth CLI) vs bare `runc run`", ours, bare, "ms"))

    # The same start through berth's own CLI (the docker CLI costs ~20 ms a call).
    t0 = time.perf_counter()
    ours_ids = [subprocess.run(berth_cli + ["run", "-d", "--network", "none", "busybox", "sleep", "300"],
                               check=True, capture_output=True).stdout.decode().strip() for _ in range(20)]
    b_start_cli = time.perf_counter() - t0
    subprocess.run(berth_cli + ["rm", "-f", *ours_ids], check=True, capture_output=True)

    # 20 detached sleepers: start all, then remove all with rm -f.
    for label, peer in (("berthd", berth_peer),) + ((("dockerd", peers[1]),) if have_dockerd else ()):
        t0 = time.perf_counter()
        ids = [docker(peer, "run", "-d", "--network", "none", "busybox", "sleep", "300").stdout.decode().strip() for _ in range(20)]
        started = time.perf_counter() - t0
        if label == "berthd":
            shim_rss = []
            for line in subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True).stdout.splitlines():
                rss, _, cmd = line.strip().partition(" ")
                if "berth-shim" in cmd and str(berth_peer.root) in cmd:
                    shim_rss.append(int(rss) / 1024)
            hundred = []
            for _ in range(80):
                hundred.append(docker(peer, "create", "--network", "none", "busybox", "true").stdout.decode().strip())
            ps_ours = median_time(lambda: subprocess.run(berth_cli + ["ps", "-a"], check=True, capture_output=True), runs) * 1000
            docker(peer, "rm", *hundred)
        else:
            dockerd_shims = []
            for line in subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True).stdout.splitlines():
                rss, _, cmd = line.strip().partition(" ")
                if "containerd-shim" in cmd and f"bench{os.getpid()}" in cmd:
                    dockerd_shims.append(int(rss) / 1024)
            hundred = [docker(peer, "create", "--network", "none", "busybox", "true").stdout.decode().strip() for _ in range(80)]
            ps_docker = median_time(lambda: docker(peer, "ps", "-a"), runs) * 1000
            docker(peer, "rm", *hundred)
        t0 = time.perf_counter()
        docker(peer, "rm", "-f", *ids)
        removed = time.perf_counter() - t0
        if label == "berthd":
            b_start, b_rm = started, removed
        else:
            d_start, d_rm = started, removed
    rows.append(row("20 detached `sleep` containers started", b_start * 1000, d_start * 1000 if have_dockerd else float("nan"), "ms"))
    rows.append(f"| 20 detached `sleep` containers started with the berth CLI (target ≤ 1 s) | {b_start_cli * 1000:.1f} ms | | |")
    rows.append(row("the same 20 removed with `rm -f`", b_rm * 1000, d_rm * 1000 if have_dockerd else float("nan"), "ms"))
    if shim_rss:
        peer_shim = statistics.median(dockerd_shims) if have_dockerd and dockerd_shims else float("nan")
        rows.append(row(f"RSS per running container's shim (median of {len(shim_rss)})", statistics.median(shim_rss), peer_shim, "MiB"))
    rows.append(row("`ps -a` with 100 containers (berth CLI vs docker on dockerd)", ps_ours, ps_docker if have_dockerd else float("nan"), "ms"))
    for peer in peers:
        peer.stop()
    return rows


class NetworkedDockerd(Dockerd):
    """dockerd with its bridge, iptables rules and userland proxy: what users run."""

    def argv(self):
        return ["dockerd", "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                "-H", f"unix://{self.sock}", "--pidfile", str(self.root / "docker.pid"),
                "--bip", "10.199.0.1/24", "--ip6tables=false",
                "--containerd-namespace", f"benchnet{os.getpid()}", "--log-level", "error"]


def dns_query(name, qid):
    header = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    qname = b"".join(len(p).to_bytes(1, "big") + p.encode() for p in name.split(".")) + b"\x00"
    return header + qname + b"\x00\x01\x00\x01"


DNS_PROBE = """
import socket, statistics, sys, time
server, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = bytes.fromhex(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
samples = []
for i in range(count):
    t0 = time.perf_counter()
    s.sendto(q, (server, 53))
    data = s.recv(512)
    samples.append(time.perf_counter() - t0)
    assert data[3] & 0x0f == 0 and data[6:8] != b"\\x00\\x00", data
print(statistics.median(samples) * 1000)
"""


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                if s.recv(16):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_through(port, total):
    """Sends `total` bytes to a `nc -l` sink behind a published port; seconds taken."""
    chunk = b"\0" * (1 << 20)
    deadline = time.time() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        s.sendall(chunk)
        sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the sink closes once it has read everything
    s.close()
    return time.perf_counter() - t0


def network_rows(base, have_dockerd, runs):
    """Default-bridge start cost, published-port throughput and latency, DNS latency."""
    rows = []
    tar = base / "busybox.tar"
    peers = []
    saved_rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    try:
        for cls in [Berth] + ([NetworkedDockerd] if have_dockerd else []):
            root = base / f"{cls.name}-net"
            (root / "run").mkdir(parents=True)
            peer = cls(root)
            peer.start()
            docker(peer, "import", str(tar), "busybox")
            docker(peer, "run", "--rm", "busybox", "true")  # warm: bridge up
            peers.append(peer)
        overhead, http_p50, throughput, dns_p50 = {}, {}, {}, {}
        for peer in peers:
            none = median_time(lambda: docker(peer, "run", "--rm", "--network", "none", "busybox", "true"), runs)
            bridge = median_time(lambda: docker(peer, "run", "--rm", "busybox", "true"), runs)
            overhead[peer.name] = (bridge - none) * 1000

            port = free_port()
            web = docker(peer, "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc").stdout.decode().strip()
            wait_port(port)
            samples = []
            for _ in range(300):
                t0 = time.perf_counter()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                    while s.recv(4096):
                        pass
                samples.append(time.perf_counter() - t0)
            http_p50[peer.name] = statistics.median(samples) * 1000
            docker(peer, "rm", "-f", web)

            speeds = []
            for _ in range(3):
                port = free_port()
                sink = docker(peer, "run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "nc", "-l", "-p", "80").stdout.decode().strip()
                time.sleep(0.2)
                seconds = push_through(port, 1 << 30)
                speeds.append((1 << 30) / seconds / (1 << 20))
                docker(peer, "rm", "-f", sink)
            throughput[peer.name] = statistics.median(speeds)

            net = f"benchnet{os.getpid()}"
            docker(peer, "network", "create", net)
            target = docker(peer, "run", "-d", "--name", "dnstarget", "--network", net, "busybox", "sleep", "300").stdout.decode().strip()
            asker = docker(peer, "run", "-d", "--network", net, "busybox", "sleep", "300").stdout.decode().strip()
            pid = docker(peer, "inspect", "-f", "{{.State.Pid}}", asker).stdout.decode().strip()
            resolver = "127.0.0.11"
            for line in docker(peer, "exec", asker, "cat", "/etc/resolv.conf").stdout.decode().splitlines():
                if line.startswith("nameserver"):
                    resolver = line.split()[1]
                    break
            out = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", DNS_PROBE,
                                  resolver, "dnstarget", "500", dns_query("dnstarget", 7).hex()],
                                 capture_output=True, text=True, check=True).stdout
            dns_p50[peer.name] = float(out.strip())
            docker(peer, "rm", "-f", target, asker)
            docker(peer, "network", "rm", net)
        nan = float("nan")
        rows.append(row("default-bridge `run --rm true` cost over `--network none` (target ≤ 5 ms)",
                        overhead["berthd"], overhead.get("dockerd", nan), "ms"))
        rows.append(row("1 GiB into a container through `-p 127.0.0.1:P:80` (berth: DNAT; dockerd: docker-proxy)",
                        throughput["berthd"], throughput.get("dockerd", nan), "MiB/s", smaller_is_better=False))
        rows.append(row("HTTP GET through a published port: connect to last byte, p50 of 300",
                        http_p50["berthd"], http_p50.get("dockerd", nan), "ms"))
        rows.append(row("DNS answer for a container name from inside a container, p50 of 500 (target ≤ 1 ms)",
                        dns_p50["berthd"], dns_p50.get("dockerd", nan), "ms"))
    finally:
        for peer in peers:
            for cid in docker(peer, "ps", "-aq").stdout.decode().split():
                subprocess.run([DOCKER_CLI, "rm", "-f", cid], env=peer.env(), capture_output=True)
            peer.stop()
        # dockerd leaves docker0-style rules and its bridge; put the host back as it was.
        subprocess.run(["iptables-restore"], input=saved_rules, text=True, capture_output=True)
        for link in ["docker0", *BENCH_BRIDGES]:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
    return rows


def docker_archive(path, layer_dirs, tag):
    """A docker-archive with one layer per directory, as `docker save` writes it."""
    import hashlib
    import json as _json
    work = path.parent / (path.name + ".d")
    work.mkdir()
    diff_ids, names = [], []
    for i, d in enumerate(layer_dirs):
        layer = work / f"layer{i}.tar"
        subprocess.run(["tar", "-C", str(d), "-cf", str(layer), "."], check=True)
        h = hashlib.sha256()
        with open(layer, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        diff_ids.append("sha256:" + h.hexdigest())
        (work / h.hexdigest()).mkdir()
        layer.rename(work / h.hexdigest() / "layer.tar")
        names.append(f"{h.hexdigest()}/layer.tar")
    config = _json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids},
                          "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))]}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    (work / config_name).write_bytes(config)
    (work / "manifest.json").write_text(_json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]))
    subprocess.run(["tar", "-C", str(work), "-cf", str(path), "."], check=True)
    shutil.rmtree(work)


def real_files(dest, budget, start=0):
    """Copies real files (shared libraries: compressible as real images are) up to
    `budget` bytes, skipping the first `start` bytes' worth, into `dest`."""
    dest.mkdir(parents=True)
    seen = 0
    copied = 0
    for dirpath, _, files in sorted(os.walk("/usr/lib/x86_64-linux-gnu")):
        for name in sorted(files):
            src = Path(dirpath) / name
            if src.is_symlink() or not src.is_file():
                continue
            size = src.stat().st_size
            if size > (4 << 20):
                continue  # a few huge files would make layers lumpy and alike
            seen += size
            if seen <= start:
                continue
            target = dest / f"f{copied}"
            shutil.copyfile(src, target)
            copied += 1
            budget -= size
            if budget <= 0:
                return


def registry_rows(base, have_dockerd, runs):
    """Pull and push through a local docker-registry: one ~200 MB layer, then 5 layers."""
    rows = []
    registry_bin = shutil.which("docker-registry")
    if not registry_bin:
        return ["| registry rows | skipped: docker-registry missing | | |"]
    reg_root = base / "registry"
    reg_root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (reg_root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {reg_root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen([registry_bin, "serve", str(reg_root / "config.yml")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    addr = f"127.0.0.1:{port}"
    peers = []
    try:
        time.sleep(1)
        bb = base / "bb-rootfs"
        one = base / "one-layer"
        real_files(one, 200 << 20)
        shutil.copytree(bb, one, symlinks=True, dirs_exist_ok=True)
        docker_archive(base / "one.tar", [one], f"{addr}/bench/one:1")
        fresh = base / "fresh-layer"
        real_files(fresh, 200 << 20, start=200 << 20)
        shutil.copytree(bb, fresh, symlinks=True, dirs_exist_ok=True)
        docker_archive(base / "fresh.tar", [fresh], "bench/fresh:1")
        fives = []
        for i in range(5):
            d = base / f"five{i}"
            real_files(d, 40 << 20, start=i * (40 << 20))
            fives.append(d)
        shutil.copytree(bb, fives[0], symlinks=True, dirs_exist_ok=True)
        docker_archive(base / "five.tar", fives, f"{addr}/bench/five:1")
        for name in ("one", "five"):
            subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                            f"docker-archive:{base / (name + '.tar')}", f"docker://{addr}/bench/{name}:1"],
                           check=True, capture_output=True)
        for cls in [Berth] + ([Dockerd] if have_dockerd else []):
            root = base / f"{cls.name}-registry"
            (root / "run").mkdir(parents=True)
            peer = cls(root)
            peer.start()
            peers.append(peer)
        pulls = {}
        pushes = {}
        samples = max(3, runs // 3)
        for peer in peers:
            for name in ("one", "five"):
                ref = f"{addr}/bench/{name}:1"
                times = []
                for _ in range(samples):
                    t0 = time.perf_counter()
                    docker(peer, "pull", "-q", ref)
                    times.append(time.perf_counter() - t0)
                    docker(peer, "rmi", ref)
                pulls[(peer.name, name)] = statistics.median(times) * 1000
            # A first push of an image the daemon never exchanged with this registry
            # (loaded from an archive): dockerd compresses it, berth sends its tar.
            docker(peer, "load", "-q", "-i", str(base / "fresh.tar"))
            target = f"{addr}/fresh-{peer.name}/one:1"
            docker(peer, "tag", "bench/fresh:1", target)
            t0 = time.perf_counter()
            docker(peer, "push", "-q", target)
            pushes[peer.name] = (time.perf_counter() - t0) * 1000
        nan = float("nan")
        rows.append(row("pull, one ~200 MB gzip layer (pushed by skopeo), local registry",
                        pulls[("berthd", "one")], pulls.get(("dockerd", "one"), nan), "ms"))
        rows.append(row("pull, 5 layers of ~40 MB", pulls[("berthd", "five")], pulls.get(("dockerd", "five"), nan), "ms"))
        rows.append(row("first push of the ~200 MB image (loaded, never pushed)", pushes["berthd"], pushes.get("dockerd", nan), "ms"))
    finally:
        for peer in peers:
            peer.stop()
        registry.terminate()
        registry.wait()
    return rows


BENCH_DOCKERFILE = """FROM busybox AS build
ENV STAGE=build
WORKDIR /src
COPY . /src/
RUN echo compiled > /src/out.txt
RUN cat /src/out.txt /src/in.txt > /src/both.txt
FROM busybox
LABEL bench=1
COPY --from=build /src/both.txt /both.txt
RUN ls -l /both.txt > /listing
CMD ["cat", "/both.txt"]
"""


def build_rows(base, have_dockerd, runs):
    """A 10-step Dockerfile (RUN, COPY, a multistage COPY --from): cold and cached."""
    rows = []
    tar = base / "busybox.tar"
    ctx = base / "build-ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(BENCH_DOCKERFILE)
    (ctx / "in.txt").write_text("input\n")
    peers = []
    try:
        for cls in [Berth] + ([Dockerd] if have_dockerd else []):
            root = base / f"{cls.name}-build"
            (root / "run").mkdir(parents=True)
            peer = cls(root)
            peer.start()
            docker(peer, "import", str(tar), "busybox")
            peers.append(peer)
        cold, cached = {}, {}
        for peer in peers:
            env = peer.env()
            env["DOCKER_BUILDKIT"] = "0"
            build = lambda *extra: subprocess.run([DOCKER_CLI, "build", "-q", *extra, str(ctx)], env=env,
                                                  check=True, capture_output=True)
            cold[peer.name] = median_time(lambda: build("--no-cache"), max(3, runs // 2)) * 1000
            build()
            cached[peer.name] = median_time(lambda: build(), runs) * 1000
        nan = float("nan")
        rows.append(row("cold build, 10 steps (--no-cache, docker CLI classic builder)", cold["berthd"], cold.get("dockerd", nan), "ms"))
        rows.append(row("fully cached rebuild of the same (target ≤ 20 ms)", cached["berthd"], cached.get("dockerd", nan), "ms"))
    finally:
        for peer in peers:
            peer.stop()
    return rows


def volume_rows(base, runs):
    """Volume mount cost per volume, and copy-up speed against `cp -a` of the same data."""
    rows = []
    root = base / "berthd-volumes"
    (root / "run").mkdir(parents=True)
    peer = Berth(root)
    peer.start()
    cli = [str(RELEASE / "berth"), "-H", f"unix://{peer.sock}"]
    try:
        # An image with 100 MB under /big: 100 files of 1 MB.
        rootfs = base / "vol-rootfs"
        shutil.copytree(base / "bb-rootfs", rootfs, symlinks=True)
        (rootfs / "big").mkdir()
        chunk = os.urandom(1 << 20)
        for i in range(100):
            (rootfs / "big" / f"f{i}").write_bytes(chunk)
        tar = base / "vol.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
        docker(peer, "import", str(tar), "bigimg")
        volumes = [f"v{i}" for i in range(5)]
        for v in volumes:
            docker(peer, "volume", "create", v)
        plain = median_time(lambda: subprocess.run(cli + ["run", "--rm", "--network", "none", "bigimg", "true"], check=True, capture_output=True), runs)
        args = [a for v in volumes for a in ("-v", f"{v}:/mnt/{v}")]
        with_volumes = median_time(lambda: subprocess.run(cli + ["run", "--rm", "--network", "none", *args, "bigimg", "true"], check=True, capture_output=True), runs)
        rows.append(f"| start cost per mounted volume (5 volumes, run --rm true) | {(with_volumes - plain) / 5 * 1000:.2f} ms | target ≤ 2 ms | |")
        copy_samples, cp_samples = [], []
        layer = next((root / "data" / "layers").glob("*/diff/big"))
        for i in range(max(3, runs // 3)):
            subprocess.run(["sync"])
            t0 = time.perf_counter()
            subprocess.run(cli + ["run", "--rm", "--network", "none", "-v", f"fresh{i}:/big", "bigimg", "true"], check=True, capture_output=True)
            copy_samples.append(time.perf_counter() - t0 - plain)
            dest = base / f"cpa{i}"
            subprocess.run(["sync"])
            t0 = time.perf_counter()
            subprocess.run(["cp", "-a", str(layer), str(dest)], check=True)
            cp_samples.append(time.perf_counter() - t0)
            shutil.rmtree(dest)
            docker(peer, "volume", "rm", f"fresh{i}")
        copy_up, cp_a = statistics.median(copy_samples), statistics.median(cp_samples)
        rows.append(f"| copy-up of 100 MB into a new volume vs `cp -a` of the same files | {copy_up * 1000:.0f} ms | cp -a: {cp_a * 1000:.0f} ms | {cp_a / copy_up:.2f}x of cp -a speed |")
    finally:
        peer.stop()
    return rows


def busy_jiffies():
    """CPU time the whole machine spent not idle, in seconds."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def api_get(sock_path, path):
    """One GET over the API socket, read to the end (Connection: close)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(str(sock_path))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    while s.recv(1 << 16):
        pass
    s.close()


def health_cpu(peer, containers, interval_s, window_s):
    """Machine CPU seconds spent over `window_s` with `containers` probing `true` every
    `interval_s`, minus the same containers without a healthcheck, and the probes run."""
    def measure(health):
        names = [f"hc{'p' if health else 'b'}{i}" for i in range(containers)]
        flags = ["--health-cmd", "true", "--health-interval", f"{int(interval_s * 1000)}ms"] if health else []
        for n in names:
            docker(peer, "run", "-d", "--name", n, "--network", "none", *flags, "busybox", "sleep", "600")
        time.sleep(min(2.0, interval_s * 2))  # past the first probes and start-up
        since = time.time()
        cpu0 = busy_jiffies()
        time.sleep(window_s)
        cpu = busy_jiffies() - cpu0
        until = time.time()
        probes = 0
        if health:
            out = subprocess.run([DOCKER_CLI, "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                                  "--filter", "event=exec_die", "--format", "x"],
                                 env=peer.env(), capture_output=True, text=True).stdout
            probes = len(out.split())
        docker(peer, "rm", "-f", *names)
        return cpu, probes
    base_cpu, _ = measure(False)
    cpu, probes = measure(True)
    return cpu - base_cpu, probes


def everyday_rows(base, have_dockerd, runs):
    """Health probe cost, idle load of 50 probing containers, and `system df` at scale."""
    rows = []
    tar = base / "busybox.tar"
    peers = []
    nan = float("nan")
    try:
        for cls in [Berth] + ([Dockerd] if have_dockerd else []):
            root = base / f"{cls.name}-everyday"
            (root / "run").mkdir(parents=True)
            peer = cls(root)
            peer.start()
            docker(peer, "import", "-c", 'CMD ["sh"]', str(tar), "busybox")
            peers.append(peer)
        per_probe, load = {}, {}
        for peer in peers:
            cpu, probes = health_cpu(peer, 10, 0.2, 6)
            per_probe[peer.name] = cpu / max(probes, 1) * 1000
            cpu, _ = health_cpu(peer, 50, 1.0, 10)
            load[peer.name] = cpu / 10 * 100
        rows.append(row("host CPU per health probe of `true` (target ≤ 5 ms)", per_probe["berthd"],
                        per_probe.get("dockerd", nan), "ms"))
        rows.append(row("50 containers probing every 1 s: CPU, % of one core (target < 5 %)", load["berthd"],
                        load.get("dockerd", nan), "%"))
        df = {}
        for peer in peers:
            import_many(peer, 100)
            for i in range(50):
                docker(peer, "volume", "create", f"dfv{i}")
            for i in range(100):
                if i < 10:
                    docker(peer, "run", "--name", f"dfc{i}", "--network", "none", "-v", f"dfv{i}:/v", "busybox",
                           "sh", "-c", "head -c 1000000 /dev/zero > /w; cp /w /v/w")
                else:
                    docker(peer, "create", "--name", f"dfc{i}", "--network", "none", "busybox", "true")
            api_get(peer.sock, "/system/df")
            df[peer.name] = median_time(lambda: api_get(peer.sock, "/system/df"), runs) * 1000
        rows.append(row("GET /system/df, 100 images, 100 containers, 50 volumes (target ≤ 50 ms)", df["berthd"],
                        df.get("dockerd", nan), "ms"))
    finally:
        for peer in peers:
            subprocess.run([DOCKER_CLI, "rm", "-f", *[f"dfc{i}" for i in range(100)]], env=peer.env(),
                           capture_output=True)
            peer.stop()
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--only", choices=["containers", "network", "registry", "volume", "build", "everyday"], help="run one group of rows")
    args = parser.parse_args()
    have_dockerd = shutil.which("dockerd") is not None
    base = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    rows = []
    # Every daemon here adds NAT rules for its bridge; the host gets its rules back.
    saved_rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    try:
        if args.only:
            busybox_tar(base)
            if args.only == "containers":
                rows.extend(container_rows(base, have_dockerd, args.runs))
            elif args.only == "volume":
                rows.extend(volume_rows(base, args.runs))
            elif args.only == "build":
                rows.extend(build_rows(base, have_dockerd, args.runs))
            elif args.only == "everyday":
                rows.extend(everyday_rows(base, have_dockerd, args.runs))
            else:
                rows.extend({"network": network_rows, "registry": registry_rows}[args.only](base, have_dockerd, args.runs))
            return print_rows(rows)
        # Start-to-ready: a fresh root each time so nothing is warm but the page cache.
        starts = {"berthd": [], "dockerd": []}
        rss = {}
        for cls in [Berth] + ([Dockerd] if have_dockerd else []):
            for i in range(args.runs if cls is Berth else max(3, args.runs // 3)):
                root = base / f"{cls.name}-start{i}"
                (root / "run").mkdir(parents=True)
                peer = cls(root)
                try:
                    starts[cls.name].append(peer.start() * 1000)
                    if i == 0:
                        time.sleep(2)
                        rss[cls.name] = peer.rss() / 1024
                finally:
                    peer.stop()
        b = statistics.median(starts["berthd"])
        d = statistics.median(starts["dockerd"]) if have_dockerd else float("nan")
        rows.append(row("daemon start-to-ready (median)", b, d, "ms"))
        rows.append(row("idle RSS (daemon + children)", rss["berthd"], rss.get("dockerd", float("nan")), "MiB"))

        # image ls with N images.
        peers = []
        for cls in [Berth] + ([Dockerd] if have_dockerd else []):
            root = base / f"{cls.name}-images"
            (root / "run").mkdir(parents=True)
            peer = cls(root)
            peer.start()
            peers.append(peer)
            import_many(peer, args.images)
        berth_peer = peers[0]
        ours = median_time(lambda: subprocess.run([str(RELEASE / "berth"), "-H", f"unix://{berth_peer.sock}", "images"],
                                                  check=True, capture_output=True), args.runs * 2) * 1000
        docker_vs_berth = median_time(lambda: subprocess.run([DOCKER_CLI, "images"], env=berth_peer.env(), check=True,
                                                             capture_output=True), args.runs * 2) * 1000
        if have_dockerd:
            docker_vs_dockerd = median_time(lambda: subprocess.run([DOCKER_CLI, "images"], env=peers[1].env(),
                                                                   check=True, capture_output=True), args.runs * 2) * 1000
        else:
            docker_vs_dockerd = float("nan")
        rows.append(row(f"`berth image ls`, {args.images} images vs `docker images` on dockerd", ours, docker_vs_dockerd, "ms"))
        rows.append(row(f"`docker images`, {args.images} images: berthd vs dockerd", docker_vs_berth, docker_vs_dockerd, "ms"))
        for peer in peers:
            peer.stop()

        rows.extend(container_rows(base, have_dockerd, args.runs))
        rows.extend(volume_rows(base, args.runs))
        rows.extend(network_rows(base, have_dockerd, args.runs))
        rows.extend(registry_rows(base, have_dockerd, args.runs))
        rows.extend(build_rows(base, have_dockerd, args.runs))
        rows.extend(everyday_rows(base, have_dockerd, args.runs))
    finally:
        for link in BENCH_BRIDGES:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        subprocess.run(["iptables-restore"], input=saved_rules, text=True, capture_output=True)
        for cls_root in base.glob("dockerd-*"):
            subprocess.run(["umount", "-R", str(cls_root / "data")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    print_rows(rows)


def print_rows(rows):
    print("| measure | berth | dockerd | ratio |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(r)


if __name__ == "__main__":
    sys.exit(main())
