#!/usr/bin/env python3
"""`bootvm firecracker` with the test guests, driven as Firecracker's
getting-started guide drives Firecracker: curl --unix-socket PUTs, then
InstanceStart; and through --config-file. Every response is checked against
the shapes of Firecracker's API specification (swagger/firecracker.yaml:
InstanceInfo, FirecrackerVersion, MachineConfiguration, Error, 204 with no
body). Then a running guest is paused and resumed, and hostile clients
(malformed and huge bodies, slow, half-closed and too many clients) each get
a 4xx while the VM keeps running. TAP output.

Environment: BOOTVM, GUEST_DIR (as guests.py).
"""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from tap import plan, skip, tap
from timeline import BASE, in_order, json_events, shape_ok

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
BUILD_ROOT = os.environ.get("BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
BOOTVM = os.environ.get("BOOTVM", os.path.join(BUILD_ROOT, "src", "bootvm"))
GUEST_DIR = os.environ.get("GUEST_DIR", os.path.join(BUILD_ROOT, "tests", "guest"))
TIMEOUT = 20

# Shapes from Firecracker's firecracker.yaml (definitions): required keys and their types.
SHAPES = {
    "InstanceInfo": {"app_name": str, "id": str, "state": str, "vmm_version": str},
    "FirecrackerVersion": {"firecracker_version": str},
    "MachineConfiguration": {"vcpu_count": int, "mem_size_mib": int},
    "Error": {"fault_message": str},
}
OPTIONAL = {
    "MachineConfiguration": {"smt": bool, "track_dirty_pages": bool, "huge_pages": str,
                             "cpu_template": str},
}
STATES = ("Not started", "Running", "Paused")


def guest(name):
    return os.path.join(GUEST_DIR, f"{name}.elf")


def shape_problems(obj, shape):
    """What in obj does not match the spec's definition `shape` ([] when it does)."""
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    probs = []
    for k, t in SHAPES[shape].items():
        if k not in obj:
            probs.append(f"missing {k}")
        elif not isinstance(obj[k], t) or (t is int and isinstance(obj[k], bool)):
            probs.append(f"{k} is {type(obj[k]).__name__}, not {t.__name__}")
    known = dict(SHAPES[shape], **OPTIONAL.get(shape, {}))
    for k, v in obj.items():
        if k not in known:
            probs.append(f"unexpected key {k}")
        elif not isinstance(v, known[k]):
            probs.append(f"{k} is {type(v).__name__}")
    if shape == "InstanceInfo" and obj.get("state") not in STATES:
        probs.append(f"state {obj.get('state')!r} not in {STATES}")
    return probs


def curl(sock, method, path, data=None, data_file=None):
    """curl --unix-socket as in the guide: (status, body text)."""
    args = ["curl", "-s", "--max-time", "10", "--unix-socket", sock, "-X", method,
            "-w", "\n%{http_code}", f"http://localhost{path}"]
    if data is not None:
        args += ["--data", data if isinstance(data, str) else json.dumps(data)]
    if data_file:
        args += ["--data-binary", f"@{data_file}"]
    r = subprocess.run(args, capture_output=True, timeout=20)
    text = r.stdout.decode(errors="replace")
    body, _, code = text.rpartition("\n")
    return int(code) if code.isdigit() else 0, body


def check_204(sock, method, path, data, name):
    status, body = curl(sock, method, path, data)
    return tap(status == 204 and body == "", f"{method} {path}: {name} -> 204, no body",
               f"got {status} {body!r}")


def check_json(sock, path, shape, name):
    status, body = curl(sock, "GET", path)
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    probs = shape_problems(obj, shape) if obj is not None else ["not JSON"]
    tap(status == 200 and not probs, f"GET {path}: {name} -> 200, a {shape}",
        f"got {status} {body!r}: {probs}")
    return obj or {}


def check_fault(sock, method, path, data, want, name, code=400, data_file=None):
    status, body = curl(sock, method, path, data, data_file)
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    probs = shape_problems(obj, "Error") if obj is not None else ["not JSON"]
    ok = status == code and not probs and want in obj.get("fault_message", "")
    return tap(ok, f"{method} {path}: {name} -> {code} with a fault_message",
               f"got {status} {body!r}: {probs}; want {want!r}")


_procs = []     # every Fc started: killed at exit if a check went wrong midway


class Fc:
    """A `bootvm firecracker` process with its socket, console on pipes."""

    def __init__(self, tmp, *args, sock=True, name="fc", wrap=()):
        self.sock = os.path.join(tmp, f"{name}.sock")
        cmd = list(wrap) + [BOOTVM, "firecracker"] + (["--api-sock", self.sock] if sock else []) + list(args)
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        _procs.append(self.p)
        self.out = b""
        if sock:
            deadline = time.monotonic() + 5
            while not os.path.exists(self.sock) and time.monotonic() < deadline \
                    and self.p.poll() is None:
                time.sleep(0.01)

    def read_until(self, pattern, secs):
        deadline = time.monotonic() + secs
        while pattern not in self.out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.p.stdout], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            self.out += chunk
        return pattern in self.out

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait(self, secs=TIMEOUT):
        try:
            out, err = self.p.communicate(timeout=secs)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        self.out += out
        self.err = err.decode(errors="replace")
        return self.p.returncode

    def running(self):
        return self.p.poll() is None


