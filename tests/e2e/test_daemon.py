"""The daemon itself: API surface, versions, config, lock, shutdown, events."""

import json
import signal
import subprocess
import time

import pytest

from conftest import BERTHD, DOCKER, Daemon


def test_ping_headers_and_versions(daemon):
    for method in ("GET", "HEAD"):
        status, headers, body = daemon.request(method, "/_ping")
        assert status == 200
        assert headers["api-version"] == "1.47"
        assert headers["ostype"] == "linux"
        assert headers["builder-version"] == "1"
        if method == "GET":
            assert body == b"OK"
    # Versioned paths up to the advertised version, and the old ones compose v1 uses.
    for prefix in ("", "/v1.24", "/v1.38", "/v1.47"):
        status, _, body = daemon.request("GET", f"{prefix}/version")
        assert status == 200, prefix
        assert json.loads(body)["ApiVersion"] == "1.47"
    status, _, body = daemon.request("GET", "/v1.99/version")
    assert status == 400
    assert "too new" in json.loads(body)["message"]
    status, _, body = daemon.request("GET", "/v1.12/version")
    assert status == 400 and "too old" in json.loads(body)["message"]
    status, _, body = daemon.request("GET", "/nonexistent")
    assert status == 404 and "message" in json.loads(body)


def test_docker_cli_version_and_info(daemon):
    out = daemon.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").out.split()
    assert out[1] == "1.47"
    assert out[0].count(".") == 2  # YY.MM.patch
    info = json.loads(daemon.docker("info", "--format", "{{json .}}").out)
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["Driver"] == "overlay2"
    assert info["OSType"] == "linux"
    assert info["NCPU"] >= 1
    ours = daemon.berth("version").out
    assert "Server: berth" in ours and "API version:      1.47" in ours
    assert "Images: 0" in daemon.berth("info").out


def test_docker_py_version(daemon):
    client = daemon.client()
    assert client.version()["ApiVersion"] == "1.47"
    assert client.ping() is True
    assert client.info()["Images"] == 0


def test_second_daemon_on_same_root_is_refused(daemon):
    other = subprocess.run(
        [str(BERTHD), "--data-root", str(daemon.data_root), "--exec-root", str(daemon.root / "run2")],
        capture_output=True, text=True, timeout=20,
    )
    assert other.returncode != 0
    assert "already using data root" in other.stderr
    # The first daemon still answers.
    assert daemon.request("GET", "/_ping")[0] == 200


def test_config_file_unknown_keys_are_refused(tmp_root):
    cfg = tmp_root / "daemon.json"
    cfg.write_text(json.dumps({"debug": True, "no-such-key": 1}))
    proc = subprocess.run(
        [str(BERTHD), "--data-root", str(tmp_root / "d"), "--config-file", str(cfg), "--validate"],
        capture_output=True, text=True, timeout=20,
    )
    assert proc.returncode == 1
    assert "don't match any configuration option: no-such-key" in proc.stderr


def test_config_file_keys_are_used(tmp_root):
    d = Daemon(tmp_root, config={
        "debug": True,
        "registry-mirrors": ["http://127.0.0.1:5999"],
        "insecure-registries": ["myregistry:5000"],
        "labels": ["env=test"],
    }).start()
    try:
        info = json.loads(d.docker("info", "--format", "{{json .}}").out)
        assert info["Debug"] is True
        assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5999/"]  # dockerd normalises
        assert "myregistry:5000" in info["RegistryConfig"]["IndexConfigs"]
        assert info["Labels"] == ["env=test"]
    finally:
        assert d.stop() == 0


def test_tcp_without_tls_needs_explicit_opt_in(tmp_root):
    proc = subprocess.run(
        [str(BERTHD), "--data-root", str(tmp_root / "d"), "--exec-root", str(tmp_root / "r"), "-H", "tcp://127.0.0.1:0"],
        capture_output=True, text=True, timeout=20,
    )
    assert proc.returncode == 1
    assert "refusing to listen" in proc.stderr


def test_sigint_shuts_down_cleanly(tmp_root):
    d = Daemon(tmp_root).start()
    assert d.stop(sig=signal.SIGINT) == 0
    assert not d.sock.exists()


def test_events_stream_image_actions(daemon, busybox_tar):
    since = time.time()
    daemon.docker("import", str(busybox_tar), "evt-img:1")
    daemon.docker("tag", "evt-img:1", "evt-img:2")
    daemon.docker("rmi", "evt-img:2")
    until = time.time() + 0.5
    out = daemon.docker(
        "events", "--since", f"{since:.6f}", "--until", f"{until:.6f}",
        "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}",
    ).out.splitlines()
    assert out == ["import evt-img:1", "tag evt-img:1", "tag evt-img:2", "untag evt-img:2"]
    events = list(daemon.client().events(since=int(since), until=int(until) + 1, decode=True,
                                         filters={"event": "tag"}))
    assert [e["Actor"]["Attributes"]["name"] for e in events] == ["evt-img:1", "evt-img:2"]
    assert all(e["Type"] == "image" and "timeNano" in e for e in events)
    bad = daemon.docker("events", "--filter", "bogus=1", "--until", "0s", check=False)
    assert bad.returncode != 0 and "invalid filter 'bogus'" in bad.err


def test_events_follow_live(daemon, busybox_tar):
    import selectors

    proc = subprocess.Popen(
        [DOCKER, "events", "--format", "{{.Action}}"],
        env=daemon.env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(0.3)
        daemon.docker("import", str(busybox_tar), "live-evt")
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=10), "no live event within 10s"
        assert proc.stdout.readline().strip() == "import"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
