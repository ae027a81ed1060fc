"""A real registry for tests: Debian's ``docker-registry`` on 127.0.0.1, random port.

Three auth modes, so the Docker Hub flow is proven without the internet:

* ``anonymous``: no auth at all;
* ``basic``: htpasswd (bcrypt, made with apache2-utils' ``htpasswd -B``);
* ``token``: the registry trusts a self-signed certificate, and :class:`TokenServer`
  (an ``http.server`` in a thread) issues RS256 JWTs signed with a throwaway key through
  the ``openssl`` command line, the way auth.docker.io does: anonymous tokens get ``pull``,
  logged-in users get what they ask for; OAuth ``POST`` with refresh tokens too.

Plus ``tls`` (anonymous over HTTPS with a self-signed certificate) for the insecure/CA paths.

Also here: builders for offline test images (tar layers from a directory or a dict,
gzip / zstd / zstd:chunked / uncompressed; OCI or Docker media types; configs, manifests,
indexes; OCI layout dirs for skopeo) and a small cutting proxy for fault tests.

The fixtures that start these servers are in tests/conftest.py (``registry``,
``basic_registry``, ``token_registry``, ``tls_registry``, ...).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD_BIN = shutil.which("htpasswd")
OPENSSL_BIN = shutil.which("openssl")
SKOPEO_BIN = shutil.which("skopeo")

SERVICE = "nutshell-test-registry"
ISSUER = "nutshell-test-issuer"
USERS = {"alice": "wonderland", "bob": "builder"}

needs_registry = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN),
                                    reason="docker-registry is not installed")
needs_skopeo = pytest.mark.skipif(SKOPEO_BIN is None, reason="skopeo is not installed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- keys and certificates (openssl CLI: no Python crypto dependency) ------------------
def make_cert(workdir: str, cn: str = "127.0.0.1") -> tuple[str, str]:
    """A self-signed RSA certificate + key (also valid for 127.0.0.1 and localhost)."""
    key = os.path.join(workdir, "key.pem")
    cert = os.path.join(workdir, "cert.pem")
    subprocess.run([OPENSSL_BIN, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    return cert, key


def pem_to_der(pem_path: str) -> bytes:
    with open(pem_path) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("-----")]
    return base64.b64decode("".join(lines))


class JWTSigner:
    """RS256 JWTs with an ``x5c`` header the registry verifies against its root bundle."""

    def __init__(self, workdir: str):
        self.cert, self.key = make_cert(workdir, "nutshell-test-token-signer")
        self.x5c = base64.b64encode(pem_to_der(self.cert)).decode()

    def sign(self, claims: dict) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = subprocess.run([OPENSSL_BIN, "dgst", "-sha256", "-sign", self.key],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return signing_input + "." + _b64url(sig)


# --- the token server ------------------------------------------------------------------
class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and sends small writes at once."""

    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass


class LoopbackHTTP:
    """An ``http.server`` on 127.0.0.1 (a free port) served by a daemon thread."""

    _server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _serve(self, handler, name: str):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name=name)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class TokenServer(LoopbackHTTP):
    """A tiny distribution token server (GET with Basic or anonymous; OAuth POST)."""

    def __init__(self, workdir: str, users: dict[str, str] | None = None,
                 anonymous_actions: tuple[str, ...] = ("pull",), lifetime: int = 300,
                 token_field: str = "both"):
        self.workdir = workdir
        self.users = dict(users or USERS)
        self.anonymous_actions = anonymous_actions
        self.lifetime = lifetime
        self.token_field = token_field
        self.signer = JWTSigner(workdir)
        self.requests: list[dict] = []
        self.refresh_tokens: dict[str, str] = {}
        self.fail_next: list[int] = []     # statuses to answer with before working again
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def grant(self, user: str | None, scopes: list[str]) -> list[dict]:
        access = []
        for sc in scopes:
            for one in sc.split(" "):
                typ, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                if typ != "repository" or not name:
                    continue
                wanted = [a for a in actions.split(",") if a]
                allowed = wanted if user else [a for a in wanted if a in self.anonymous_actions]
                if allowed:
                    access.append({"type": typ, "name": name, "actions": allowed})
        return access

    def issue(self, user: str | None, scopes: list[str], service: str) -> dict:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": service, "exp": now + self.lifetime,
                  "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex,
                  "access": self.grant(user, scopes)}
        tok = self.signer.sign(claims)
        out = {"expires_in": self.lifetime,
               "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
        if self.token_field in ("both", "token"):
            out["token"] = tok
        if self.token_field in ("both", "access_token"):
            out["access_token"] = tok
        return out

    def start(self) -> TokenServer:
        owner = self

        class Handler(QuietHandler):
            def _json(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _basic_user(self):
                h = self.headers.get("Authorization", "")
                if not h.startswith("Basic "):
                    return None, False
                try:
                    user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                except ValueError:
                    return None, True
                return (user if owner.users.get(user) == pw else None), True

            def do_GET(self):
                parts = urlsplit(self.path)
                q = parse_qs(parts.query)
                user, had_creds = self._basic_user()
                rec = {"method": "GET", "scopes": q.get("scope", []), "service": q.get("service", [""])[0],
                       "account": q.get("account", [""])[0], "user": user, "creds": had_creds}
                owner.requests.append(rec)
                if owner.fail_next:
                    self._json(owner.fail_next.pop(0), {"details": "injected failure"})
                    return
                if parts.path != "/token":
                    self._json(404, {"details": "not found"})
                    return
                if had_creds and user is None:
                    self._json(401, {"details": "incorrect username or password"})
                    return
                self._json(200, owner.issue(user, rec["scopes"], rec["service"]))

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(n).decode())
                grant = form.get("grant_type", [""])[0]
                scopes = " ".join(form.get("scope", [])).split()
                service = form.get("service", [""])[0]
                rec = {"method": "POST", "grant_type": grant, "scopes": scopes, "service": service}
                owner.requests.append(rec)
                user = None
                if grant == "password":
                    u, p = form.get("username", [""])[0], form.get("password", [""])[0]
                    if owner.users.get(u) != p:
                        self._json(401, {"details": "incorrect username or password"})
                        return
                    user = u
                elif grant == "refresh_token":
                    user = owner.refresh_tokens.get(form.get("refresh_token", [""])[0])
                    if user is None:
                        self._json(401, {"details": "invalid refresh token"})
                        return
                else:
                    self._json(400, {"details": "unsupported grant_type"})
                    return
                rec["user"] = user
                out = owner.issue(user, scopes, service)
                if form.get("access_type", [""])[0] == "offline":
                    rt = "rt-" + uuid.uuid4().hex
                    owner.refresh_tokens[rt] = user
                    out["refresh_token"] = rt
                self._json(200, out)

        return self._serve(Handler, "test-token-server")


# --- the registry ----------------------------------------------------------------------
def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, so no registry outlives a crash."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class RegistryServer:
    """``docker-registry serve`` on 127.0.0.1:<random>, storage in a temp dir."""

    def __init__(self, mode: str = "anonymous", workdir: str | None = None,
                 users: dict[str, str] | None = None, anonymous_actions=("pull",)):
        assert mode in ("anonymous", "basic", "token", "tls")
        self.mode = mode
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="nutshell-registry-")
        self.storage = os.path.join(self.workdir, "data")
        self.users = dict(users or USERS)
        self.anonymous_actions = anonymous_actions
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.token_server: TokenServer | None = None
        self.cert: str | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.mode == "tls" else "http"

    def _config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "validation:",            # accept foreign layers' URLs (they are never fetched)
            "  manifests:",
            "    urls:",
            "      allow:",
            "        - ^https?://",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {uuid.uuid4().hex}",
        ]
        if self.mode == "tls":
            lines += ["  tls:", f"    certificate: {self.cert}", f"    key: {self.tls_key}"]
        if self.mode == "basic":
            htp = os.path.join(self.workdir, "htpasswd")
            with open(htp, "w") as f:
                for user, pw in self.users.items():
                    line = subprocess.run([HTPASSWD_BIN, "-Bbn", user, pw], check=True,
                                          capture_output=True, text=True).stdout.strip()
                    f.write(line + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: nutshell-test", f"    path: {htp}"]
        if self.mode == "token":
            ts = self.token_server
            lines += ["auth:", "  token:", f"    realm: {ts.realm}", f"    service: {SERVICE}",
                      f"    issuer: {ISSUER}", f"    rootcertbundle: {ts.signer.cert}"]
        return "\n".join(lines) + "\n"

    def start(self) -> RegistryServer:
        os.makedirs(self.storage, exist_ok=True)
        if self.mode == "token":
            tdir = os.path.join(self.workdir, "token")
            os.makedirs(tdir, exist_ok=True)
            self.token_server = TokenServer(tdir, self.users, self.anonymous_actions).start()
        if self.mode == "tls":
            tdir = os.path.join(self.workdir, "tls")
            os.makedirs(tdir, exist_ok=True)
            self.cert, self.tls_key = make_cert(tdir)
        last_err = ""
        for _attempt in range(5):
            self.port = free_port()
            cfg = os.path.join(self.workdir, "config.yml")
            with open(cfg, "w") as f:
                f.write(self._config())
            self.log_path = os.path.join(self.workdir, "registry.log")
            log = open(self.log_path, "ab")
            env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                         preexec_fn=_die_with_parent)
            log.close()
            if self._wait_ready():
                return self
            last_err = self._log_tail()
            self._kill()
        raise RuntimeError(f"docker-registry did not start: {last_err}")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _kill(self) -> None:
        # storage is a throwaway temp dir: no graceful drain needed (SIGTERM waits ~1 s)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        self._kill()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- helpers for tests -------------------------------------------------------------
    def blob_data_path(self, digest: str) -> str:
        hexd = digest.partition(":")[2]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256",
                            hexd[:2], hexd, "data")

    def ref(self, repo: str, tag: str = "latest") -> str:
        return f"{self.host}/{repo}:{tag}"

    def creds(self, user: str = "alice") -> str:
        return f"{user}:{self.users[user]}"


