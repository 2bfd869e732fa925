"""Plumbing for bench/suite.py: timed commands, a local registry, base images, statistics.

Nothing here knows about scenarios; suite.py does.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A measured or preparatory command failed; the message says which and shows its log tail."""


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def sh(cmd, log_path=None, env=None, cwd=None, check=True):
    """Runs a shell command (bash, pipefail), output appended to log_path; raises Failed on error."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        rc = subprocess.call(["bash", "-o", "pipefail", "-ec", cmd], stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    finally:
        if log_path:
            out.close()
    if check and rc != 0:
        raise Failed(f"`{cmd}` exited with {rc}" + (f"; log {log_path}:\n{tail(log_path)}" if log_path else ""))
    return rc


def timed(argv, log_path, env=None, cwd=None):
    """Runs argv under /usr/bin/time -v. Returns {"wall_s", "rss_kib"}; raises Failed on error.

    Wall time is measured here (monotonic clock) rather than taken from time(1)'s 10 ms figure.
    Peak RSS is time(1)'s "Maximum resident set size": the largest single process of the tree that
    was waited for (the child's own rusage plus its waited-for descendants), not a sum.
    """
    tfile = log_path + ".time"
    with open(log_path, "ab") as out:
        out.write(("$ " + " ".join(argv) + "\n").encode())
        out.flush()
        t0 = time.monotonic()
        rc = subprocess.call(["/usr/bin/time", "-v", "-o", tfile] + argv, stdout=out, stderr=out,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        wall = time.monotonic() - t0
    rss = None
    try:
        with open(tfile) as f:
            for line in f:
                if "Maximum resident set size" in line:
                    rss = int(line.rsplit(":", 1)[1])
    except OSError:
        pass
    if rc != 0:
        e = Failed(f"{os.path.basename(argv[0])} {' '.join(argv[1:3])}... exited with {rc}; "
                   f"log {log_path}:\n{tail(log_path)}")
        e.run = {"wall_s": round(wall, 3), "rss_kib": rss, "exit": rc}  # how far it got, for the JSON
        raise e
    return {"wall_s": round(wall, 3), "rss_kib": rss}


def timed_sh(cmd, log_path, env=None):
    """Wall time of a shell pipeline (floors); no RSS."""
    t0 = time.monotonic()
    sh(cmd, log_path, env=env)
    return round(time.monotonic() - t0, 3)


def summarize(values):
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def remove_tree(path):
    """Unmounts whatever a builder left mounted below path (overlay, proc), then deletes it."""
    if not os.path.lexists(path):
        return
    for mp in mounts_under(path):
        subprocess.call(["umount", "-l", mp], stderr=subprocess.DEVNULL)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        subprocess.call(["rm", "-rf", path])


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def pick_workdir(need_mib, forced=None):
    """A fresh directory for this run: tmpfs (/dev/shm) when it and RAM have room, else disk.

    Always a new mkdtemp name: on the ext4 root here, creating many files right after deleting many
    in the same place is up to 15x slower, so a run never reuses a directory that was just deleted.
    """
    if forced:
        os.makedirs(forced, exist_ok=True)
        return tempfile.mkdtemp(prefix="kiln-bench-", dir=forced)
    shm = "/dev/shm"
    if os.path.isdir(shm):
        st = os.statvfs(shm)
        avail_mib = st.f_bavail * st.f_frsize // 1048576
        # tmpfs pages are RAM: leave 3 GiB for the builders themselves and everyone else.
        if avail_mib >= need_mib and mem_available_kib() // 1024 >= need_mib + 3072:
            return tempfile.mkdtemp(prefix="kiln-bench-", dir=shm)
    base = os.environ.get("TMPDIR", "/var/tmp")
    return tempfile.mkdtemp(prefix="kiln-bench-", dir=base)


class Registry:
    """docker-registry on 127.0.0.1 over plain HTTP, configured like tests/testing/registry_server.cc."""

    def __init__(self, root):
        self.root = root
        self.proc = None
        self.port = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        for attempt in range(5):
            self.port = free_port()
            cfg = os.path.join(self.root, "config.yml")
            with open(cfg, "w") as f:
                f.write("version: 0.1\n"
                        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                        "storage:\n"
                        f"  filesystem:\n    rootdirectory: {self.root}/storage\n"
                        "  delete:\n    enabled: true\n"
                        "  cache:\n    blobdescriptor: inmemory\n"
                        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                        f"http:\n  addr: 127.0.0.1:{self.port}\n"
                        "  secret: kiln-bench-upload-state-secret\n")
            logf = open(os.path.join(self.root, "registry.log"), "ab")
            self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=logf, stderr=logf,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1) as r:
                        if r.status == 200:
                            return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise Failed(f"docker-registry did not start; log:\n{tail(os.path.join(self.root, 'registry.log'))}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def manifest(self, repo, tag):
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
                      "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def blob_url(self, repo, digest):
        return f"http://{self.host}/v2/{repo}/blobs/{digest}"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def busybox_rootfs(dst):
    """/bin/busybox (Debian's busybox-static) and a symlink for each of its applets."""
    os.makedirs(os.path.join(dst, "bin"), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(dst, "bin", "busybox"))
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    for rel in applets:
        p = os.path.join(dst, rel)
        if rel == "bin/busybox" or os.path.lexists(p):
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.symlink("/bin/busybox", p)
    for d in ("etc", "tmp", "root"):
        os.makedirs(os.path.join(dst, d), exist_ok=True)
    os.chmod(os.path.join(dst, "tmp"), 0o1777)


def push_dir_with_kiln(kiln, rootfs, layout, tag, dest, log_path, cmd=None):
    """kiln pack DIR into an OCI layout, then skopeo copy to the registry."""
    argv = [kiln, "pack", rootfs, "--oci-layout-path", f"{layout}:{tag}"]
    for c in cmd or []:
        argv += ["--cmd", c]
    sh(" ".join(map(sh_quote, argv)), log_path)
    sh(f"skopeo copy -q --dest-tls-verify=false oci:{sh_quote(layout)}:{tag} docker://{dest}", log_path)


def push_layers_as_image(layer_tars, layout, tag, dest, log_path):
    """An OCI image of several uncompressed layer tars (gzip via pigz), copied to the registry.

    Written by hand rather than with kiln so the multi-layer base does not depend on kiln.
    """
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    layers, diff_ids = [], []
    for t in layer_tars:
        diff_ids.append(sha256_file(t))
        gz = t + ".gz"
        sh(f"pigz -6 -n -p2 -c {sh_quote(t)} > {sh_quote(gz)}", log_path)
        d = sha256_file(gz)
        size = os.path.getsize(gz)
        os.replace(gz, os.path.join(blobs, d.split(":")[1]))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": size})

    def put(obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d.split(":")[1]), "wb") as f:
            f.write(data)
        return d, len(data)

    cfg_d, cfg_n = put({"architecture": "amd64", "os": "linux",
                        "config": {"Cmd": ["/bin/sh"]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids},
                        "history": [{"created_by": f"bench layer {i}"} for i in range(len(layer_tars))]})
    man_d, man_n = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": cfg_d, "size": cfg_n},
                        "layers": layers})
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man_d, "size": man_n,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    sh(f"skopeo copy -q --dest-tls-verify=false oci:{sh_quote(layout)}:{tag} docker://{dest}", log_path)
    return sum(l["size"] for l in layers)


def sh_quote(s):
    import shlex
    return shlex.quote(str(s))


def tool_version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
