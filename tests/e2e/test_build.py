"""The classic builder through the docker CLI (DOCKER_BUILDKIT=0), docker-py and our
CLI: instructions, .dockerignore, ADD of archives and URLs, multistage, the cache,
and the errors Docker gives."""

import http.server
import io
import json
import os
import tarfile
import threading

import pytest


@pytest.fixture
def bb(daemon, busybox_tar):
    daemon.docker("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox")
    return daemon


def classic(d, *args, check=True, cwd=None):
    env = d.env()
    env["DOCKER_BUILDKIT"] = "0"
    from conftest import DOCKER, run
    import subprocess
    proc = subprocess.run([DOCKER, *args], env=env, capture_output=True, cwd=cwd, timeout=300)
    proc.out = proc.stdout.decode(errors="replace")
    proc.err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {args} exited {proc.returncode}\n{proc.out}\n{proc.err}")
    return proc


@pytest.fixture
def served():
    """A loopback HTTP server for ADD <url>."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"downloaded-content\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


DOCKERFILE = """# a comment
ARG BASE=busybox
FROM ${BASE} AS base
ARG GREETING=hello
ENV APP_HOME=/app \\
    MODE=test
LABEL org.example.team="berth" version=1
WORKDIR $APP_HOME
COPY src/ ./src/
COPY top.txt .
ADD bundle.tar.gz /opt/
ADD bundle.tar.bz2 /opt2/
ADD {url}/file.txt /downloads/
RUN echo "${GREETING:-none} from RUN" > /greeting && \\
    ls /app/src > /listing
EXPOSE 8080/tcp
VOLUME /data
USER nobody
CMD ["cat", "/greeting"]

FROM busybox AS unused
RUN exit 1

FROM busybox
COPY --from=base /greeting /copied-greeting
COPY --from=0 /listing /copied-listing
CMD ["cat", "/copied-greeting"]
"""


def make_context(root, url):
    ctx = root / "ctx"
    (ctx / "src" / "sub").mkdir(parents=True)
    (ctx / "src" / "a.txt").write_text("A\n")
    (ctx / "src" / "sub" / "b.txt").write_text("B\n")
    (ctx / "src" / "secret.key").write_text("do not ship\n")
    (ctx / "top.txt").write_text("top\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("{url}", url))
    (ctx / ".dockerignore").write_text("# no keys\n**/*.key\n")
    for name, mode in (("bundle.tar.gz", "w:gz"), ("bundle.tar.bz2", "w:bz2")):
        with tarfile.open(ctx / name, mode) as t:
            data = b"from the bundle\n"
            info = tarfile.TarInfo("bundled/inside.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return ctx


def test_classic_build_through_the_docker_cli(bb, served):
    ctx = make_context(bb.root, served)
    out = classic(bb, "build", "-t", "built:1", "--build-arg", "GREETING=hi", "--target", "base", str(ctx)).out
    assert "Step 1/" in out and "Successfully built" in out and "Successfully tagged built:1" in out
    assert " ---> Running in " in out
    image = json.loads(bb.docker("image", "inspect", "built:1").out)[0]
    config = image["Config"]
    assert config["WorkingDir"] == "/app"
    assert "APP_HOME=/app" in config["Env"] and "MODE=test" in config["Env"]
    assert config["Labels"] == {"org.example.team": "berth", "version": "1"}
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["User"] == "nobody"
    assert config["Cmd"] == ["cat", "/greeting"]
    check = ("cat /greeting; cat /app/src/a.txt /app/src/sub/b.txt /app/top.txt; "
             "cat /opt/bundled/inside.txt /downloads/file.txt /opt2/bundled/inside.txt; ls /app/src")
    shown = bb.docker("run", "--rm", "-u", "0", "built:1", "sh", "-c", check).out
    assert "hi from RUN" in shown
    assert "A\nB\ntop\nfrom the bundle\ndownloaded-content\nfrom the bundle\n" in shown
    assert "secret.key" not in shown

    # Everything again: every step from the cache.
    again = classic(bb, "build", "-t", "built:1", "--build-arg", "GREETING=hi", "--target", "base", str(ctx)).out
    assert again.count(" ---> Using cache") >= 10, again
    assert json.loads(bb.docker("image", "inspect", "built:1").out)[0]["Id"] == image["Id"]
    # A changed build arg reruns the RUN; --no-cache reruns all.
    changed = classic(bb, "build", "--build-arg", "GREETING=bye", "--target", "base", str(ctx)).out
    assert " ---> Running in " in changed
    fresh = classic(bb, "build", "--no-cache", "--target", "base", str(ctx)).out
    assert "Using cache" not in fresh

    # The last stage: a multistage COPY --from by name and by index; `unused` skipped.
    final = classic(bb, "build", "-t", "final:1", str(ctx)).out
    assert "exit 1" not in final
    assert bb.docker("run", "--rm", "final:1").out == "hello from RUN\n"
    assert "a.txt" in bb.docker("run", "--rm", "final:1", "cat", "/copied-listing").out


def test_build_errors_are_dockers(bb, tmp_path):
    ctx = tmp_path / "bad"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN true\nFROOM x\n")
    r = classic(bb, "build", str(ctx), check=False)
    assert r.returncode != 0 and "line 3" in r.err and "unknown instruction" in r.err.lower(), r.err

    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo about to fail; exit 3\n")
    r = classic(bb, "build", str(ctx), check=False)
    assert r.returncode != 0
    assert "The command '/bin/sh -c echo about to fail; exit 3' returned a non-zero code: 3" in r.err + r.out
    assert "about to fail" in r.out
    # Its intermediate container is gone.
    assert bb.docker("ps", "-aq").out.strip() == ""

    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY missing.txt /\n")
    r = classic(bb, "build", str(ctx), check=False)
    assert r.returncode != 0 and "missing.txt" in r.err + r.out

    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY ../outside /\n")
    r = classic(bb, "build", str(ctx), check=False)
    assert r.returncode != 0 and "outside the build context" in r.err + r.out

    status, _, body = bb.request("POST", "/build", b"this is not a tar", {"Content-Type": "application/x-tar"})
    assert status == 400 and b"tar" in body


def test_docker_py_and_our_cli_build(bb, tmp_path):
    ctx = tmp_path / "py"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo built-by-py > /py\nCMD [\"cat\", \"/py\"]\n")
    client = bb.client()
    image, logs = client.images.build(path=str(ctx), tag="py:1", rm=True)
    assert "py:1" in image.tags
    assert any("Successfully built" in l.get("stream", "") for l in logs)
    assert client.containers.run("py:1", remove=True) == b"built-by-py\n"
    out = bb.berth("build", "-t", "ours:1", str(ctx)).out
    assert "Successfully tagged ours:1" in out


def test_onbuild_triggers_run_in_the_child_build(bb, tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "Dockerfile").write_text("FROM busybox\nONBUILD RUN echo triggered > /t\n")
    classic(bb, "build", "-t", "onbuild-base:1", str(parent))
    assert json.loads(bb.docker("image", "inspect", "onbuild-base:1").out)[0]["Config"]["OnBuild"] == ["RUN echo triggered > /t"]
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM onbuild-base:1\nCMD [\"cat\", \"/t\"]\n")
    out = classic(bb, "build", "-t", "onbuild-child:1", str(child)).out
    assert "# Executing 1 build trigger" in out
    assert bb.docker("run", "--rm", "onbuild-child:1").out == "triggered\n"
    assert not json.loads(bb.docker("image", "inspect", "onbuild-child:1").out)[0]["Config"].get("OnBuild")
