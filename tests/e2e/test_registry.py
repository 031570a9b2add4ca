"""Registries for real: Debian's docker-registry (the reference distribution registry)
on 127.0.0.1, plain and with htpasswd basic auth; skopeo as an independent client; the
docker CLI and docker-py driving pull/push/login through berthd; and a proxy that
breaks or corrupts blobs to show that a failed pull leaves nothing behind."""

import base64
import crypt  # noqa: deprecated but present in 3.11; makes bcrypt htpasswd entries
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tarfile
import io
import threading
import time
from pathlib import Path

import pytest
import random

from conftest import run, store_files

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, root: Path, htpasswd=None):
        self.root = root
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if htpasswd:
            user, password = htpasswd
            (root / "htpasswd").write_text(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
            auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {root / 'htpasswd'}\n"
        (root / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.addr}\n{auth}")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(root / "config.yml")],
                                     stdout=subprocess.DEVNULL, stderr=open(root / "log", "ab"))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"registry did not start: {(root / 'log').read_text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def registry(tmp_root):
    r = Registry(tmp_root / "registry")
    yield r
    r.stop()


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def skopeo(*args):
    return run(["skopeo", "--insecure-policy", *args])


def test_push_then_pull_back_and_run_through_the_docker_cli(bb, registry):
    ref = f"{registry.addr}/team/bb:v1"
    bb.docker("tag", "busybox", ref)
    out = bb.docker("push", ref).out
    assert f"The push refers to repository [{registry.addr}/team/bb]" in out
    assert "Pushed" in out and "v1: digest: sha256:" in out
    digest = out.split("digest: ")[1].split()[0]

    # An independent client sees what we pushed, and copies it back out intact.
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}").out)
    assert info["Digest"] == digest and info["Architecture"] and len(info["Layers"]) == 1
    skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{bb.root / 'copied'}:v1")

    # A second push skips the layer.
    again = bb.docker("push", ref).out
    assert "Layer already exists" in again

    # Gone locally, then pulled back, with its digest recorded, and it runs.
    bb.docker("rmi", ref, "busybox")
    assert bb.docker("images", "-q").out.strip() == ""
    pulled = bb.docker("pull", ref).out
    assert "Pull complete" in pulled
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {ref}" in pulled
    image = json.loads(bb.docker("image", "inspect", ref).out)[0]
    assert image["RepoDigests"] == [f"{registry.addr}/team/bb@{digest}"]
    assert bb.docker("run", "--rm", ref, "echo", "pulled-and-ran").out.strip() == "pulled-and-ran"
    up_to_date = bb.docker("pull", ref).out
    assert f"Status: Image is up to date for {ref}" in up_to_date
    # By digest too.
    by_digest = bb.docker("pull", f"{registry.addr}/team/bb@{digest}").out
    assert digest in by_digest

    # docker-py pulls and pushes through the same endpoints.
    client = bb.client()
    client.images.get(ref).tag(f"{registry.addr}/team/py", "v2")
    lines = list(client.images.push(f"{registry.addr}/team/py", tag="v2", stream=True, decode=True))
    assert not any("error" in line for line in lines), lines
    client.images.remove(f"{registry.addr}/team/py:v2")
    image = client.images.pull(f"{registry.addr}/team/py", tag="v2")
    assert f"{registry.addr}/team/py:v2" in image.tags


