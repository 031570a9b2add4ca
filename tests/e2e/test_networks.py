"""Networks for real, through the docker CLI, docker-py and our CLI: bridges and veth
pairs, IPAM, name resolution between containers, published ports reached from the
host, the none/host/container modes, and what is left after everything is removed."""

import json
import os
import random
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import Daemon, iptables_rules_for, links


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def unique_subnet():
    return f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, attempts=30):
    """GET with a bounded retry while the container's server comes up."""
    last = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.read().decode()
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"{url}: {last}")


def veths():
    return {l for l in links() if l.startswith("veth")}


def test_default_bridge_gives_an_address_a_route_and_no_names(bb):
    before = veths()
    out = bb.docker("run", "--rm", "busybox", "sh", "-c",
                    "ip -4 addr show eth0; ip route; cat /etc/hosts; hostname").out
    subnet = json.loads(bb.docker("network", "inspect", "bridge").out)[0]["IPAM"]["Config"][0]
    prefix = subnet["Subnet"].rsplit(".", 2)[0]
    assert f"inet {prefix}." in out
    assert f"default via {subnet['Gateway']} dev eth0" in out
    hostname = out.strip().splitlines()[-1]
    assert any(line.endswith(f"\t{hostname}") and line.startswith(prefix) for line in out.splitlines())
    # The default bridge has no embedded resolver: Docker's behaviour.
    resolv = bb.docker("run", "--rm", "busybox", "cat", "/etc/resolv.conf").out
    assert subnet["Gateway"] not in resolv
    assert veths() == before, "a --rm container left its veth behind"
    # The bridge itself, with the daemon's name for it and its gateway.
    assert bb.bridge in links()


def test_network_commands_and_bad_input(bb):
    subnet = unique_subnet()
    base = subnet.rsplit(".", 1)[0]
    name = f"n{random.randint(0, 1 << 30)}"
    net_id = bb.docker("network", "create", "--subnet", subnet, "--gateway", f"{base}.254",
                       "--ip-range", f"{base}.128/25", "--label", "team=blue",
                       "-o", f"com.docker.network.bridge.name=bx{name[-8:]}", name).out.strip()
    assert len(net_id) == 64
    assert f"bx{name[-8:]}" in links()

    ls = bb.docker("network", "ls").out.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    names = [line.split()[1] for line in ls[1:]]
    assert {"bridge", "host", "none", name} <= set(names)
    assert bb.docker("network", "ls", "-q", "--filter", f"name={name}").out.split() == [net_id[:12]]
    assert bb.docker("network", "ls", "--no-trunc", "-q", "-f", "label=team=blue").out.split() == [net_id]
    custom = bb.docker("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").out.split()
    assert custom == [name]

    info = json.loads(bb.docker("network", "inspect", name).out)[0]
    assert info["Id"] == net_id and info["Driver"] == "bridge" and info["Scope"] == "local"
    assert info["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": f"{base}.254", "IPRange": f"{base}.128/25"}]
    assert info["Labels"] == {"team": "blue"}

    # Addresses come from the range; a static one is honoured and cannot be taken twice.
    cid = bb.docker("run", "-d", "--network", name, "--ip", f"{base}.200", "busybox", "sleep", "60").out.strip()
    other = bb.docker("run", "--rm", "--network", name, "busybox", "ip", "-4", "addr", "show", "eth0").out
    assert f"inet {base}.128/24" in other
    clash = bb.docker("run", "--rm", "--network", name, "--ip", f"{base}.200", "busybox", "true", check=False)
    assert clash.returncode != 0 and "already" in clash.err
    outside = bb.docker("run", "--rm", "--network", name, "--ip", f"{base}.5", "busybox", "true", check=False)
    assert outside.returncode != 0 and f"{base}.5" in outside.err
    info = json.loads(bb.docker("network", "inspect", name).out)[0]
    assert info["Containers"][cid]["IPv4Address"] == f"{base}.200/24"

    # In use: refused with Docker's words; the predefined networks never go.
    busy = bb.docker("network", "rm", name, check=False)
    assert busy.returncode == 1 and "has active endpoints" in busy.err
    for predefined in ("bridge", "host", "none"):
        r = bb.docker("network", "rm", predefined, check=False)
        assert r.returncode == 1 and "pre-defined network and cannot be removed" in r.err

    # Bad input, refused before anything is made.
    overlap = bb.docker("network", "create", "--subnet", subnet, f"{name}x", check=False)
    assert overlap.returncode == 1 and "overlaps" in overlap.err
    routes = [l.split()[0] for l in subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout.splitlines()
              if l and l.split()[0] != "default" and "/" in l.split()[0] and bb.bridge not in l]
    if routes:
        r = bb.docker("network", "create", "--subnet", routes[0], f"{name}y", check=False)
        assert r.returncode == 1 and "overlaps" in r.err, r.err
    r = bb.docker("network", "create", "--subnet", "10.0.0.0/33", f"{name}z", check=False)
    assert r.returncode != 0 and "10.0.0.0/33" in r.err
    r = bb.docker("network", "create", "--subnet", unique_subnet(), "--gateway", "172.31.99.1", f"{name}w", check=False)
    assert r.returncode != 0 and "172.31.99.1" in r.err
    r = bb.docker("network", "create", name, check=False)
    assert r.returncode == 1 and "already exists" in r.err
    r = bb.docker("network", "inspect", "no-such-net", check=False)
    assert r.returncode == 1 and "network no-such-net not found" in r.err
    r = bb.docker("run", "--rm", "--network", "no-such-net", "busybox", "true", check=False)
    assert r.returncode == 125 and "network no-such-net not found" in r.err
    r = bb.docker("network", "connect", name, cid, check=False)
    assert r.returncode == 1 and "already exists in network" in r.err
    names_now = bb.docker("network", "ls", "--format", "{{.Name}}").out.split()
    assert not any(n.startswith(name) and n != name for n in names_now)

    bb.docker("rm", "-f", cid)
    assert bb.docker("network", "rm", name).out.strip() == name
    assert f"bx{name[-8:]}" not in links()
    assert not iptables_rules_for(f"bx{name[-8:]}")

    # prune removes unused custom networks only.
    bb.docker("network", "create", f"{name}p")
    pruned = bb.docker("network", "prune", "-f").out
    assert f"{name}p" in pruned
    assert {"bridge", "host", "none"} <= set(bb.docker("network", "ls", "--format", "{{.Name}}").out.split())