def unique_repo(prefix: str = "t") -> str:
    return f"nutshell-test/{prefix}-{uuid.uuid4().hex[:10]}"


# --- offline test images -----------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "zstd:chunked"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_from_dict(files: dict[str, bytes | str | None]) -> bytes:
    """A layer tar from ``{"path": content}``; ``None`` content makes a directory,
    a ``"->target"`` string a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(files):
            content = files[path]
            ti = tarfile.TarInfo(path)
            ti.mtime = 0
            if content is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(content, str) and content.startswith("->"):
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, content[2:], 0o777
                tf.addfile(ti)
            else:
                data = content.encode() if isinstance(content, str) else content
                ti.size, ti.mode = len(data), 0o644
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def tar_from_dir(root: str) -> bytes:
    """A deterministic layer tar of a directory (sorted, mtime 0, owners kept)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arc = os.path.relpath(full, root)
                ti = tf.gettarinfo(full, arc)
                ti.mtime = 0
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    if kind == "zstd:chunked":
        # several independent zstd frames back to back, plus a skippable frame, like
        # zstd:chunked (whose TOC lives in a skippable frame at the end)
        import zstandard

        c = zstandard.ZstdCompressor(level=3)
        step = max(1, len(data) // 4)
        frames = [c.compress(data[i:i + step]) for i in range(0, len(data), step)]
        skippable = (0x184D2A50).to_bytes(4, "little") + (8).to_bytes(4, "little") + b"TOC-test"
        return b"".join(frames) + skippable
    if kind == "none":
        return data
    raise ValueError(kind)


@dataclass
class TestImage:
    """An image built in memory: blobs by digest, config and manifest bytes."""

    manifest: bytes
    config: bytes
    layers: list[dict]                       # descriptors
    blobs: dict[str, bytes] = field(default_factory=dict)
    media_type: str = OCI_MANIFEST
    platform: dict = field(default_factory=dict)

    __test__ = False  # not a pytest class

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    def descriptor(self) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}
        if self.platform:
            d["platform"] = self.platform
        return d


