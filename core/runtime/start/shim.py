"""The shim: one small monitor per container, outliving the command that started it.

boot.py's process C becomes the shim (``main(init_pid)``, no exec) right after it forked
the container's init (so the init is our child and we can wait for it), before the
start's request exists; tests run it on its own as ``python -I -S -c "...shim import
main; main()" init=<pid> id=----...``. Our fd 0 is the sync socket
to the init, which hands us our part once it has the request (``receive_request``): the
container's InitSpec (initspec.py, as a dict of its fields) in a memfd, and our fds. We
then write the container's id over the placeholder on our command line (``show_id``).
Only builtin or tiny modules are imported here (os, time, select, fcntl, _socket, marshal;
no enum, no json, no socket.py) so an idle container costs about one bare interpreter
(plus what C loaded for the PID namespace: ctypes, core.runtime.linux).

It:
  * learns from the init whether execve worked (end of file on the sync socket) or why
    it failed (``E<code> <msg>``), receives the PTY master the init allocated, and
    reports to the starting command on the ready pipe (``ok <pid>`` / ``err <code> <msg>``);
  * holds the PTY master (or the stdout/stderr pipes and the stdin pipe), writes the log
    as Docker json-file lines, and serves attach clients on a SOCK_SEQPACKET socket
    (the protocol: docs/runtime.md, "The attach protocol"; the client is attach.py);
  * when the init exits: drains the output, records exit code (128+signal), finish time
    and OOM kill in state.json, removes the container's cgroup, tears down its network,
    removes everything for ``--rm``, tells the clients the exit code, and exits;
  * writes the container's ``start``, ``die`` (and, for ``--rm``, ``destroy``) events to
    the store's journal (core/journal.py: os and time only, imported at the first event).

While the container runs this process does not fork: its children would land in the
container's PID namespace. After the init exited, the network teardown and the restart
helper fork once it has pointed its children back at its own PID namespace
(``linux.own_pid_namespace_for_children``). Everything else is plain system calls.
"""

import _socket
import fcntl
import os
import select
import sys
import time

CHUNK = 32767
CLIENT_QUEUE_MAX = 8 << 20
ZERO_TIME = "0001-01-01T00:00:00Z"
T_STDOUT, T_STDERR, T_EXIT, T_HELLO = 1, 2, 3, 4
T_STDIN, T_RESIZE, T_CLOSE_STDIN = 0, 5, 6
TIOCSWINSZ = 0x5414
POLLIN, POLLOUT, POLLERR, POLLHUP = select.POLLIN, select.POLLOUT, select.POLLERR, select.POLLHUP

# --- tiny JSON encoder (json imports re and enum: 2 MB and 20 ms we do not need) ----------
_ESC = {i: "\\u%04x" % i for i in range(32)}
_ESC.update({34: '\\"', 92: "\\\\", 10: "\\n", 13: "\\r", 9: "\\t", 8: "\\b", 12: "\\f"})


def jstr(s):
    return '"' + s.translate(_ESC) + '"'