def test_containers_find_each_other_by_name_and_the_host_reaches_published_ports(bb):
    name = f"app{random.randint(0, 1 << 30)}"
    bb.docker("network", "create", name)
    port = free_port()
    web = bb.docker("run", "-d", "--name", f"{name}-web", "--network", name, "--network-alias", "www",
                    "-p", f"127.0.0.1:{port}:80", "busybox",
                    "sh", "-c", "echo hello-from-web > /index.html; exec httpd -f -p 80 -h /").out.strip()

    # The host, through the published port on loopback.
    assert fetch(f"http://127.0.0.1:{port}/index.html").strip() == "hello-from-web"
    assert bb.docker("port", web).out.strip() == f"80/tcp -> 127.0.0.1:{port}"
    assert bb.docker("port", web, "80").out.strip() == f"127.0.0.1:{port}"
    ps = bb.docker("ps", "--filter", f"id={web}", "--format", "{{.Ports}}").out.strip()
    assert ps == f"127.0.0.1:{port}->80/tcp"
    ports = json.loads(bb.docker("inspect", web).out)[0]["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}

    # Another container, by name and by alias, through the embedded resolver.
    script = (f"wget -qO- http://{name}-web/index.html; wget -qO- http://www/index.html; "
              f"ping -c1 -W2 {name}-web >/dev/null && echo ping-ok; "
              "nslookup no-such-container 2>&1; cat /etc/hosts")
    out = bb.docker("run", "--rm", "--network", name, "--name", f"{name}-client", "busybox", "sh", "-c", script).out
    assert out.count("hello-from-web") == 2
    assert "ping-ok" in out
    assert "NXDOMAIN" in out
    assert f"{name}-client" in out  # its own name in /etc/hosts

    # Not from the default bridge: names resolve only on shared user networks.
    out = bb.docker("run", "--rm", "busybox", "sh", "-c", f"nslookup {name}-web 2>&1 || true").out
    settings = json.loads(bb.docker("inspect", web).out)[0]["NetworkSettings"]["Networks"][name]
    assert settings["IPAddress"] not in out

    # docker-py connects the server to a second network and disconnects it again.
    client = bb.client()
    second = client.networks.create(f"{name}-b", driver="bridge")
    second.connect(web, aliases=["api"])
    addrs = bb.docker("exec", web, "ip", "-4", "-o", "addr").out
    assert "eth1" in addrs
    second.reload()
    assert web in second.attrs["Containers"]
    out = client.containers.run("busybox", ["wget", "-qO-", "http://api/index.html"], network=f"{name}-b", remove=True)
    assert b"hello-from-web" in out
    second.disconnect(web)
    assert "eth1" not in bb.docker("exec", web, "ip", "-4", "-o", "addr").out
    second.remove()

    bb.docker("rm", "-f", web)
    # The port is free again and its rule gone.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert not [r for r in iptables_rules_for("BERTH") if f"--dport {port} " in r[1] + " "]
    bb.docker("network", "rm", name)


def test_publishing_forms_and_a_port_already_in_use(bb):
    before = veths()
    cid = bb.docker("run", "-d", "--expose", "81", "-P", "-p", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc").out.strip()
    mapping = bb.docker("port", cid).out.splitlines()
    assert len(mapping) == 2
    port80 = int(bb.docker("port", cid, "80/tcp").out.strip().rsplit(":", 1)[1])
    assert fetch(f"http://127.0.0.1:{port80}/hostname").strip() == cid[:12]

    # The same host port again: a clear error, the container not started, nothing leaked.
    taken = bb.docker("run", "-d", "--name", "second", "-p", f"{port80}:80", "busybox", "true", check=False)
    assert taken.returncode == 125 and "port is already allocated" in taken.err
    assert json.loads(bb.docker("inspect", "second").out)[0]["State"]["Running"] is False
    # A port held by some other program on the host.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        held = s.getsockname()[1]
        r = bb.docker("run", "-d", "-p", f"{held}:80", "busybox", "true", check=False)
        assert r.returncode == 125 and str(held) in r.err
    # Bad specs: the CLIs refuse them, and so does the daemon when a client does not.
    for cli in (bb.docker, bb.berth):
        bad = cli("run", "--rm", "-p", "8080:eighty", "busybox", "true", check=False)
        assert bad.returncode == 125 and "eighty" in bad.err, bad.err
    status, _, body = bb.request("POST", "/containers/create", json.dumps({
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"PortBindings": {"8o/tcp": [{"HostPort": "8080"}]}}}).encode(),
        {"Content-Type": "application/json"})
    created = json.loads(body).get("Id")
    if status == 201:
        start_status, _, body = bb.request("POST", f"/containers/{created}/start")
        assert start_status >= 400
    assert b"8o/tcp" in body
    bb.docker("rm", "-f", cid, "second")
    bb.docker("container", "prune", "-f")
    assert veths() == before


def test_none_host_and_container_modes(bb):
    out = bb.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").out
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]

    host_links = links()
    out = bb.docker("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ip -o link; hostname").out
    assert bb.bridge in out
    assert out.strip().splitlines()[-1] == socket.gethostname()

    first = bb.docker("run", "-d", "--name", "first", "busybox", "sleep", "60").out.strip()
    ip = json.loads(bb.docker("inspect", first).out)[0]["NetworkSettings"]["IPAddress"]
    assert ip
    shared = bb.docker("run", "--rm", "--network", f"container:{first}", "busybox", "ip", "-4", "-o", "addr").out
    assert ip in shared
    bb.docker("rm", "-f", first)
    assert links() <= host_links | {bb.bridge}


