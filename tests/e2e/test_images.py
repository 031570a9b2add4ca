"""Images through the real docker CLI, docker-py and our CLI: import, list, inspect,
tag, rmi, history, save/load, prune, and the bad input each must survive."""

import gzip
import http.server
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from conftest import Daemon, run, store_files


def import_image(daemon, tar_path, ref, *extra):
    return daemon.docker("import", *extra, str(tar_path), ref).out.strip()


def test_import_forms_and_changes(daemon, busybox_tar, tmp_path):
    raw = busybox_tar.read_bytes()
    # file, stdin, and each compression.
    id_file = import_image(daemon, busybox_tar, "imp:file")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", id_file)
    id_stdin = daemon.docker("import", "-", "imp:stdin", input=raw).out.strip()
    assert id_stdin.startswith("sha256:")
    (tmp_path / "bb.tar.gz").write_bytes(gzip.compress(raw, 1))
    (tmp_path / "bb.tar.xz").write_bytes(lzma.compress(raw, preset=0))
    zst = subprocess.run(["zstd", "-q", "-c", str(busybox_tar)], capture_output=True)
    formats = ["bb.tar.gz", "bb.tar.xz"]
    if zst.returncode == 0:
        (tmp_path / "bb.tar.zst").write_bytes(zst.stdout)
        formats.append("bb.tar.zst")
    layers = set()
    for name in formats:
        import_image(daemon, tmp_path / name, f"imp:{name.split('.')[-1]}")
        layers.add(tuple(json.loads(daemon.docker("image", "inspect", f"imp:{name.split('.')[-1]}").out)[0]["RootFS"]["Layers"]))
    # The layer is the uncompressed tar, whatever it arrived in.
    layers.add(tuple(json.loads(daemon.docker("image", "inspect", "imp:file").out)[0]["RootFS"]["Layers"]))
    assert len(layers) == 1

    # --change and -m.
    daemon.docker(
        "import", "-c", "ENV A=1 B=two", "-c", 'CMD ["sh", "-c", "echo hi"]', "-c", "WORKDIR /tmp",
        "-c", "USER nobody", "-c", "EXPOSE 80", "-c", "VOLUME /data", "-c", "LABEL team=core",
        "-c", 'ENTRYPOINT ["/bin/env"]', "-m", "my message", str(busybox_tar), "imp:changed",
    )
    doc = json.loads(daemon.docker("image", "inspect", "imp:changed").out)[0]
    cfg = doc["Config"]
    assert cfg["Env"] == ["A=1", "B=two"]
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/env"]
    assert cfg["WorkingDir"] == "/tmp" and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["Volumes"] == {"/data": {}}
    assert cfg["Labels"] == {"team": "core"}
    assert doc["Comment"] == "my message"
    bad = daemon.docker("import", "-c", "FROM x", str(busybox_tar), "imp:bad", check=False)
    assert bad.returncode != 0 and "not a valid change command" in bad.err


def test_import_from_url_on_loopback(daemon, busybox_tar):
    directory = str(busybox_tar.parent)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=directory, **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{busybox_tar.name}"
        out = daemon.docker("import", url, "fromurl:1").out.strip()
        assert out.startswith("sha256:")
        hist = daemon.docker("history", "--no-trunc", "--format", "{{.Comment}}", "fromurl:1").out.strip()
        assert hist == f"Imported from {url}"
        missing = daemon.docker("import", url + ".nope", "fromurl:2", check=False)
        assert missing.returncode != 0 and "404" in missing.err
    finally:
        server.shutdown()