def getting_started(tmp):
    """The guide's sequence: logger, boot source, machine config, drives, entropy, start."""
    log = os.path.join(tmp, "fc.log")
    metrics = os.path.join(tmp, "fc.metrics")
    root, data = os.path.join(tmp, "rootfs.img"), os.path.join(tmp, "data.img")
    for path in (log, metrics):
        open(path, "w").close()
    for path in (root, data):
        with open(path, "wb") as f:
            f.write(bytes(64 * 1024))
    fc = Fc(tmp, "--id", "e2e-vm1")
    s = fc.sock
    tap(os.path.exists(s), "--api-sock: the socket is there before any VM",
        fc.p.stderr.read1(4096).decode() if not fc.running() else "")
    info = check_json(s, "/", "InstanceInfo", "before start")
    tap(info.get("state") == "Not started" and info.get("id") == "e2e-vm1",
        "GET /: state 'Not started', the --id", repr(info))
    check_json(s, "/version", "FirecrackerVersion", "the version")
    mc = check_json(s, "/machine-config", "MachineConfiguration", "Firecracker's defaults")
    tap(mc.get("vcpu_count") == 1 and mc.get("mem_size_mib") == 128,
        "GET /machine-config before any PUT: 1 vCPU, 128 MiB", repr(mc))
    check_204(s, "PUT", "/logger", {"log_path": log, "level": "Debug", "show_level": True,
                                    "show_log_origin": True}, "the guide's logger")
    check_204(s, "PUT", "/metrics", {"metrics_path": metrics}, "a metrics file")
    check_204(s, "PUT", "/boot-source", {"kernel_image_path": guest("virtio"),
                                         "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
              "kernel and boot_args")
    check_204(s, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, "1 vCPU, 64 MiB")
    mc = check_json(s, "/machine-config", "MachineConfiguration", "after PUT")
    tap(mc.get("mem_size_mib") == 64, "GET /machine-config shows the PUT", repr(mc))
    check_204(s, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": root,
                                          "is_root_device": True, "is_read_only": False},
              "the root drive")
    check_204(s, "PUT", "/drives/data", {"drive_id": "data", "path_on_host": data,
                                        "is_root_device": False, "is_read_only": True},
              "a read-only drive")
    check_204(s, "PUT", "/entropy", {}, "an entropy device")
    check_fault(s, "PATCH", "/vm", {"state": "Paused"}, "not supported before starting",
                "PATCH /vm before start")
    check_204(s, "PUT", "/actions", {"action_type": "InstanceStart"}, "InstanceStart")
    status = fc.wait()
    out = fc.out.decode(errors="replace")
    tap(status == 0 and "virtio: all ok" in out,
        "the virtio guest booted through the API ran and powered off: exit 0",
        f"exit {status}\n{out}\n{fc.err}")
    tap("id=rootfs" in out and "id=data" in out,
        "drive_id is each disk's serial, the root drive first", out)
    tap("write status=IOERR" in out and "write+flush ok" in out,
        "is_read_only: the data drive refuses writes, the root drive takes them", out)
    tap("virtio: rng" in out, "PUT /entropy gave the guest a virtio-rng", out)
    tap(not os.path.exists(s), "the socket is removed at exit")
    text = open(log).read()
    tap("[e2e-vm1:" in text and ":INFO:" in text and "api: PUT /actions" in text,
        "PUT /logger: the log file has Firecracker-shaped lines with level and origin",
        text[-2000:])
    tap("dropped pci=off" in text, "boot_args: pci=off dropped (bootvm's devices are PCI), logged",
        text[-2000:])
    lines = [json.loads(line) for line in open(metrics) if line.strip()]
    tap(len(lines) >= 1 and "utc_timestamp_ms" in lines[-1] and
        lines[-1]["put_api_requests"]["drive_count"] == 2,
        "metrics: a JSON line at exit, with the API request counts", repr(lines)[-1500:])
    check_exit_timeline(lines[-1] if lines else {}, ["first_pci_config", "queue_notify"],
                        "the API boot")