def make_image(layer_tars: list[bytes], *, arch: str = "amd64", os_: str = "linux",
               variant: str = "", compression: str | list[str] = "gzip", media: str = "oci",
               cmd: list[str] | None = None, env: list[str] | None = None,
               labels: dict | None = None) -> TestImage:
    comps = compression if isinstance(compression, list) else [compression] * len(layer_tars)
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for tar, comp in zip(layer_tars, comps):
        blob = compress(tar, comp)
        d = sha256(blob)
        blobs[d] = blob
        layers.append({"mediaType": LAYER_TYPES[(media, comp)], "digest": d, "size": len(blob)})
        diff_ids.append(sha256(tar))
    cfg = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": os_,
        "config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": cmd or ["/bin/sh"], "Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"test layer {i}"}
                    for i in range(len(diff_ids))],
    }
    if variant:
        cfg["variant"] = variant
    config = json.dumps(cfg, sort_keys=True).encode()
    blobs[sha256(config)] = config
    mt = OCI_MANIFEST if media == "oci" else DOCKER_MANIFEST
    man = {"schemaVersion": 2, "mediaType": mt,
           "config": {"mediaType": OCI_CONFIG if media == "oci" else DOCKER_CONFIG,
                      "digest": sha256(config), "size": len(config)},
           "layers": layers}
    platform = {"architecture": arch, "os": os_}
    if variant:
        platform["variant"] = variant
    return TestImage(json.dumps(man, indent=2).encode(), config, layers, blobs, mt, platform)


def make_index(images: list[TestImage], media: str = "oci", extra: list[dict] | None = None) -> bytes:
    mt = OCI_INDEX if media == "oci" else DOCKER_LIST
    return json.dumps({"schemaVersion": 2, "mediaType": mt,
                       "manifests": [im.descriptor() for im in images] + (extra or [])},
                      indent=2).encode()