def test_images_list_columns_filters_and_formats(daemon, busybox_tar):
    import_image(daemon, busybox_tar, "alpha:1", "-c", "LABEL tier=one")
    time.sleep(1.1)  # created times are compared in whole seconds by before/since
    import_image(daemon, busybox_tar, "beta:2")
    daemon.docker("tag", "beta:2", "beta:3")
    untagged = daemon.docker("import", str(busybox_tar)).out.strip()
    out = daemon.docker("images").out.splitlines()
    assert re.split(r"\s{2,}", out[0].strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    rows = [re.split(r"\s{2,}", l.strip()) for l in out[1:]]
    assert ["<none>", "<none>"] == rows[0][:2]
    assert {(r[0], r[1]) for r in rows} == {("alpha", "1"), ("beta", "2"), ("beta", "3"), ("<none>", "<none>")}
    assert all(re.fullmatch(r"[0-9a-f]{12}", r[2]) for r in rows)
    assert all(re.fullmatch(r"[\d.]+[kMG]?B", r[4]) for r in rows)

    ids = daemon.docker("images", "-q").out.split()
    assert len(ids) == 4 and all(len(i) == 12 for i in ids)
    full = daemon.docker("images", "-q", "--no-trunc").out.split()
    assert untagged in full
    assert daemon.docker("images", "--filter", "dangling=true", "-q", "--no-trunc").out.split() == [untagged]
    assert daemon.docker("images", "--filter", "label=tier=one", "--format", "{{.Repository}}").out.split() == ["alpha"]
    assert sorted(daemon.docker("images", "--filter", "reference=bet*", "--format", "{{.Repository}}:{{.Tag}}").out.split()) == ["beta:2", "beta:3"]
    assert daemon.docker("images", "beta:3", "--format", "{{.Tag}}").out.split() == ["3"]
    assert daemon.docker("images", "--filter", "before=beta:2", "--format", "{{.Repository}}").out.split() == ["alpha"]
    assert "alpha" not in daemon.docker("images", "--filter", "since=alpha:1", "--format", "{{.Repository}}").out
    digests = daemon.docker("images", "--digests").out.splitlines()[0]
    assert "DIGEST" in digests
    table = daemon.docker("images", "--format", "table {{.Repository}}\t{{.ID}}").out.splitlines()
    assert table[0].split() == ["REPOSITORY", "IMAGE", "ID"]
    bad = daemon.docker("images", "--filter", "nope=1", check=False)
    assert bad.returncode != 0 and "invalid filter 'nope'" in bad.err

    # The same through our CLI.
    ours = daemon.berth("images").out.splitlines()
    assert re.split(r"\s{2,}", ours[0].strip()) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert sorted(daemon.berth("images", "--format", "{{.Repository}}:{{.Tag}}").out.split()) == [
        "<none>:<none>", "alpha:1", "beta:2", "beta:3"]
    assert sorted(daemon.berth("image", "ls", "-q").out.split()) == sorted(ids)
    assert daemon.berth("images", "--filter", "label=tier", "--format", "{{json .}}").out.count('"Repository":"alpha"') == 1


def test_inspect_shape(daemon, busybox_tar):
    image_id = import_image(daemon, busybox_tar, "shape:1", "-c", "ENV PATH=/bin")
    doc = json.loads(daemon.docker("image", "inspect", "shape:1").out)[0]
    for key in ("Id", "RepoTags", "RepoDigests", "Created", "Config", "RootFS", "Size", "Architecture", "Os", "GraphDriver", "Metadata"):
        assert key in doc, key
    assert doc["Id"] == image_id
    assert doc["RepoTags"] == ["shape:1"]
    assert doc["RootFS"]["Type"] == "layers" and len(doc["RootFS"]["Layers"]) == 1
    assert doc["Os"] == "linux" and doc["Architecture"] == "amd64"
    assert doc["Size"] > 1_000_000
    assert daemon.docker("image", "inspect", "-f", "{{.Config.Env}}", "shape:1").out.strip() == "[PATH=/bin]"
    # By id, short id, and sha256: prefix; and our CLI agrees.
    short = image_id[7:19]
    for name in (image_id, image_id[7:], short, f"sha256:{short}"):
        assert json.loads(daemon.docker("image", "inspect", name).out)[0]["Id"] == image_id
    assert daemon.berth("inspect", "--format", "{{.Id}} {{.Config.Env}}", "shape:1").out.strip() == f"{image_id} [PATH=/bin]"
    ours = json.loads(daemon.berth("image", "inspect", "shape:1").out)
    assert ours[0]["Id"] == image_id
    missing = daemon.docker("image", "inspect", "nosuch:tag", check=False)
    assert missing.returncode == 1 and "No such image" in missing.err
    missing = daemon.berth("image", "inspect", "nosuch:tag", check=False)
    assert missing.returncode == 1 and "No such image: nosuch:tag" in missing.err


def test_tag_and_rmi_semantics(daemon, busybox_tar):
    before = store_files(daemon)
    image_id = import_image(daemon, busybox_tar, "rm-me:1")
    daemon.docker("tag", "rm-me:1", "rm-me:2")
    daemon.docker("tag", image_id[7:19], "localhost:5000/team/rm-me")
    tags = json.loads(daemon.docker("image", "inspect", "rm-me:1").out)[0]["RepoTags"]
    assert sorted(tags) == ["localhost:5000/team/rm-me:latest", "rm-me:1", "rm-me:2"]

    # Removing by id while several names point at it: Docker's conflict.
    conflict = daemon.docker("rmi", image_id[7:19], check=False)
    assert conflict.returncode == 1
    assert f"conflict: unable to delete {image_id[7:19]} (must be forced) - image is referenced in multiple repositories" in conflict.err
    # Untag only while other tags remain.
    out = daemon.docker("rmi", "rm-me:2").out.splitlines()
    assert out == ["Untagged: rm-me:2"]
    out = daemon.berth("rmi", "localhost:5000/team/rm-me").out.splitlines()
    assert out == ["Untagged: localhost:5000/team/rm-me:latest"]
    # The last tag deletes the image and its layer.
    out = daemon.docker("rmi", "rm-me:1").out.splitlines()
    assert out[0] == "Untagged: rm-me:1"
    assert f"Deleted: {image_id}" in out
    assert store_files(daemon) == before

    # -f by id with several tags removes them all.
    image_id = import_image(daemon, busybox_tar, "force:1")
    daemon.docker("tag", "force:1", "force:2")
    out = daemon.docker("rmi", "-f", image_id).out
    assert "Untagged: force:1" in out and "Untagged: force:2" in out and f"Deleted: {image_id}" in out
    assert store_files(daemon) == before

    missing = daemon.docker("rmi", "ghost", check=False)
    assert missing.returncode == 1 and "No such image: ghost:latest" in missing.err
    for bad in ("UPPER:x", "a b", "bad//name", ":tag"):
        proc = daemon.docker("tag", "busybox", bad, check=False)
        assert proc.returncode != 0, bad
        assert "invalid reference format" in proc.err or "not a valid" in proc.err, proc.err
    status, _, body = daemon.request("POST", "/images/ghost/tag?repo=Bad&tag=x")
    assert status in (400, 404)
    image_id = import_image(daemon, busybox_tar, "tagme:1")
    status, _, body = daemon.request("POST", f"/images/tagme:1/tag?repo=Bad&tag=x")
    assert status == 400 and "invalid reference format" in json.loads(body)["message"]


def test_history(daemon, busybox_tar):
    image_id = import_image(daemon, busybox_tar, "hist:1", "-m", "first import")
    out = daemon.docker("history", "hist:1").out.splitlines()
    assert re.split(r"\s{2,}", out[0].strip()) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert out[1].startswith(image_id[7:19])
    assert "first import" in out[1]
    client = daemon.client()
    hist = client.images.get("hist:1").history()
    assert hist[0]["Id"] == image_id and hist[0]["Tags"] == ["hist:1"] and hist[0]["Size"] > 0
    assert daemon.berth("history", "-q", "hist:1").out.split() == [image_id[7:19]]


def test_save_load_round_trip_and_skopeo(daemon, busybox_tar, tmp_path, tmp_root):
    image_id = import_image(daemon, busybox_tar, "saved:1", "-c", "CMD [\"sh\"]")
    daemon.docker("tag", "saved:1", "saved:2")
    archive = tmp_path / "saved.tar"
    daemon.docker("save", "-o", str(archive), "saved")  # a bare repository saves all its tags
    names = tarfile.open(archive).getnames()
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= set(names)
    manifest = json.loads(tarfile.open(archive).extractfile("manifest.json").read())
    assert sorted(manifest[0]["RepoTags"]) == ["saved:1", "saved:2"]
    if shutil.which("skopeo"):
        info = json.loads(run(["skopeo", "inspect", f"docker-archive:{archive}:saved:1"]).out)
        assert info["Os"] == "linux" and len(info["Layers"]) == 1

    # Load into a fresh daemon: same id, same tags.
    other = Daemon(tmp_root / "second").start()
    try:
        out = other.docker("load", "-i", str(archive)).out
        assert "Loaded image: saved:1" in out and "Loaded image: saved:2" in out
        doc = json.loads(other.docker("image", "inspect", "saved:1").out)[0]
        assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["sh"]
        # stdin, and our CLI, and loading twice is harmless.
        out = other.berth("load", input=archive.read_bytes()).out
        assert "Loaded image: saved:1" in out
        # An OCI archive written by skopeo loads too.
        if shutil.which("skopeo"):
            oci = tmp_path / "oci.tar"
            run(["skopeo", "copy", "-q", f"docker-archive:{archive}:saved:1", f"oci-archive:{oci}:ociname:7"])
            out = other.docker("load", "-i", str(oci)).out
            assert "Loaded image" in out
    finally:
        assert other.stop() == 0

    # docker-py: save and load.
    client = daemon.client()
    data = b"".join(client.images.get("saved:1").save(named=True))
    client.images.remove("saved:1")
    client.images.remove("saved:2")
    loaded = client.images.load(data)
    assert loaded[0].id == image_id
    assert "saved:1" in loaded[0].tags
    missing = daemon.docker("save", "-o", str(tmp_path / "x.tar"), "ghost:1", check=False)
    assert missing.returncode != 0 and "No such image" in missing.err
    assert not (tmp_path / "x.tar").exists()


def test_prune(daemon, busybox_tar):
    dangling = daemon.docker("import", str(busybox_tar)).out.strip()
    kept = import_image(daemon, busybox_tar, "keep:1", "-c", "ENV K=1")
    out = daemon.docker("image", "prune", "-f").out
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    assert daemon.docker("images", "-q", "--no-trunc").out.split() == [kept]
    out = daemon.berth("image", "prune", "-a", "-f").out
    assert "untagged: keep:1" in out and f"deleted: {kept}" in out
    assert daemon.docker("images", "-q").out.strip() == ""


def test_docker_py_images(daemon, busybox_tar):
    client = daemon.client()
    image_id = import_image(daemon, busybox_tar, "py:1")
    images = client.images.list()
    assert [i.id for i in images] == [image_id]
    image = client.images.get("py:1")
    assert image.tags == ["py:1"] and image.attrs["Os"] == "linux"
    assert image.tag("py", "2") is True
    assert sorted(client.images.get(image_id).tags) == ["py:1", "py:2"]
    client.images.remove("py:2")
    assert client.images.get(image_id).tags == ["py:1"]
    import docker.errors

    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope:1")
    client.images.remove(image_id)
    assert client.images.list() == []


# Bad input --------------------------------------------------------------------


def raw_tar(entries):
    """A tar whose names and link targets are written exactly as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for kind, name, target, data in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = target
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = target
                tar.addfile(info)
    return buf.getvalue()


def test_non_tar_and_truncated_imports_leave_nothing(daemon, busybox_tar):
    before = store_files(daemon)
    for data in (b"this is not a tar archive at all\n" * 100, b"", busybox_tar.read_bytes()[:700_000]):
        proc = daemon.docker("import", "-", "broken:1", input=data, check=False)
        assert proc.returncode != 0
        assert proc.err.strip()
        assert store_files(daemon) == before
    proc = daemon.berth("import", "-", "broken:2", input=b"garbage" * 1000, check=False)
    assert proc.returncode == 1 and "Error response from daemon" in proc.err
    assert store_files(daemon) == before
    assert not list((daemon.data_root / "tmp").iterdir())


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink-dir", "symlink-climb", "hardlink-out", "hardlink-via-symlink"])
def test_hostile_tars_write_nothing_outside(daemon, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    entries = {
        "dotdot": [("file", "../../../../../../" + str(outside).lstrip("/") + "/evil", None, b"x")],
        "absolute": [("file", str(outside) + "/evil", None, b"x")],
        "symlink-dir": [("symlink", "link", str(outside), None), ("file", "link/evil", None, b"x")],
        "symlink-climb": [("symlink", "up", "../../../../../../../../..", None),
                          ("file", "up" + str(outside) + "/evil", None, b"x")],
        "hardlink-out": [("hardlink", "steal", str(outside / "secret"), None)],
        "hardlink-via-symlink": [("symlink", "out", str(outside), None), ("hardlink", "steal", "out/secret", None)],
    }[case]
    daemon.docker("import", "-", f"hostile:{case}", input=raw_tar(entries), check=False)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "s"
    assert os.stat(outside / "secret").st_nlink == 1


def test_kill9_during_import_leaves_a_clean_store(tmp_root, busybox_tar):
    d = Daemon(tmp_root).start()
    before = store_files(d)
    # Feed the import slowly through a pipe so the daemon is mid-layer when it dies.
    proc = subprocess.Popen(["docker", "import", "-", "half:1"], env=d.env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = busybox_tar.read_bytes()
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    deadline = time.time() + 10
    while time.time() < deadline and not any((d.data_root / "layers").glob(".tmp-*")):
        time.sleep(0.02)
    d.kill9()
    proc.kill()
    proc.wait()
    d2 = Daemon(tmp_root).start()
    try:
        assert d2.docker("images", "-q").out.strip() == ""
        assert store_files(d2) == before
        assert not list((d2.data_root / "layers").glob(".tmp-*"))
        assert not list((d2.data_root / "blobs" / "sha256").glob(".tmp-*"))
        # And the store works afterwards.
        d2.docker("import", str(busybox_tar), "whole:1")
        assert d2.docker("images", "--format", "{{.Repository}}").out.split() == ["whole"]
    finally:
        assert d2.stop() == 0