def test_networks_survive_a_daemon_crash_and_a_container_restart(tmp_root, busybox_tar):
    d = Daemon(tmp_root).start()
    try:
        d.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
        subnet = unique_subnet()
        base = subnet.rsplit(".", 1)[0]
        d.docker("network", "create", "--subnet", subnet, "crashnet")
        port = free_port()
        d.docker("run", "-d", "--name", "srv", "--network", "crashnet", "--ip", f"{base}.77",
                 "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
        assert fetch(f"http://127.0.0.1:{port}/hostname")

        d.kill9()
        d = Daemon(tmp_root).start()
        # Still served, still named, the port still held.
        assert fetch(f"http://127.0.0.1:{port}/hostname")
        out = d.docker("run", "--rm", "--network", "crashnet", "busybox", "nslookup", "srv").out
        assert f"{base}.77" in out
        taken = d.docker("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False)
        assert taken.returncode == 125

        # A restart keeps the static address and the published port.
        d.docker("restart", "-t", "1", "srv")
        info = json.loads(d.docker("inspect", "srv").out)[0]["NetworkSettings"]
        assert info["Networks"]["crashnet"]["IPAddress"] == f"{base}.77"
        assert fetch(f"http://127.0.0.1:{port}/hostname")
    finally:
        left = d.docker("ps", "-aq", check=False).out.split()
        if left:
            d.docker("rm", "-f", *left, check=False)
        d.docker("network", "prune", "-f", check=False)
        d.stop()


def test_udp_publishing_and_reaching_the_host_through_the_gateway(bb):
    # UDP: a datagram sent to the published port on loopback reaches an echo server in
    # the container (the host's python, bind-mounted read-only: busybox has no UDP server).
    port = free_port()
    echo = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 53))\n"
            "while True:\n"
            "    d, a = s.recvfrom(100)\n"
            "    s.sendto(b'echo:' + d, a)\n")
    mounts = [a for d in ("/usr", "/lib", "/lib64") if os.path.isdir(d) for a in ("-v", f"{d}:{d}:ro")]
    cid = bb.docker("run", "-d", "-p", f"127.0.0.1:{port}:53/udp", *mounts, "busybox",
                    "/usr/bin/python3", "-c", echo).out.strip()
    assert bb.docker("port", cid).out.strip() == f"53/udp -> 127.0.0.1:{port}"
    got = b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(50):
            s.sendto(b"over-udp", ("127.0.0.1", port))
            try:
                got = s.recv(100)
                break
            except OSError:
                pass
    assert got == b"echo:over-udp"
    bb.docker("rm", "-f", cid)

    # The host, as the container sees it: a server on the bridge's address answers.
    gateway = json.loads(bb.docker("network", "inspect", "bridge").out)[0]["IPAM"]["Config"][0]["Gateway"]
    import http.server
    import threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello-from-host")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer((gateway, 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = bb.docker("run", "--rm", "busybox", "wget", "-qO-", f"http://{gateway}:{server.server_port}/").out
        assert out == "hello-from-host"
    finally:
        server.shutdown()
        server.server_close()