def check_exit_timeline(line, phases, what):
    """The metrics line written at exit: the boot timeline to the power-off, the VM's counters."""
    tl = line.get("boot_timeline")
    ev = json_events(tl) if shape_ok(tl) else []
    stop = [d for n, _, d in ev if n == "vm_stop"]
    tap(in_order(ev, BASE + phases + ["vm_stop"]) and ev[0][:2] == ("process_start", 0) and
        len(stop) == 1 and stop[0].startswith("guest powered off") and stop[0].endswith("exit status 0"),
        f"{what}: the metrics line at exit carries boot_timeline, process start to power-off "
        "in order", json.dumps(tl)[-2000:])
    tap("net" in line and "bootvm" in line,
        f"{what}: the line at exit still has the VM's net and bootvm counters",
        repr(sorted(line)))
    return line.get("net", {})


def config_file(tmp):
    root = os.path.join(tmp, "cfg-root.img")
    with open(root, "wb") as f:
        f.write(bytes(64 * 1024))
    cfg = {
        "boot-source": {"kernel_image_path": guest("virtio"), "boot_args": "console=ttyS0"},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64, "smt": False},
        "drives": [{"drive_id": "rootfs", "path_on_host": root, "is_root_device": True,
                    "is_read_only": False}],
        "network-interfaces": [],
    }
    path = os.path.join(tmp, "vm.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    for extra, what in ((["--no-api", "--boot-timer"], "--no-api --boot-timer (flintlock's)"),
                        ([], "with a socket")):
        fc = Fc(tmp, "--config-file", path, *extra, sock=not extra, name="cfg")
        status = fc.wait()
        out = fc.out.decode(errors="replace")
        tap(status == 0 and "virtio: all ok" in out and "id=rootfs" in out,
            f"--config-file {what}: the VM starts at once, boots the guest, exit 0",
            f"exit {status}\n{out}\n{fc.err}")
        if "--boot-timer" in extra:
            tap("--boot-timer: accepted, but bootvm has no boot-timer device" in fc.err,
                "--boot-timer: accepted with a warning that says what is missing", fc.err)
    # The bootvm_net extension and a metrics section: the net guest's DHCP and ARP, counted.
    metrics = os.path.join(tmp, "cfg.metrics")
    open(metrics, "w").close()
    with open(path, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": guest("net"), "boot_args": "console=ttyS0"},
                   "network-interfaces": [{"iface_id": "eth0", "bootvm_net": "user"}],
                   "metrics": {"metrics_path": metrics}}, f)
    fc = Fc(tmp, "--no-api", "--config-file", path, sock=False)
    status = fc.wait(40)
    out = fc.out.decode(errors="replace")
    done = re.search(r"net: done rx=(\d+) tx=(\d+)", out)
    tap(status == 0 and "net: all ok" in out and done is not None,
        "--config-file with a bootvm_net user interface: DHCP and ARP, exit 0",
        f"exit {status}\n{out}\n{fc.err}")
    lines = [json.loads(x) for x in open(metrics) if x.strip()]
    net = check_exit_timeline(lines[-1] if lines else {}, ["dhcp_lease"], "bootvm_net user")
    rx, tx = (int(done[1]), int(done[2])) if done else (0, 0)
    tap(tx > 0 and 0 < net.get("tx_packets_count", 0) <= tx and
        net.get("rx_packets_count", 0) >= rx > 0 and net.get("tx_bytes_count", 0) > 0,
        "the net counters at exit: what the guest sent (at most), what it received (at least)",
        f"guest rx={rx} tx={tx}; metrics net {net}")

    bad = os.path.join(tmp, "bad.json")
    for text, want, what in (
            ('{"boot-source": {"kernel_image_path": "%s"}, "vsock": {"guest_cid": 3, '
             '"uds_path": "/tmp/v"}}' % guest("hello"), "does not support \"vsock\"", "a vsock"),
            ('{"boot-source": {', "deserializing", "malformed JSON"),
            ('{"boot-source": {"kernel_image_path": "/nonexistent"}}',
             "kernel file cannot be opened", "a missing kernel")):
        with open(bad, "w") as f:
            f.write(text)
        fc = Fc(tmp, "--no-api", "--config-file", bad, sock=False)
        status = fc.wait()
        lines = fc.err.strip().splitlines()
        tap(status == 1 and len(lines) == 1 and want in lines[0] and not fc.out,
            f"--config-file with {what}: exit 1, one line naming it", f"exit {status}\n{fc.err}")