def dumps(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return jstr(v)
    if isinstance(v, dict):
        return "{" + ", ".join(jstr(k) + ": " + dumps(x) for k, x in v.items()) + "}"
    return "[" + ", ".join(dumps(x) for x in v) + "]"


def rfc3339(ns=None):
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1000000000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def rmtree(path):
    try:
        entries = list(os.scandir(path))
    except NotADirectoryError:
        os.unlink(path)
        return
    except FileNotFoundError:
        return
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            rmtree(e.path)
        else:
            try:
                os.unlink(e.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class Client:
    __slots__ = ("sock", "fd", "queue", "queued")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.queue = []
        self.queued = 0


class Shim:
    def unindex_name(self):
        """--rm: our entry in containers/.names goes with us (as Records.unindex_name does,
        under the lock create claims names with; the entry is ours only if it holds our
        id)."""
        name = self.spec.get("name") or ""
        if not name or "/" in name or name.startswith("."):
            return
        containers = os.path.dirname(self.cdir)
        try:
            lock = os.open(os.path.join(containers, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = os.path.join(containers, ".names", name)
            with open(path) as f:
                if f.read().strip() == self.cid:
                    os.unlink(path)
        except OSError:
            pass
        finally:
            os.close(lock)

    def __init__(self, req):
        spec, fds = req["spec"], req["fds"]
        self.spec = spec           # the container's InitSpec, as initspec.py writes it
        self.pkg = req["pkg"]      # the directory that holds the core package
        self.cid = spec["cid"]
        self.cdir = spec["container_dir"]
        self.rundir = spec["run_dir"]
        self.tty = spec["tty"]
        self.stdin_open = spec["stdin_open"]
        self.auto_remove = spec["auto_remove"]
        self.rows = spec["rows"]
        self.cols = spec["cols"]
        self.init_pid = req["init"]
        self.init_start = start_time(self.init_pid)
        self.pidfd = os.pidfd_open(self.init_pid)
        self.sync = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fds["sync"])
        self.sync.setblocking(False)
        self.ready = fds["ready"]
        self.listen = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fds["listen"])
        self.listen.setblocking(False)
        self.log = os.open(os.path.join(self.cdir, self.cid + "-json.log"),
                           os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.partial = {T_STDOUT: b"", T_STDERR: b""}
        self.outputs = {}          # fd -> stream type
        self.master = None
        self.stdin_w = None        # fd we write container stdin to
        self.stdin_buf = b""
        self.stdin_closing = False
        self.clients = {}
        self.exec_error = None     # (code, message) from the init
        self.started_wall = 0.0    # when execve worked (for the restart back-off)
        self.exec_done = False
        self.exit_status = None
        self.state = None
        if not self.tty:  # with a TTY, the master arrives over the sync socket
            self.outputs[fds["out"]] = T_STDOUT
            self.outputs[fds["err"]] = T_STDERR
            if fds.get("in") is not None:
                self.stdin_w = fds["in"]
                os.set_blocking(self.stdin_w, False)
        for fd in self.outputs:
            os.set_blocking(fd, False)
        if fds.get("attach") is not None:
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fds["attach"])
            self.add_client(s)

    # --- clients ---------------------------------------------------------------------------
    def hello(self):
        return bytes([T_HELLO]) + dumps({"tty": self.tty, "stdin": self.stdin_open,
                                         "rows": self.rows, "cols": self.cols}).encode()

    def add_client(self, sock):
        sock.setblocking(False)
        c = Client(sock)
        self.clients[c.fd] = c
        self.send(c, self.hello())

    def drop_client(self, c):
        self.clients.pop(c.fd, None)
        try:
            c.sock.close()
        except OSError:
            pass

    def send(self, c, packet):
        if c.queue:
            c.queue.append(packet)
            c.queued += len(packet)
            if c.queued > CLIENT_QUEUE_MAX:
                self.drop_client(c)
            return
        try:
            c.sock.send(packet)
        except BlockingIOError:
            c.queue.append(packet)
            c.queued += len(packet)
        except OSError:
            self.drop_client(c)

    def flush_client(self, c):
        while c.queue:
            try:
                c.sock.send(c.queue[0])
            except BlockingIOError:
                return
            except OSError:
                self.drop_client(c)
                return
            c.queued -= len(c.queue.pop(0))

    def broadcast(self, packet):
        for c in list(self.clients.values()):
            self.send(c, packet)

    def client_input(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            # the client closed with output of ours unread (a one-shot resize during the
            # container's first output): the kernel reports that once, before the packets
            # the client sent; take the next one, EOF follows
            try:
                data = c.sock.recv(65536, _socket.MSG_DONTWAIT)
            except OSError:
                data = b""
        except OSError:
            data = b""
        if not data:
            self.drop_client(c)
            return
        kind, payload = data[0], data[1:]
        if kind == T_STDIN:
            if self.stdin_open and not self.stdin_closing:
                self.stdin_buf += payload
                self.write_stdin()
        elif kind == T_RESIZE:
            try:
                r, col = payload.split()
                self.rows, self.cols = int(r), int(col)
            except ValueError:
                return
            self.apply_size()
        elif kind == T_CLOSE_STDIN:
            if not self.tty:
                self.stdin_closing = True
                self.write_stdin()

    def apply_size(self):
        if self.master is not None:
            ws = (self.rows.to_bytes(2, sys.byteorder) + self.cols.to_bytes(2, sys.byteorder)
                  + bytes(4))
            try:
                fcntl.ioctl(self.master, TIOCSWINSZ, ws)
            except OSError:
                pass

    def write_stdin(self):
        fd = self.master if self.tty else self.stdin_w
        if fd is None:
            if not self.tty:
                self.stdin_buf = b""
            return
        while self.stdin_buf:
            try:
                n = os.write(fd, self.stdin_buf[:65536])
            except BlockingIOError:
                return
            except OSError:
                self.stdin_buf = b""
                break
            self.stdin_buf = self.stdin_buf[n:]
        if self.stdin_closing and not self.tty and self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    # --- output and log --------------------------------------------------------------------
    def read_output(self, fd):
        kind = self.outputs[fd]
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return True
        except OSError:       # EIO: every slave of the PTY is closed
            data = b""
        if not data:
            self.close_output(fd)
            return False
        self.write_log(kind, data)
        self.broadcast(bytes([kind]) + data)
        return True

    def close_output(self, fd):
        kind = self.outputs.pop(fd, None)
        if kind is not None:
            self.flush_log(kind)
        if fd == self.master:
            # keep the master open until the end: the fd number must not be reused
            return
        os.close(fd)

    def write_log(self, kind, data):
        buf = self.partial[kind] + data
        lines = buf.split(b"\n")
        rest = lines.pop()
        out = []
        stream = "stdout" if kind == T_STDOUT else "stderr"
        now = rfc3339()
        for line in lines:
            out.append('{"log":%s,"stream":"%s","time":"%s"}\n'
                       % (jstr(line.decode("utf-8", "replace") + "\n"), stream, now))
        while len(rest) >= 16384:  # Docker splits long lines at 16 KiB
            piece, rest = rest[:16384], rest[16384:]
            out.append('{"log":%s,"stream":"%s","time":"%s"}\n'
                       % (jstr(piece.decode("utf-8", "replace")), stream, now))
        self.partial[kind] = rest
        if out:
            try:
                os.write(self.log, "".join(out).encode())
            except OSError:
                pass

    def flush_log(self, kind):
        rest = self.partial[kind]
        if rest:
            self.partial[kind] = b""
            stream = "stdout" if kind == T_STDOUT else "stderr"
            line = '{"log":%s,"stream":"%s","time":"%s"}\n' % (
                jstr(rest.decode("utf-8", "replace")), stream, rfc3339())
            try:
                os.write(self.log, line.encode())
            except OSError:
                pass

    # --- the init's reports ----------------------------------------------------------------
    def read_sync(self):
        while True:
            try:
                data, anc, _flags, _addr = self.sync.recvmsg(8192, _socket.CMSG_SPACE(4))
            except BlockingIOError:
                return
            except OSError:
                data, anc = b"", []
            for level, typ, payload in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    fds = [int.from_bytes(payload[i:i + 4], sys.byteorder)
                           for i in range(0, len(payload) - len(payload) % 4, 4)]
                    if data[:1] == b"P" and fds:
                        self.master = fds[0]
                        os.set_blocking(self.master, False)
                        if self.rows and self.cols:     # a resize that came before the PTY
                            self.apply_size()
                        self.outputs[self.master] = T_STDOUT
                        for extra in fds[1:]:
                            os.close(extra)
                    else:
                        for fd in fds:
                            os.close(fd)
            if data[:1] == b"E":
                code, _, msg = data[1:].decode("utf-8", "replace").partition(" ")
                try:
                    self.exec_error = (int(code), msg)
                except ValueError:
                    self.exec_error = (125, msg)
            elif not data:
                self.sync.close()
                self.sync = None
                self.exec_done = True
                if self.exec_error is None:
                    self.mark_running()
                return

    def event(self, action, **extra):
        """Record a container event in the store's journal (core/journal.py, imported on
        the first event: it needs only os and time); never fails the shim."""
        try:
            from ... import journal

            attrs = dict(self.spec.get("event_attributes") or {})
            attrs.update(extra)
            journal.record(self.spec["state_root"], "container", action, self.cid, attrs)
        except Exception:  # noqa: BLE001, S110 - an event is never worth the container
            pass

    def volume_events(self, action):
        try:
            from ... import journal

            journal.volume_mounts(self.spec["state_root"], self.cid, self.spec["mounts"], action)
        except Exception:  # noqa: BLE001, S110 - an event is never worth the container
            pass

    def volume_event(self, action, name, attrs):
        try:
            from ... import journal

            journal.record(self.spec["state_root"], "volume", action, name, attrs)
        except Exception:  # noqa: BLE001, S110
            pass

    def mark_running(self):
        self.started_wall = time.time()
        self.event("start")  # before the starter hears "ok": start comes before any die
        self.state = {
            "Status": "running", "Running": True, "Paused": False, "Restarting": False,
            "OOMKilled": False, "Dead": False, "Pid": self.init_pid, "ExitCode": 0,
            "Error": "", "StartedAt": rfc3339(), "FinishedAt": ZERO_TIME,
            "PidStartTime": self.init_start, "ShimPid": os.getpid(),
            "ShimStartTime": start_time(os.getpid()),
        }
        self.write_state()
        self.report("ok %d\n" % self.init_pid)

    def report(self, line, last=False):
        """The starter's answer on the ready pipe; it reads to end of file. ``last``: the
        shim is about to exit, so the pipe is left to close with it and the starter
        returns once this process is gone (a failed ``run --rm`` leaves nothing behind,
        not even an exiting shim)."""
        if self.ready is not None:
            try:
                os.write(self.ready, line.encode("utf-8", "replace"))
            except OSError:
                pass
            if not last:
                os.close(self.ready)
            self.ready = None

    def write_state(self):
        data = (dumps(self.state) + "\n").encode()
        path = os.path.join(self.cdir, "state.json")
        tmp = os.path.join(self.cdir, ".state.json.%d" % os.getpid())
        try:
            lock = os.open(os.path.join(self.cdir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                           0o600)
        except OSError:
            return  # the container directory is gone (removed under us)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except OSError:
            pass
        finally:
            os.close(lock)

    # --- main loop ---------------------------------------------------------------------------
    def run(self):
        poller = select.poll()
        while True:
            fds = {}
            if self.sync is not None:
                fds[self.sync.fileno()] = POLLIN
            if self.exec_done or self.sync is None:
                fds[self.pidfd] = POLLIN
            fds[self.listen.fileno()] = POLLIN
            for fd in self.outputs:
                fds[fd] = POLLIN
            for c in self.clients.values():
                fds[c.fd] = POLLIN | (POLLOUT if c.queue else 0)
            if self.stdin_buf:
                wfd = self.master if self.tty else self.stdin_w
                if wfd is not None:
                    fds[wfd] = fds.get(wfd, 0) | POLLOUT
            poller = select.poll()
            for fd, ev in fds.items():
                poller.register(fd, ev)
            events = poller.poll()
            exited = False
            ready = dict(events)
            if self.sync is not None and self.sync.fileno() in ready:
                self.read_sync()
            for fd, ev in events:
                if fd == self.pidfd:
                    exited = True
                elif fd == self.listen.fileno():
                    self.accept()
                elif fd in self.outputs:
                    if ev & POLLOUT and self.tty:
                        self.write_stdin()
                    if ev & (POLLIN | POLLHUP | POLLERR):
                        self.read_output(fd)
                elif fd in self.clients:
                    c = self.clients[fd]
                    if ev & POLLOUT:
                        self.flush_client(c)
                    if ev & (POLLIN | POLLHUP | POLLERR) and fd in self.clients:
                        self.client_input(c)
                elif ev & POLLOUT:
                    self.write_stdin()
            if exited:
                self.finish()
                return

    def accept(self):
        while True:
            try:
                fd, _addr = self.listen._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.add_client(_socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, fd))

    def drain(self, deadline):
        """After the init exited: read what is left in the PTY/pipes (the kernel has killed
        the rest of the PID namespace, so they reach end of file soon)."""
        poller = select.poll()
        for fd in self.outputs:
            poller.register(fd, POLLIN)
        while self.outputs:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            events = poller.poll(int(left * 1000) + 1)
            for fd, _ev in events:
                if fd in self.outputs and not self.read_output(fd):
                    try:
                        poller.unregister(fd)
                    except KeyError:
                        pass
        for kind in (T_STDOUT, T_STDERR):
            self.flush_log(kind)

    def oom_killed(self):
        path = self.spec["memory_cgroup"]
        if not path:
            return False
        for name in ("memory.events", "memory.oom_control"):
            try:
                with open(os.path.join(path, name)) as f:
                    for line in f:
                        k, _, v = line.partition(" ")
                        if k == "oom_kill" and int(v) > 0:
                            return True
            except (OSError, ValueError):
                continue
        return False

    def remove_cgroups(self, deadline):
        paths = (self.spec["cgroups_required"] or []) + (self.spec["cgroups_optional"] or [])
        for p in paths:
            while True:
                try:
                    os.rmdir(p)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.005)

    def finish(self):
        _pid, status = os.waitpid(self.init_pid, 0)
        if os.WIFSIGNALED(status):
            code = 128 + os.WTERMSIG(status)
        else:
            code = os.WEXITSTATUS(status)
        if self.sync is not None:        # read whatever the init said before dying
            self.sync.setblocking(False)
            self.read_sync()
        self.drain(time.monotonic() + 2.0)
        oom = self.oom_killed()
        error = ""
        if self.exec_error is not None:
            code, error = self.exec_error
        if self.state is None:
            self.state = {"Status": "exited", "Running": False, "Paused": False,
                          "Restarting": False, "Dead": False, "StartedAt": ZERO_TIME}
        self.state.update({"Status": "created" if self.exec_error else "exited",
                           "Running": False, "Pid": 0, "ExitCode": code,
                           "Error": error, "OOMKilled": oom, "FinishedAt": rfc3339(),
                           "ShimPid": 0})
        if self.exec_error is None:  # before the network disconnects, as in Docker
            self.event("die", exitCode=code,
                       execDuration=int(time.time() - self.started_wall) if self.started_wall else 0)
        self.remove_cgroups(time.monotonic() + 2.0)
        if self.spec["network_teardown"]:
            self.teardown_network()
        self.volume_events("unmount")
        if self.auto_remove:
            rmtree(self.cdir)
            self.unindex_name()
            self.remove_volumes()
            self.event("destroy")
        else:
            self.write_state()
            self.maybe_restart(code)
        # the run dir goes before the starter or a client hears how it ended: one that
        # returns at once (run --rm) finds nothing of the container but this exiting process
        try:
            os.unlink(os.path.join(self.rundir, "attach.sock"))
        except OSError:
            pass
        rmtree(self.rundir)
        if self.exec_error is not None:
            self.report("err %d %s\n" % self.exec_error, last=True)
        else:
            self.report("ok %d\n" % self.init_pid, last=True)
        packet = bytes([T_EXIT]) + str(code).encode()
        for c in list(self.clients.values()):
            # read what the client sent and we did not handle (a late resize): a socket
            # closed with unread input resets the peer, whose next read then fails before
            # it sees the exit code queued for it
            try:
                while c.sock.recv(65536, _socket.MSG_DONTWAIT):
                    pass
            except OSError:
                pass
            try:
                c.sock.setblocking(True)
                c.sock.settimeout(2.0)
                for p in c.queue:
                    c.sock.send(p)
                c.sock.send(packet)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass

    def maybe_restart(self, code):
        """--restart: hand the container to a detached helper that starts it again after
        Docker's back-off (0.1 s doubling per restart, at most a minute; back to 0.1 s once
        it ran 10 s), unless the user stopped it (``stopped`` marker) meanwhile."""
        name, _, rest = self.spec["restart"].partition(":")
        if name not in ("always", "unless-stopped", "on-failure") or self.exec_error:
            return
        limit, _, count = rest.partition(":")
        limit, count = int(limit or 0), int(count or 0)
        if os.path.exists(os.path.join(self.cdir, "stopped")):
            return
        if name == "on-failure" and (code == 0 or (limit and count >= limit)):
            return
        ran = time.time() - self.started_wall if self.started_wall else 0
        delay = 0.1 if ran >= 10 else min(60.0, 0.1 * (2 ** count))
        try:
            if self.pkg not in sys.path:
                sys.path.insert(0, self.pkg)
            from core.runtime import linux

            linux.own_pid_namespace_for_children()
            pid = os.fork()
        except OSError as e:
            sys.stderr.write("shim %s: cannot restart: %s\n" % (self.cid[:12], e))
            return
        if pid == 0:
            try:
                os.setsid()
                if os.fork() != 0:
                    os._exit(0)
                os.closerange(3, 1 << 16)
                os.chdir(self.pkg)
                os.execv(sys.executable, [sys.executable, "-m", "core.runtime.restart",
                                          self.spec["state_root"], self.cid, "%.3f" % delay])
            finally:
                os._exit(127)
        os.waitpid(pid, 0)

    def remove_volumes(self):
        """--rm: the container's anonymous volumes go with it, unless another container's
        config names one (their names are 64 random hex digits: a byte search is exact)."""
        root, names = self.spec["volume_root"], self.spec["remove_volumes"] or []
        if not root or not names:
            return
        cbase = os.path.dirname(self.cdir)
        try:
            others = [os.path.join(cbase, c, "config.json") for c in os.listdir(cbase)]
        except OSError:
            others = []
        for name in names:
            if len(name) != 64 or not all(ch in "0123456789abcdef" for ch in name):
                continue
            used = False
            for path in others:
                try:
                    with open(path, "rb") as f:
                        used = name.encode() in f.read()
                except OSError:
                    continue
                if used:
                    break
            if not used:
                rmtree(os.path.join(root, name))
                self.volume_event("destroy", name, {"driver": "local"})

    def teardown_network(self):
        """Bridge networking is undone by the network area's hook (imported only now)."""
        try:
            if self.pkg not in sys.path:
                sys.path.insert(0, self.pkg)
            from core.runtime import network
            network.teardown_from_shim(self.spec["state_root"], self.cid,
                                       self.spec["runtime_root"] or None)
        except Exception as e:  # noqa: BLE001 - logged; rm will try again
            sys.stderr.write("shim %s: network teardown: %s\n" % (self.cid[:12], e))


def main(init_pid=None):
    # boot.py's process C becomes the shim before the container exists (or, in tests, a
    # process runs SHIM_BOOT with ``init=<pid>``): fd 0 is our end of the sync socket, on
    # which the init hands us our part of the start (receive_request)
    if init_pid is None:
        init_pid = int(next(a for a in sys.argv if a.startswith("init="))[5:])
    req = receive_request(0, init_pid)
    if req is None:             # the start never came (its caller went away)
        os.waitpid(init_pid, 0)
        os._exit(0)
    show_id(req["spec"]["cid"])
    shim = Shim(req)
    try:
        shim.run()
    except BaseException as e:  # noqa: BLE001
        sys.stderr.write("shim %s: %s: %s\n" % (req["spec"]["cid"][:12], type(e).__name__, e))
        raise
    os._exit(0)


def receive_request(sock_fd, init_pid):
    """Our part of the start, as boot.hand_over sends it: one ``R`` message with a memfd
    (the InitSpec's fields, where core is, the names of the fds) and the fds; or None at
    end of file. The sync socket moves off fd 0 (which becomes /dev/null), the log onto
    standard error. Every fd we get is close-on-exec."""
    import marshal

    sync = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, os.dup(sock_fd))  # cloexec
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, sock_fd)
    os.close(null)
    data, anc, flags, _addr = sync.recvmsg(16, _socket.CMSG_SPACE(32 * 4),
                                           _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, typ, payload in anc:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(payload[i:i + 4], sys.byteorder)
                    for i in range(0, len(payload) - len(payload) % 4, 4)]
    if data != b"R" or not fds or flags & _socket.MSG_CTRUNC:
        for fd in fds:
            os.close(fd)
        if data:
            raise SystemExit("shim: not a start request on the sync socket")
        return None
    chunks = []
    while True:
        b = os.pread(fds[0], 1 << 20, sum(len(c) for c in chunks))
        if not b:
            break
        chunks.append(b)
    os.close(fds[0])
    wire = marshal.loads(b"".join(chunks))
    names = wire.pop("fd_names")
    if len(names) != len(fds) - 1:
        raise SystemExit("shim: %d fds for %d names" % (len(fds) - 1, len(names)))
    got = dict(zip(names, fds[1:]))
    log = got.pop("log", None)
    if log is not None:
        os.dup2(log, 2)
        os.close(log)
    got["sync"] = sync.detach()
    return dict(wire, fds=got, init=init_pid)


# what boot.py puts on our command line until we know the container (boot.ID_PLACEHOLDER)
_ID_PLACEHOLDER = b"id=" + b"-" * 64


def show_id(cid):
    """Write the container's id over the placeholder on our command line, so that ``ps``
    (and whoever looks for a container's shim) sees ``id=<cid>``. The command line is
    our own memory, between arg_start and arg_end of /proc/self/stat, so we write it
    through /proc/self/mem. Best effort: the placeholder stays if that is refused."""
    new = ("id=" + cid).encode()
    if len(new) != len(_ID_PLACEHOLDER):
        return
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        start, end = int(fields[45]), int(fields[46])   # fields 48 and 49
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            at = os.pread(fd, end - start, start).find(_ID_PLACEHOLDER)
            if at >= 0:
                os.pwrite(fd, new, start + at)
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        pass


if __name__ == "__main__":
    main()