def write_oci_layout(dest: str, images: list[TestImage], tag: str = "latest",
                     index: bytes | None = None) -> str:
    """An OCI image layout skopeo can copy from: ``oci:<dest>:<tag>``."""
    bdir = os.path.join(dest, "blobs", "sha256")
    os.makedirs(bdir, exist_ok=True)

    def put(data: bytes) -> str:
        d = sha256(data)
        with open(os.path.join(bdir, d.partition(":")[2]), "wb") as f:
            f.write(data)
        return d

    for im in images:
        for data in im.blobs.values():
            put(data)
        put(im.manifest)
    if index is not None:
        d = put(index)
        top = {"mediaType": json.loads(index).get("mediaType", OCI_INDEX), "digest": d,
               "size": len(index)}
    else:
        top = {"mediaType": images[0].media_type, "digest": images[0].digest,
               "size": len(images[0].manifest)}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(dest, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    return dest


def write_dir_layout(dest: str, images: list[TestImage], index: bytes | None = None) -> str:
    """skopeo's ``dir:`` layout (keeps Docker media types, which ``oci:`` does not list)."""
    os.makedirs(dest, exist_ok=True)
    for im in images:
        for d, data in im.blobs.items():
            with open(os.path.join(dest, d.partition(":")[2]), "wb") as f:
                f.write(data)
    if index is not None:
        with open(os.path.join(dest, "manifest.json"), "wb") as f:
            f.write(index)
        for im in images:
            with open(os.path.join(dest, im.digest.partition(":")[2] + ".manifest.json"), "wb") as f:
                f.write(im.manifest)
    else:
        with open(os.path.join(dest, "manifest.json"), "wb") as f:
            f.write(images[0].manifest)
    with open(os.path.join(dest, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return dest


def skopeo_copy(src: str, dest: str, *, src_creds: str | None = None,
                dest_creds: str | None = None, all_: bool = False, extra: list[str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [SKOPEO_BIN, "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
           "--dest-tls-verify=false", "--preserve-digests"]
    if all_:
        cmd.append("--all")
    if src_creds:
        cmd += ["--src-creds", src_creds]
    if dest_creds:
        cmd += ["--dest-creds", dest_creds]
    cmd += (extra or []) + [src, dest]
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=True)


def push_with_skopeo(tmpdir: str, server: RegistryServer, repo: str, tag: str,
                     images: list[TestImage], index: bytes | None = None,
                     creds: str | None = None) -> str:
    """Push test image(s) to ``server`` through skopeo (an independent client)."""
    layout = tempfile.mkdtemp(prefix="layout-", dir=tmpdir)
    if any(im.media_type != OCI_MANIFEST for im in images):
        write_dir_layout(layout, images, index)
        src = f"dir:{layout}"
    else:
        write_oci_layout(layout, images, tag, index)
        src = f"oci:{layout}:{tag}"
    skopeo_copy(src, f"docker://{server.host}/{repo}:{tag}", dest_creds=creds,
                all_=index is not None)
    shutil.rmtree(layout, ignore_errors=True)
    return f"{server.host}/{repo}:{tag}"


def busybox_layer(rootfs: str) -> bytes:
    return tar_from_dir(rootfs)


# --- a proxy that breaks things --------------------------------------------------------
class CuttingProxy(LoopbackHTTP):
    """An HTTP proxy in front of a registry that can cut blob bodies mid-stream.

    ``cut_after``: bytes of a blob body to pass before the connection is dropped;
    ``cuts``: how many blob responses to cut (then it behaves); ``strip_range``: drop the
    client's ``Range`` header (so resumes get a 200 and must restart); ``rst``: reset
    (ECONNRESET) instead of a clean close. ``fail_status``: answer N requests with a code.
    """

    def __init__(self, upstream: RegistryServer, cut_after: int = 1000, cuts: int = 1,
                 strip_range: bool = False, rst: bool = False, throttle: float = 0.0,
                 trickle: float = 0.0, trickles: int = 0, trickle_over: int = 0):
        self.upstream = upstream
        self.cut_after = cut_after
        self.cuts = cuts
        self.strip_range = strip_range
        self.rst = rst
        self.throttle = throttle          # seconds to sleep per 64 KiB of blob body
        # a stalling registry: the next ``trickles`` blob bodies come one byte per ``trickle`` s
        self.trickle = trickle
        self.trickles = trickles
        self.trickle_over = trickle_over  # only bodies longer than this trickle
        self.blob_gets: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.blob_bytes = 0
        self.redirect_blobs: str | None = None  # base URL: answer blob GETs with a 307 there
        self.fail_status: list[tuple[str, int, dict]] = []   # (path substring, status, headers)
        self._server = None

    def start(self) -> CuttingProxy:
        import http.client

        owner = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self):
                owner.requests.append((self.command, self.path))
                for i, (sub, status, hdrs) in enumerate(list(owner.fail_status)):
                    if sub in self.path:
                        owner.fail_status.pop(i)
                        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                        self.send_response(status)
                        for k, v in hdrs.items():
                            self.send_header(k, v)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection",)}
                is_blob = "/blobs/sha256:" in self.path and self.command == "GET"
                if is_blob:
                    owner.blob_gets.append({"path": self.path, "range": self.headers.get("Range")})
                    if owner.redirect_blobs:
                        digest = self.path.rsplit("/", 1)[1]
                        self.send_response(307)
                        self.send_header("Location", f"{owner.redirect_blobs}/cdn/{digest}?sig=test")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if owner.strip_range:
                        headers.pop("Range", None)
                conn = http.client.HTTPConnection(owner.upstream.host, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in ("connection", "transfer-encoding"):
                        continue
                    self.send_header(k, v)
                self.send_header("Connection", "close" if is_blob else "keep-alive")
                self.end_headers()
                length = int(resp.getheader("Content-Length") or 0)
                cut = is_blob and resp.status in (200, 206) and owner.cuts > 0 \
                    and length > owner.cut_after
                if cut:
                    owner.cuts -= 1
                    sent = 0
                    while sent < owner.cut_after:
                        chunk = resp.read(min(65536, owner.cut_after - sent))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        sent += len(chunk)
                    self.wfile.flush()
                    conn.close()
                    if owner.rst:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR) if not owner.rst else None
                    except OSError:
                        pass
                    return
                if is_blob and owner.trickles > 0 and resp.status in (200, 206) \
                        and self.command != "HEAD" and length > owner.trickle_over:
                    owner.trickles -= 1
                    try:
                        while byte := resp.read(1):
                            self.wfile.write(byte)
                            self.wfile.flush()
                            time.sleep(owner.trickle)
                    except OSError:
                        pass  # the client gave up on us
                    conn.close()
                    self.close_connection = True
                    return
                if self.command != "HEAD":
                    while True:
                        chunk = resp.read(65536)
                        if not chunk:
                            break
                        try:
                            self.wfile.write(chunk)
                        except OSError:
                            break
                        if is_blob:
                            owner.blob_bytes += len(chunk)
                            if owner.throttle:
                                time.sleep(owner.throttle)
                conn.close()
                if is_blob:
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        return self._serve(Handler, "cutting-proxy")


# --- a scripted HTTP server for unit tests ---------------------------------------------
@dataclass
class Req:
    method: str
    path: str
    headers: dict
    body: bytes


class ScriptedServer(LoopbackHTTP):
    """An HTTP/1.1 server on 127.0.0.1 that answers with ``handler(req)``.

    ``handler`` returns ``(status, headers: dict, body: bytes)``; every request is kept in
    ``requests``. Keep-alive is on, so connection reuse can be observed via ``connections``.
    """

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[Req] = []
        self.connections = 0
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> ScriptedServer:
        owner = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                owner.connections += 1

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Req(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                owner.requests.append(req)
                status, headers, out = owner.handler(req)
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if not any(k.lower() == "content-length" for k in (headers or {})):
                    self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        return self._serve(Handler, "scripted-http")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- engines for registry tests -----------------------------------------------------------
def fast_retry():
    from core.registry.client import RetryPolicy

    return RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=1.0,
                       resume_delay=0.01, max_resumes=3, layer_attempts=2)


def new_engine(root: str):
    from core.engine import Engine

    e = Engine(root)
    e.registry_retry = fast_retry()
    return e


def login_file(docker_config_dir: str, host: str, user: str, password: str) -> None:
    """Write credentials the way ``docker login`` does (auths, base64)."""
    path = os.path.join(docker_config_dir, "config.json")
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data.setdefault("auths", {})[host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    with open(path, "w") as f:
        json.dump(data, f)


def push_raw(host: str, repo: str, tag: str, blobs: dict[str, bytes], manifest: bytes,
             media_type: str) -> None:
    """Upload blobs and a manifest as they are (for documents skopeo would not push as-is)."""
    import tempfile as _tf

    from core.registry.client import RegistryClient
    from core.registry.hosts import RegistryConfig

    c = RegistryClient(host, config=RegistryConfig(config_dir=_tf.gettempdir()), credential=None)
    try:
        for d, data in blobs.items():
            _mounted, loc = c.start_upload(repo)
            c.upload_monolithic(repo, loc, data, len(data), d)
        c.put_manifest(repo, tag, manifest, media_type)
    finally:
        c.close()