def cli_errors(tmp):
    for args, want in ((["--metadata", "x.json"], "MMDS"), (["--mmds-size-limit", "9"], "MMDS"),
                       (["--seccomp-filter", "f.bpf"], "seccomp"),
                       (["--no-api"], "needs --config-file"), (["--bogus"], "unknown option"),
                       (["--level", "Loud"], "--level"),
                       (["--id", "bad id"], "--id")):
        r = subprocess.run([BOOTVM, "firecracker", "--api-sock", os.path.join(tmp, "e.sock")] + args,
                           capture_output=True, timeout=TIMEOUT)
        err = r.stderr.decode(errors="replace").strip().splitlines()
        tap(r.returncode == 2 and len(err) == 1 and want in err[0],
            f"firecracker {' '.join(args)}: refused with exit 2 and one line", repr(err))
    busy = os.path.join(tmp, "busy.sock")
    open(busy, "w").close()
    r = subprocess.run([BOOTVM, "firecracker", "--api-sock", busy], capture_output=True,
                       timeout=TIMEOUT)
    tap(r.returncode == 1 and b"Address already in use" in r.stderr and os.path.exists(busy),
        "--api-sock on an existing path: exit 1, as Firecracker (the file stays)", r.stderr.decode())
    link = os.path.join(tmp, "firecracker")
    os.symlink(BOOTVM, link)
    r = subprocess.run([link, "--version"], capture_output=True, timeout=TIMEOUT)
    tap(r.returncode == 0 and r.stdout.startswith(b"Firecracker v"),
        "invoked as `firecracker`: takes Firecracker's flags (--version)", repr(r.stdout))


def failed_start(tmp):
    """InstanceStart that cannot build: 400 with the reason, still configurable; SIGTERM ends it."""
    junk = os.path.join(tmp, "junk-kernel")
    with open(junk, "wb") as f:
        f.write(b"this is not a kernel\n" * 100)
    fc = Fc(tmp, name="junk")
    check_204(fc.sock, "PUT", "/boot-source", {"kernel_image_path": junk}, "a file that is no kernel")
    check_fault(fc.sock, "PUT", "/actions", {"action_type": "InstanceStart"}, "Start microvm error:",
                "InstanceStart of a non-kernel")
    info = check_json(fc.sock, "/", "InstanceInfo", "after the failed start")
    tap(info.get("state") == "Not started" and fc.running(),
        "a failed InstanceStart leaves the process up and the instance 'Not started'", repr(info))
    check_204(fc.sock, "PUT", "/boot-source", {"kernel_image_path": guest("hello"),
                                               "boot_args": "console=ttyS0"}, "then a real kernel")
    fc.p.send_signal(signal.SIGTERM)
    status = fc.wait()
    tap(status == 128 + signal.SIGTERM, "SIGTERM before InstanceStart: exit 143",
        f"exit {status} {fc.err}")