def test_images_skopeo_pushed_gzip_and_multi_arch(bb, registry):
    # skopeo pushes with gzip-compressed layers, from the archive berth saves.
    archive = bb.root / "bb.tar"
    bb.docker("save", "-o", str(archive), "busybox")
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{registry.addr}/sk/bb:gz")
    manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.addr}/sk/bb:gz").out)
    assert manifest["layers"][0]["mediaType"].endswith("gzip")
    bb.docker("rmi", "busybox")
    out = bb.docker("pull", f"{registry.addr}/sk/bb:gz").out
    assert "Pull complete" in out
    assert bb.docker("run", "--rm", f"{registry.addr}/sk/bb:gz", "true").returncode == 0
    # Kept as the registry served it: saved as a plain archive, pushed back as gzip.
    resaved = bb.root / "resaved.tar"
    bb.docker("save", "-o", str(resaved), f"{registry.addr}/sk/bb:gz")
    assert json.loads(skopeo("inspect", f"docker-archive:{resaved}").out)["Layers"]
    bb.docker("tag", f"{registry.addr}/sk/bb:gz", f"{registry.addr}/sk/again:1")
    bb.docker("push", f"{registry.addr}/sk/again:1")
    again = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.addr}/sk/again:1").out)
    assert again["layers"][0]["digest"] == manifest["layers"][0]["digest"]
    assert again["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"

    # A multi-arch index: the host's platform is picked; a platform it lacks is named.
    layout = bb.root / "multi"
    skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:bb")
    index = json.loads((layout / "index.json").read_text())
    amd = dict(index["manifests"][0])
    amd["platform"] = {"os": "linux", "architecture": "amd64"}
    fake = dict(amd)
    fake["platform"] = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [fake, amd]}
    data = json.dumps(inner).encode()
    import hashlib
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    index["manifests"] = [{"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": f"sha256:{digest}", "size": len(data),
                           "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
    (layout / "index.json").write_text(json.dumps(index))
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:multi", f"docker://{registry.addr}/sk/multi:latest")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.addr}/sk/multi:latest").out)
    assert len(raw["manifests"]) == 2
    out = bb.docker("pull", f"{registry.addr}/sk/multi").out
    assert "Status: " in out
    assert bb.docker("run", "--rm", f"{registry.addr}/sk/multi", "true").returncode == 0
    missing = bb.docker("pull", "--platform", "linux/s390x", f"{registry.addr}/sk/multi", check=False)
    assert missing.returncode != 0 and "linux/s390x" in missing.err


def test_login_with_basic_auth(bb, tmp_root):
    reg = Registry(tmp_root / "private", htpasswd=("alice", "s3cret"))
    try:
        ref = f"{reg.addr}/priv/bb:1"
        bb.docker("tag", "busybox", ref)
        denied = bb.docker("push", ref, check=False)
        assert denied.returncode != 0 and "unauthorized" in (denied.err + denied.out).lower()

        wrong = bb.docker("login", reg.addr, "-u", "alice", "--password-stdin", input="nope\n", check=False)
        assert wrong.returncode == 1 and "incorrect username or password" in wrong.err
        config = Path(bb.env()["DOCKER_CONFIG"]) / "config.json"
        assert not config.exists() or reg.addr not in config.read_text()

        ok = bb.docker("login", reg.addr, "-u", "alice", "--password-stdin", input="s3cret\n")
        assert "Login Succeeded" in ok.out
        stored = json.loads(config.read_text())["auths"][reg.addr]["auth"]
        assert base64.b64decode(stored).decode() == "alice:s3cret"
        assert "Pushed" in bb.docker("push", ref).out
        bb.docker("rmi", ref)
        assert "Pull complete" in bb.docker("pull", ref).out or "Already exists" in bb.docker("pull", ref).out

        # Our CLI reads the same file.
        assert bb.berth("pull", ref).returncode == 0

        bb.docker("logout", reg.addr)
        bb.docker("rmi", ref)
        refused = bb.docker("pull", ref, check=False)
        assert refused.returncode == 1 and "pull access denied" in refused.err
        assert ref not in bb.docker("images", "--format", "{{.Repository}}:{{.Tag}}").out

        # docker-py: login, then pull.
        client = bb.client()
        assert client.login("alice", "s3cret", registry=reg.addr)["Status"] == "Login Succeeded"
    finally:
        reg.stop()


class BreakingProxy:
    """Forwards to a registry; can cut a blob off halfway or flip one of its bytes."""

    def __init__(self, upstream_port):
        self.mode = "pass"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                big_blob = "/blobs/sha256:" in self.path and len(data) > 100000
                if big_blob and proxy.mode == "cut":
                    self.send_response(resp.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if big_blob and proxy.mode == "corrupt":
                    data = bytearray(data)
                    data[len(data) // 2] ^= 0xFF
                    data = bytes(data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_broken_or_corrupt_pull_leaves_nothing_and_the_next_one_succeeds(bb, registry):
    # An image with a layer big enough to be cut in the middle.
    root = bb.root / "big-rootfs"
    (root / "data").mkdir(parents=True)
    (root / "data" / "blob").write_bytes(os.urandom(3 << 20))
    tar = bb.root / "big.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root / "data", arcname="data")
    bb.docker("import", str(tar), "big")
    proxy = BreakingProxy(registry.port)
    try:
        ref = f"{proxy.addr}/x/big:1"
        bb.docker("tag", "big", ref)
        bb.docker("push", ref)
        bb.docker("rmi", ref, "big")
        before = store_files(bb)

        proxy.mode = "cut"
        cut = bb.docker("pull", ref, check=False)
        assert cut.returncode == 1 and "connection" in cut.err.lower(), cut.err
        assert ref not in bb.docker("images", "--format", "{{.Repository}}:{{.Tag}}").out

        proxy.mode = "corrupt"
        bad = bb.docker("pull", ref, check=False)
        assert bad.returncode == 1 and "verification failed" in bad.err, bad.err
        assert store_files(bb) == before, "a failed pull left files in the store"

        proxy.mode = "pass"
        assert "Pull complete" in bb.docker("pull", ref).out
        cid = bb.docker("create", ref, "none").out.strip()
        bb.docker("cp", f"{cid}:/data/blob", str(bb.root / "blob-back"))
        assert (bb.root / "blob-back").read_bytes() == (root / "data" / "blob").read_bytes()
        bb.docker("rm", cid)
    finally:
        proxy.close()


def test_bad_references_and_unknown_tags(bb, registry):
    r = bb.docker("pull", f"{registry.addr}/nothing/here:v9", check=False)
    assert r.returncode == 1 and "manifest unknown" in r.err
    r = bb.docker("pull", "library/BusyBox", check=False)
    assert r.returncode != 0 and "must be lowercase" in r.err
    r = bb.docker("push", f"{registry.addr}/not/local:1", check=False)
    assert r.returncode == 1 and "does not exist locally" in r.err


def test_docker_hub_names_go_to_the_configured_mirror(tmp_root, busybox_tar, registry):
    from conftest import Daemon

    # Seed the mirror as Docker Hub's library/busybox would be.
    seed = Daemon(tmp_root / "seed").start()
    try:
        seed.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), f"{registry.addr}/library/busybox:latest")
        seed.docker("push", f"{registry.addr}/library/busybox:latest")
    finally:
        seed.docker("rm", "-f", *seed.docker("ps", "-aq").out.split(), check=False)
        seed.stop()
    (tmp_root / "mirrored").mkdir()
    d = Daemon(tmp_root / "mirrored", config={"registry-mirrors": [f"http://{registry.addr}"]}).start()
    try:
        out = d.docker("pull", "busybox").out
        assert "Status: Downloaded newer image for busybox:latest" in out
        assert d.docker("run", "--rm", "busybox", "echo", "via-mirror").out.strip() == "via-mirror"
        info = json.loads(d.docker("info", "--format", "{{json .RegistryConfig.Mirrors}}").out)
        assert info == [f"http://{registry.addr}/"]
    finally:
        d.docker("rm", "-f", *d.docker("ps", "-aq").out.split(), check=False)
        d.stop()


def openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token service on loopback: Basic credentials in, a signed JWT out."""

    def __init__(self, key, cert_der, issuer, service, user, password):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlparse
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                query = parse_qs(urlparse(self.path).query)
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert_der).decode()]}
                claims = {"iss": issuer, "sub": user, "aud": service, "exp": now + 300, "nbf": now - 10,
                          "iat": now, "jti": os.urandom(8).hex(), "access": access}
                signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
                signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)],
                                           input=signing_input.encode(), capture_output=True, check=True).stdout
                body = json.dumps({"token": f"{signing_input}.{b64url(signature)}"}).encode()
                outer.issued += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.issued = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_tls_registry_with_bearer_tokens(tmp_root, busybox_tar):
    """A registry that is not on loopback (in a network namespace the test makes), with a
    certificate from a CA berthd trusts only through its certs dir, and token auth."""
    from conftest import Daemon

    work = tmp_root / "tls"
    work.mkdir()
    tag = os.urandom(3).hex()
    ns, host_if, ns_if = f"btreg{tag}", f"vr{tag}", f"vn{tag}"
    octet = random.randint(0, 255)
    host_ip, reg_ip = f"10.99.{octet}.1", f"10.99.{octet}.2"
    reg_addr = f"{reg_ip}:5000"
    # A CA, a server certificate for the registry's address, a token-signing key.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=berth test CA", cwd=work)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={reg_ip}", cwd=work)
    (work / "san.ext").write_text(f"subjectAltName=IP:{reg_ip}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.ext", cwd=work)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "token.key", "-out", "token.crt",
            "-days", "1", "-subj", "/CN=berth test token issuer", cwd=work)
    token_der = run(["openssl", "x509", "-in", str(work / "token.crt"), "-outform", "DER"]).stdout
    tokens = TokenServer(work / "token.key", token_der, "berth-test-issuer", "berth-test-registry", "alice", "s3cret")
    (work / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'data'}\n"
        f"http:\n  addr: {reg_addr}\n  tls:\n    certificate: {work / 'server.crt'}\n    key: {work / 'server.key'}\n"
        f"auth:\n  token:\n    realm: {tokens.url}\n    service: berth-test-registry\n"
        f"    issuer: berth-test-issuer\n    rootcertbundle: {work / 'token.crt'}\n")
    certs = work / "certs.d"
    (certs / reg_addr).mkdir(parents=True)
    shutil.copy(work / "ca.crt", certs / reg_addr / "ca.crt")
    registry = None
    d = None
    try:
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if])
        run(["ip", "link", "set", ns_if, "netns", ns])
        run(["ip", "addr", "add", f"{host_ip}/30", "dev", host_if])
        run(["ip", "link", "set", host_if, "up"])
        run(["ip", "netns", "exec", ns, "ip", "addr", "add", f"{reg_ip}/30", "dev", ns_if])
        run(["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"])
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        registry = subprocess.Popen(["ip", "netns", "exec", ns, REGISTRY, "serve", str(work / "config.yml")],
                                    stdout=subprocess.DEVNULL, stderr=open(work / "registry.log", "ab"))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection((reg_ip, 5000), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)

        d = Daemon(tmp_root / "tlsd", extra_args=["--certs-dir", str(certs)]).start()
        d.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), f"{reg_addr}/team/bb:1")
        denied = d.docker("push", f"{reg_addr}/team/bb:1", check=False)
        assert denied.returncode != 0 and "unauthorized" in (denied.out + denied.err).lower()
        wrong = d.docker("login", reg_addr, "-u", "alice", "--password-stdin", input="nope\n", check=False)
        assert wrong.returncode == 1 and "incorrect username or password" in wrong.err
        assert "Login Succeeded" in d.docker("login", reg_addr, "-u", "alice", "--password-stdin", input="s3cret\n").out
        assert "Pushed" in d.docker("push", f"{reg_addr}/team/bb:1").out
        d.docker("rmi", f"{reg_addr}/team/bb:1")
        assert "Pull complete" in d.docker("pull", f"{reg_addr}/team/bb:1").out
        assert tokens.issued >= 2

        # Without the CA, the same registry's certificate is refused.
        shutil.rmtree(certs / reg_addr)
        d.docker("rmi", f"{reg_addr}/team/bb:1")
        untrusted = d.docker("pull", f"{reg_addr}/team/bb:1", check=False)
        assert untrusted.returncode == 1 and "certificate" in untrusted.err.lower(), untrusted.err
    finally:
        if d:
            d.stop()
        if registry:
            registry.terminate()
            registry.wait(10)
        tokens.close()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_all_tags_cross_repository_mounts_and_a_hostile_layer(bb, registry):
    # Two tags pushed, then `pull -a` brings both.
    for tag in ("a", "b"):
        bb.docker("tag", "busybox", f"{registry.addr}/multi/tags:{tag}")
        bb.docker("push", f"{registry.addr}/multi/tags:{tag}")
    bb.docker("rmi", f"{registry.addr}/multi/tags:a", f"{registry.addr}/multi/tags:b")
    out = bb.docker("pull", "-a", f"{registry.addr}/multi/tags").out
    assert "Status: " in out
    tags = bb.docker("images", "--format", "{{.Tag}}", f"{registry.addr}/multi/tags").out.split()
    assert sorted(tags) == ["a", "b"]

    # A pulled image pushed to another repository of the same registry: mounted, not sent.
    bb.docker("tag", f"{registry.addr}/multi/tags:a", f"{registry.addr}/other/repo:1")
    pushed = bb.docker("push", f"{registry.addr}/other/repo:1").out
    assert "Mounted from multi/tags" in pushed, pushed

    # A layer that writes outside its root is refused, as import refuses it.
    evil = bb.root / "evil"
    evil.mkdir()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = b"pwned\n"
        info = tarfile.TarInfo("../../../../../../tmp/berth-escape-" + os.urandom(4).hex())
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    import hashlib
    diff = hashlib.sha256(layer_bytes).hexdigest()
    (evil / diff).mkdir()
    (evil / diff / "layer.tar").write_bytes(layer_bytes)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    (evil / config_name).write_bytes(config)
    (evil / "manifest.json").write_text(json.dumps([{"Config": config_name, "RepoTags": ["evil:1"],
                                                     "Layers": [f"{diff}/layer.tar"]}]))
    archive = bb.root / "evil.tar"
    with tarfile.open(archive, "w") as t:
        for entry in evil.iterdir():
            t.add(entry, arcname=entry.name)
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}", f"docker://{registry.addr}/evil/img:1")
    before = store_files(bb)
    r = bb.docker("pull", f"{registry.addr}/evil/img:1", check=False)
    assert r.returncode == 1, r.out
    assert not list(Path("/tmp").glob("berth-escape-*"))
    assert store_files(bb) == before