def signal_during_start(tmp):
    """SIGTERM while an InstanceStart is on its way: bootvm exits, it does not hang."""
    # One CPU: the API thread often runs first after SIGCONT and waits for the main thread,
    # which took the signal (the race that hung the exit).
    wrap = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    boot = json.dumps({"kernel_image_path": guest("hello"), "boot_args": "console=ttyS0"})
    start = b'{"action_type": "InstanceStart"}'
    results = []
    for i in range(10):
        fc = Fc(tmp, name=f"race{i}", wrap=wrap)
        r = raw(fc.sock, b"PUT /boot-source HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
                % (len(boot), boot.encode()))
        if status_of(r) != 204:
            results.append(f"boot-source {r!r}")
            fc.p.kill()
            fc.wait()
            continue
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(fc.sock)
        fc.p.send_signal(signal.SIGSTOP)
        time.sleep(0.02)
        c.sendall(b"PUT /actions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(start), start))
        fc.p.send_signal(signal.SIGTERM)
        fc.p.send_signal(signal.SIGCONT)
        results.append(fc.wait(5))
        c.close()
    tap(all(r in (0, 128 + signal.SIGTERM) for r in results),
        "SIGTERM with an InstanceStart in flight, 10 times: bootvm exits each time (no hang)",
        repr(results))


def raw(sock_path, data=b"", shut=False, wait=0.0, read=True):
    """A hand-made client: send data, maybe half-close, read the answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    try:
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass        # the server answered and closed first (429): its answer is still there
    if wait:
        time.sleep(wait)
    resp = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
                if b"\r\n\r\n" in resp and not shut and b"Connection: close" not in resp:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    s.close()
    return resp


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def running_vm(tmp):
    """A running echo guest: post-boot rules, pause/resume, hostile clients; the VM unharmed."""
    metrics = os.path.join(tmp, "run.metrics")
    open(metrics, "w").close()
    fc = Fc(tmp, "--metrics-path", metrics, name="run")
    s = fc.sock
    check_204(s, "PUT", "/boot-source", {"kernel_image_path": guest("echo"),
                                         "boot_args": "console=ttyS0"}, "the echo guest")
    check_204(s, "PUT", "/actions", {"action_type": "InstanceStart"}, "InstanceStart")
    if not tap(fc.read_until(b"echo: ready", TIMEOUT), "the echo guest is up", fc.out.decode()):
        fc.p.kill()
        fc.wait()
        return
    info = check_json(s, "/", "InstanceInfo", "while it runs")
    tap(info.get("state") == "Running", "GET /: 'Running'", repr(info))
    check_fault(s, "PUT", "/boot-source", {"kernel_image_path": guest("hello")},
                "not supported after starting the microVM", "PUT /boot-source after start")
    check_fault(s, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64},
                "not supported after starting", "PUT /machine-config after start")
    check_fault(s, "PUT", "/actions", {"action_type": "InstanceStart"}, "after starting",
                "a second InstanceStart")

    # Pause: keys sent meanwhile are not echoed until the vCPU runs again.
    check_204(s, "PATCH", "/vm", {"state": "Paused"}, "pause")
    info = check_json(s, "/", "InstanceInfo", "paused")
    tap(info.get("state") == "Paused", "GET /: 'Paused'", repr(info))
    fc.send(b"ab")
    tap(not fc.read_until(b"AB", 1.0), "paused: the guest echoes nothing for 1 s", fc.out.decode())
    check_204(s, "PATCH", "/vm", {"state": "Resumed"}, "resume")
    tap(fc.read_until(b"AB", 5), "resumed: the keys typed while paused come back", fc.out.decode())

    check_204(s, "PUT", "/actions", {"action_type": "FlushMetrics"}, "FlushMetrics")
    lines = [json.loads(x) for x in open(metrics) if x.strip()]
    tap(len(lines) == 1 and lines[0]["patch_api_requests"]["vm_count"] == 2,
        "FlushMetrics wrote one JSON line counting the two PATCH /vm", repr(lines)[-800:])
    tl = lines[0].get("boot_timeline") if lines else None
    ev = json_events(tl) if shape_ok(tl) else []
    tap(in_order(ev, BASE) and "vm_stop" not in [e[0] for e in ev],
        "FlushMetrics while the guest runs: boot_timeline up to its console, no stop yet",
        json.dumps(tl)[-1500:])

    # Hostile requests through curl.
    check_fault(s, "PUT", "/drives/x", "{not json", "deserializing", "malformed JSON")
    check_fault(s, "PATCH", "/vm", {"state": "Paused", "now": 1}, "unknown field `now`",
                "an unknown field")
    check_fault(s, "PUT", "/actions", {"action_type": "Reboot"}, "unknown variant", "an unknown action")
    check_fault(s, "GET", "/balloon", None, "does not support a balloon", "an endpoint bootvm lacks")
    big = os.path.join(tmp, "big.json")
    with open(big, "w") as f:
        f.write('{"drive_id": "' + "x" * 200000 + '"}')
    check_fault(s, "PUT", "/drives/x", None, "larger than the limit of 51200", "a 200 kB body",
                code=413, data_file=big)

    # Hostile clients on the raw socket.
    r = raw(s, b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
    tap(status_of(r) == 400 and b"fault_message" in r, "garbage bytes: 400 and the connection closed",
        repr(r))
    r = raw(s, b"PUT /vm HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"st", shut=True)
    tap(status_of(r) == 400 and b"closed the connection" in r,
        "half a request, then a half-close: 400", repr(r))
    r = raw(s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", shut=True)
    tap(status_of(r) == 200 and b'"Running"' in r, "a whole request, then a half-close: answered",
        repr(r))
    r = raw(s, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET /version HTTP/1.1\r\n\r\n", shut=True)
    tap(r.count(b"HTTP/1.1 200") == 2, "two pipelined requests: two answers in order", repr(r))
    t0 = time.monotonic()
    r = raw(s, b"PUT /actions HTTP/1.1\r\nContent-Length: 40\r\n\r\n{")
    took = time.monotonic() - t0
    tap(status_of(r) == 408 and 4 <= took < 9, "a slow client (half a body, then silence): 408 "
        "after 5 s", f"{took:.1f}s {r!r}")
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(40)]
    for c in idle:
        c.connect(s)
    status, body = curl(s, "GET", "/")
    tap(status == 200, "40 idle connections: a new client is still served (the idle ones make room)",
        f"{status} {body}")
    for c in idle:
        c.close()
    stuck = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(16)]
    for c in stuck:
        c.connect(s)
        c.sendall(b"PUT /vm HTTP/1.1\r\nContent-Length: 99\r\n\r\n{")
    time.sleep(0.3)
    r = raw(s, b"GET / HTTP/1.1\r\n\r\n")
    tap(status_of(r) == 429 and b"fault_message" in r,
        "16 clients mid-request: one more gets 429 with a fault_message", repr(r))
    for c in stuck:
        c.close()
    # Clients that pipeline requests and read none of the answers: closed after 5 s, not forever.
    deaf = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(16)]
    for c in deaf:
        c.connect(s)
        c.setblocking(False)
        try:
            c.send(b"GET / HTTP/1.1\r\n\r\n" * 3000)
        except BlockingIOError:
            pass
    time.sleep(0.5)
    t0 = time.monotonic()
    r = b""
    while time.monotonic() - t0 < 12 and status_of(r) != 200:
        r = raw(s, b"GET / HTTP/1.1\r\n\r\n")
        time.sleep(0.5)
    took = time.monotonic() - t0
    tap(status_of(r) == 200 and took < 9, "16 clients that read no answers: a new client is "
        "served within 5 s (they are closed)", f"{took:.1f}s {r!r}")
    for c in deaf:
        c.close()

    info = check_json(s, "/", "InstanceInfo", "after the hostile clients")
    fc.send(b"cd")
    tap(info.get("state") == "Running" and fc.read_until(b"CD", 5) and fc.running(),
        "after all that the VM still runs and echoes", fc.out.decode()[-300:])
    check_204(s, "PUT", "/actions", {"action_type": "SendCtrlAltDel"},
              "SendCtrlAltDel (the ACPI power button; this guest ignores it)")
    fc.send(b"q")
    status = fc.wait()
    tap(status == 0, "'q': the guest powers off, bootvm exits 0", f"exit {status} {fc.err}")
    lines = [json.loads(x) for x in open(metrics) if x.strip()]
    check_exit_timeline(lines[-1] if lines else {}, [], "after 'q'")


def main():
    if not os.path.exists(guest("echo")):
        skip("firecracker", "test guests not built")
        return plan()
    if subprocess.run(["sh", "-c", "command -v curl"], capture_output=True).returncode:
        skip("firecracker", "curl is not installed (scripts/deps.sh installs it)")
        return plan()
    with tempfile.TemporaryDirectory(prefix="bootvm-fc-") as tmp:
        try:
            getting_started(tmp)
            config_file(tmp)
            cli_errors(tmp)
            failed_start(tmp)
            signal_during_start(tmp)
            running_vm(tmp)
        finally:
            for p in _procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    return plan()


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
