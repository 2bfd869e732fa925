#!/usr/bin/env python3
"""kiln's benchmark suite: each scenario built by kiln and by Buildah, next to the machine's floor.

Run it through bench/run.sh (which builds kiln first). See bench/README.md for the scenarios.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import gentree  # noqa: E402
import report  # noqa: E402

SCENARIOS = {
    1: "COPY {size} / {files} files onto busybox, push",
    2: "Debian base: pull, extract, RUN echo, push",
    3: "20 RUN steps on Debian, each changing one file, push",
    4: "rebuild of scenario 3 with nothing changed (layer cache), push",
    5: "pull + extract a 4-layer ~500 MB base",
    6: "rebuild after one source file changed (layer cache), push",
    7: "a file-heavy RUN step on Debian in each kiln sandbox tier (rootless, chroot, ptrace), push",
    8: "apt-get install behind RUN --mount=type=cache: the build on a fresh CI runner, push",
    9: "npm ci (178 packages) behind RUN --mount=type=cache: the build on a fresh CI runner, push",
}

# Scenario 8: Debian packages installed behind cache mounts for apt's archives and lists (BuildKit's
# documented recipe: docker-clean removed so apt keeps what it downloaded).
S8_PKGS = "python3 git"
S8_RUN = ("RUN --mount=type=cache,target=/var/cache/apt,sharing=locked "
          "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked "
          "echo $BUST > /dev/null && apt-get update -qq && "
          f"apt-get install -y -qq --no-install-recommends {S8_PKGS} > /dev/null\n")

# Scenario 9: a small npm project (bench/npm-project: express, typescript, eslint, lodash; 178 packages
# in its lockfile) installed with `npm ci` behind a cache mount for npm's cache, on a Node.js base
# made of the Debian base plus this machine's node and npm (and its npmrc and CA bundle, which the
# machine's npm registry access needs).
S9_PROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npm-project")
S9_RUN = ("RUN --mount=type=cache,target=/root/.npm "
          "echo $BUST > /dev/null && npm ci --prefer-offline --no-audit --no-fund --loglevel=error\n")

# Scenario 7's step: compression, dpkg's database, a walk of /usr and 20 `ls -l` of /usr/bin (every
# entry stat'ed: the worst case of the ptrace tier, which stops the step at each path it names).
S7_STEP = ("tar -czf /tmp/perl.tgz /usr/share/perl5 && dpkg -l > /tmp/pkgs && find /usr -type f | wc -l > /tmp/n "
           "&& for i in $(seq 20); do ls -l /usr/bin > /dev/null; done")


# ---------------------------------------------------------------------------------------------
# Builders. Each measure_* returns {"wall_s", "rss_kib", "phases": {...}} or raises bl.Failed.

class Kiln:
    def __init__(self, path):
        self.path = path
        self.name = "kiln"
        self.reason = None
        self.has_cache = False
        self.version = bl.tool_version([path, "version"]) if os.path.exists(path) else None
        if not os.access(path, os.X_OK):
            self.reason = "kiln binary missing"
            return
        r = subprocess.run([path, "build", "--help"], capture_output=True, text=True)
        text = r.stdout + r.stderr
        # CLI11 prints the top-level help (rc 0) for an unknown subcommand: look for build's flags.
        if r.returncode != 0 or "--destination" not in text or "--context" not in text:
            self.reason = "kiln build unavailable"
            return
        # kiln lists Kaniko's flags it does not implement yet as "(Kaniko) not supported yet".
        def supported(flag):
            m = re.search(rf"^\s*{flag}(?![-\w]).*$", text, re.M)
            return m is not None and "not supported" not in m.group(0)
        self.has_cache = supported("--cache")
        self.has_cache_repo = supported("--cache-repo")
        self.has_cache_dir = supported("--cache-dir")

    @property
    def available(self):
        return self.reason is None

    def env(self, state):
        env = dict(os.environ, KILN_DIR=os.path.join(state, "kiln-state"), TMPDIR=os.path.join(state, "tmp"))
        os.makedirs(env["TMPDIR"], exist_ok=True)
        return env

    def build(self, ctx, dest, state, log, push=True, extra=()):
        argv = [self.path, "build", "--context", ctx, "--dockerfile", os.path.join(ctx, "Dockerfile"),
                "--insecure", "--insecure-pull"]
        argv += ["--destination", dest] if push else ["--no-push"]
        r = bl.timed(argv + list(extra), log, env=self.env(state))
        r["phases"] = kiln_phases(log) or {"build": r["wall_s"]}
        return r


class KilnTier(Kiln):
    """kiln with one RUN sandbox tier forced (scenario 7)."""

    def __init__(self, base, tier):
        self.__dict__.update(base.__dict__)
        self.name = f"kiln-{tier}"
        self.tier = tier

    def build(self, ctx, dest, state, log, push=True, extra=()):
        return Kiln.build(self, ctx, dest, state, log, push, list(extra) + ["--sandbox", self.tier])


def kiln_steps(log):
    """Per-step times ("STEP 2/2: done in 51.85s") of a kiln build that did not finish."""
    steps = {}
    try:
        with open(log, errors="replace") as f:
            for m in re.finditer(r"STEP (\d+)/\d+: done in (\d+(?:\.\d+)?)(ms|s)", f.read()):
                steps[f"step {m.group(1)}"] = round(float(m.group(2)) / (1000 if m.group(3) == "ms" else 1), 3)
    except OSError:
        pass
    return steps


def kiln_phases(log):
    """kiln build's own per-phase summary, its last line:
    "done in 3.92s: base images 94ms, RUN 0ms, ..., layers 3.56s (1, 24.9 MB), push 0ms"."""
    try:
        with open(log, errors="replace") as f:
            lines = [l for l in f if l.startswith("done in ")]
    except OSError:
        return None
    if not lines or ":" not in lines[-1]:
        return None
    phases = {}
    for name, value, unit in re.findall(r"([A-Za-z][A-Za-z/ ]*?) (\d+(?:\.\d+)?)(ms|s)\b", lines[-1].split(":", 1)[1]):
        phases[name.strip()] = round(float(value) / (1000 if unit == "ms" else 1), 3)
    return phases or None


class Buildah:
    def __init__(self, driver):
        self.driver = driver
        self.name = f"buildah-{driver}"
        self.reason = None
        self.version = bl.tool_version(["buildah", "--version"])

    @property
    def available(self):
        return self.reason is None

    def base(self, state):
        return ["buildah", "--root", os.path.join(state, "root"), "--runroot", os.path.join(state, "runroot"),
                "--storage-driver", self.driver]

    def env(self, state):
        env = dict(os.environ, TMPDIR=os.path.join(state, "tmp"), BUILDAH_ISOLATION="chroot")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        return env

    def probe(self, registry, state, log):
        """Overlay needs a kernel and a filesystem under --root that support it: try once."""
        try:
            bl.sh(" ".join(map(bl.sh_quote, self.base(state) + [
                "from", "--tls-verify=false", f"{registry.host}/busybox:latest"])), log, env=self.env(state))
        except bl.Failed as e:
            self.reason = f"buildah {self.driver} does not work here: " + str(e).splitlines()[-1][:200]
        finally:
            subprocess.call(self.base(state) + ["rm", "--all"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
            bl.remove_tree(state)

    def build(self, ctx, dest, state, log, push=True, layers=False, extra=()):
        env = self.env(state)
        bud = bl.timed(self.base(state) + ["bud", "--isolation", "chroot", f"--layers={str(layers).lower()}",
                                           "--tls-verify=false", "-f", os.path.join(ctx, "Dockerfile"),
                                           "-t", dest] + list(extra) + [ctx], log, env=env)
        r = {"wall_s": bud["wall_s"], "rss_kib": bud["rss_kib"], "phases": {"bud": bud["wall_s"]}}
        if push:
            p = bl.timed(self.base(state) + ["push", "--tls-verify=false", dest, f"docker://{dest}"], log, env=env)
            r["wall_s"] = round(r["wall_s"] + p["wall_s"], 3)
            r["rss_kib"] = max(r["rss_kib"] or 0, p["rss_kib"] or 0)
            r["phases"]["push"] = p["wall_s"]
        return r

    def pull_extract(self, image, state, log):
        """buildah from: pull the layers, extract them into storage, create the working container."""
        r = bl.timed(self.base(state) + ["from", "--tls-verify=false", image], log, env=self.env(state))
        r["phases"] = {"from": r["wall_s"]}
        return r

    def cleanup(self, state):
        subprocess.call(self.base(state) + ["rm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# Floors: the same work done by the fastest standard tools, in the same run.

def fetch_extract_cmd(registry, repo, tag, dst):
    """curl each layer | pigz -d | tar -x, one layer after the other (what a pull must do at least)."""
    man = registry.manifest(repo, tag)
    cmds = [f"mkdir -p {bl.sh_quote(dst)}"]
    for layer in man["layers"]:
        cmds.append(f"curl -sf {registry.blob_url(repo, layer['digest'])} | pigz -d | "
                    f"tar --numeric-owner -xpf - -C {bl.sh_quote(dst)}")
    return "\n".join(cmds)


def upload_cmd(registry, repo, blob, digest):
    """Monolithic upload: POST /v2/<repo>/blobs/uploads/, then PUT <location>&digest= with the data."""
    return (f"loc=$(curl -sf -o /dev/null -D - -X POST http://{registry.host}/v2/{repo}/blobs/uploads/ | "
            "tr -d '\\r' | awk 'tolower($1)==\"location:\" {print $2}')\n"
            f"curl -sf -o /dev/null -T {bl.sh_quote(blob)} -H 'Content-Type: application/octet-stream' "
            f"\"$loc&digest={digest}\"")


def streamed_cmd(registry, repo, tree, state):
    """One pass: tar | pigz -p2 | tee >(sha256sum) | chunked PATCH upload, then PUT ?digest=.

    The least any builder must do for scenario 1's layer: read every byte once, compress on both
    cores, hash the compressed stream and send it, all overlapped.
    """
    sumf = os.path.join(state, "sum")
    hdr = os.path.join(state, "hdr")
    return (f"loc=$(curl -sf -o /dev/null -D - -X POST http://{registry.host}/v2/{repo}/blobs/uploads/ | "
            "tr -d '\\r' | awk 'tolower($1)==\"location:\" {print $2}')\n"
            f"tar -C {bl.sh_quote(tree)} -cf - . | pigz -6 -n -p2 | tee >(sha256sum > {sumf}) | "
            f"curl -sf -o /dev/null -D {hdr} -X PATCH -T - -H 'Content-Type: application/octet-stream' \"$loc\"\n"
            f"loc=$(tr -d '\\r' < {hdr} | awk 'tolower($1)==\"location:\" {{print $2}}')\n"
            f"while [ ! -s {sumf} ]; do sleep 0.01; done\n"
            f"curl -sf -o /dev/null -X PUT \"$loc&digest=sha256:$(cut -d' ' -f1 {sumf})\"")


# ---------------------------------------------------------------------------------------------

class Suite:
    def __init__(self, args):
        self.a = args
        self.results = []
        self.kiln = Kiln(args.kiln)
        # Another kiln binary (e.g. the commit before a change) measured side by side, as "kiln-baseline".
        self.baseline = None
        if args.kiln_baseline:
            self.baseline = Kiln(args.kiln_baseline)
            self.baseline.name = "kiln-baseline"
        self.buildahs = [Buildah("vfs")] + ([] if args.no_overlay else [Buildah("overlay")])
        need = 1200 + args.size_mb * 6 if 1 in args.scenarios else 1500
        if 5 in args.scenarios:
            need += args.big_mb * 4
        self.work = bl.pick_workdir(need, args.workdir)
        self.seq = 0
        self.registry = bl.Registry(os.path.join(self.work, "registry"))

    def fresh(self, label):
        """A never-used directory for one measurement (see pick_workdir on why never reused)."""
        self.seq += 1
        d = os.path.join(self.work, "runs", f"{self.seq:03d}-{label}")
        os.makedirs(d)
        return d

    def logp(self, label):
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        return os.path.join(self.work, "logs", label + ".log")

    # --- inputs ---------------------------------------------------------------------------------

    def seed(self):
        bl.log(f"work dir {self.work} ({'tmpfs' if self.work.startswith('/dev/shm') else 'disk'})")
        self.registry.start()
        bl.log(f"registry on {self.registry.host}")
        lg = self.logp("seed")
        t0 = time.monotonic()
        bb = os.path.join(self.work, "inputs", "busybox")
        bl.busybox_rootfs(bb)
        bl.push_dir_with_kiln(self.a.kiln, bb, os.path.join(self.work, "inputs", "busybox-oci"), "busybox",
                              f"{self.registry.host}/busybox:latest", lg)
        if set(self.a.scenarios) & {2, 3, 4, 5, 6, 7, 8, 9}:
            tar = os.path.join(self.work, "inputs", "debian.tar")
            bl.sh(f"{bl.sh_quote(os.path.join(bl.REPO, 'scripts', 'debian-rootfs.sh'))} {bl.sh_quote(tar)}", lg)
            root = os.path.join(self.work, "inputs", "debian")
            os.makedirs(root)
            bl.sh(f"tar --numeric-owner -xpf {bl.sh_quote(tar)} -C {bl.sh_quote(root)}", lg)
            bl.push_dir_with_kiln(self.a.kiln, root, os.path.join(self.work, "inputs", "debian-oci"), "bookworm",
                                  f"{self.registry.host}/debian:bookworm", lg, cmd=["bash"])
            self.debian_tar = tar
            if 9 in self.a.scenarios:
                self.seed_node(root, lg)
        bl.log(f"base images seeded in {time.monotonic() - t0:.1f}s")
        for b in self.buildahs:
            if b.driver != "vfs":
                b.probe(self.registry, self.fresh(f"probe-{b.name}"), self.logp(f"probe-{b.name}"))
                if b.reason:
                    bl.log(b.reason)

    def seed_node(self, debian_root, lg):
        """{registry}/node:bench: the Debian base with this machine's node and npm (scenario 9)."""
        root = os.path.join(self.work, "inputs", "node")
        bl.sh(f"cp -a {bl.sh_quote(debian_root)} {bl.sh_quote(root)}", lg)
        node = os.path.realpath(shutil.which("node"))
        npm_dir = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(shutil.which("npm"))), ".."))
        os.makedirs(os.path.join(root, "usr/lib/node_modules"), exist_ok=True)
        os.makedirs(os.path.join(root, "usr/etc"), exist_ok=True)
        os.makedirs(os.path.join(root, "etc/ssl/certs"), exist_ok=True)
        bl.sh(f"cp {bl.sh_quote(node)} {bl.sh_quote(root)}/usr/bin/node && "
              f"cp -a {bl.sh_quote(npm_dir)} {bl.sh_quote(root)}/usr/lib/node_modules/npm && "
              f"ln -s ../lib/node_modules/npm/bin/npm-cli.js {bl.sh_quote(root)}/usr/bin/npm", lg)
        for f in ("/usr/etc/npmrc", "/etc/ssl/certs/ca-certificates.crt"):
            if os.path.exists(f):
                bl.sh(f"cp {f} {bl.sh_quote(root + f)}", lg)
        bl.push_dir_with_kiln(self.a.kiln, root, os.path.join(self.work, "inputs", "node-oci"), "bench",
                              f"{self.registry.host}/node:bench", lg, cmd=["node"])

    def context(self, name, dockerfile):
        ctx = os.path.join(self.work, "inputs", name)
        os.makedirs(ctx, exist_ok=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        return ctx

    # --- running ----------------------------------------------------------------------------------

    def tools(self, scenario):
        if scenario == 7:
            if not hasattr(self, "kiln_tiers"):
                self.kiln_tiers = [KilnTier(self.kiln, t) for t in ("chroot", "ptrace")]
            return [self.kiln] + self.kiln_tiers + self.buildahs
        return [self.kiln] + ([self.baseline] if self.baseline else []) + self.buildahs

    def run_scenario(self, sid, prepare, measure, floor=None, kiln_reason=None):
        """Runs every tool (and the floor) --runs times, rotating the order between runs."""
        bl.log(f"scenario {sid}: " + SCENARIOS[sid].format(size=f"{self.a.size_mb} MiB", files=f"{self.a.files:,}"))
        info = prepare()
        entries = {}
        names = [t.name for t in self.tools(sid)] + (["floor"] if floor else [])
        for t in self.tools(sid):
            reason = t.reason or (kiln_reason if t is self.kiln else None)
            entries[t.name] = {"status": "n/a", "reason": reason} if reason else {"status": "ok", "runs": []}
        if floor:
            entries["floor"] = {"status": "ok", "runs": []}
        for r in range(self.a.runs):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                e = entries[name]
                if e["status"] != "ok":
                    continue
                state = self.fresh(f"s{sid}-{name}-r{r + 1}")
                lg = self.logp(f"s{sid}-{name}-r{r + 1}")
                try:
                    if name == "floor":
                        res = floor(state, lg)
                    else:
                        tool = next(t for t in self.tools(sid) if t.name == name)
                        res = measure(tool, state, lg, r)
                    e["runs"].append(res)
                    rss = f", {res['rss_kib'] / 1024:.0f} MiB" if res.get("rss_kib") else ""
                    bl.log(f"  s{sid} run {r + 1} {name}: {res['wall_s']:.2f}s{rss}")
                except bl.Failed as ex:
                    lines = str(ex).splitlines()
                    last = next((l for l in reversed(lines[1:]) if l.strip()), "")
                    e.update(status="failed", reason=(lines[0].split(";")[0] + (": " + last if last else ""))[:300],
                             log=lg, failed_run=getattr(ex, "run", None))
                    if name == "kiln" and getattr(ex, "run", None):
                        e["failed_run"]["phases"] = kiln_phases(lg) or kiln_steps(lg)
                    bl.log(f"  s{sid} run {r + 1} {name} FAILED: {ex}")
                finally:
                    if isinstance(tool_of(self, name), Buildah):
                        tool_of(self, name).cleanup(state)
                    if not self.a.keep:
                        bl.remove_tree(state)
        for e in entries.values():
            if e.get("runs"):
                e["wall_s"] = bl.summarize([x["wall_s"] for x in e["runs"]])
                rss = [x["rss_kib"] for x in e["runs"] if x.get("rss_kib")]
                e["peak_rss_mib"] = round(max(rss) / 1024, 1) if rss else None
                comp = {}
                for x in e["runs"]:
                    for k, v in x.get("components", {}).items():
                        comp.setdefault(k, []).append(v)
                if comp:
                    e["components"] = {k: bl.summarize(v) for k, v in comp.items()}
        name = SCENARIOS[sid].format(size=f"{self.a.size_mb} MiB", files=f"{self.a.files:,}")
        self.results.append({"id": sid, "name": name, "input": info, "tools": entries,
                             "ratios": ratios(entries)})

    # --- scenarios ---------------------------------------------------------------------------------

    def s1(self):
        reg = self.registry.host
        holder = {}

        def prepare():
            ctx = self.context("s1", f"FROM {reg}/busybox:latest\nCOPY tree /data/\n")
            t0 = time.monotonic()
            written, n = gentree.generate(os.path.join(ctx, "tree"), self.a.size_mb, self.a.files, seed=1)
            bl.log(f"  tree: {n} files, {written / 1048576:.0f} MiB in {time.monotonic() - t0:.1f}s")
            blob = os.path.join(self.work, "inputs", "s1-blob.tar.gz")
            bl.sh(f"tar -C {bl.sh_quote(ctx)}/tree -cf - . | pigz -6 -n -p2 > {bl.sh_quote(blob)}")
            holder.update(ctx=ctx, blob=blob, digest=bl.sha256_file(blob))
            return {"files": n, "bytes": written, "compressed_bytes": os.path.getsize(blob)}

        def measure(tool, state, lg, r):
            return tool.build(holder["ctx"], f"{reg}/s1-{tool.name}:r{r + 1}", state, lg)

        def floor(state, lg):
            tree = os.path.join(holder["ctx"], "tree")
            q = bl.sh_quote(tree)
            c = {}
            c["tar|pigz -6 -p2"] = bl.timed_sh(f"tar -C {q} -cf - . | pigz -6 -n -p2 > /dev/null", lg)
            c["tar|sha256sum"] = bl.timed_sh(f"tar -C {q} -cf - . | sha256sum > /dev/null", lg)
            c["cp -a"] = bl.timed_sh(f"cp -a {q} {bl.sh_quote(os.path.join(state, 'copy'))}", lg)
            c["curl upload"] = bl.timed_sh(upload_cmd(self.registry, "floor", holder["blob"], holder["digest"]), lg)
            c["streamed"] = bl.timed_sh(streamed_cmd(self.registry, "floor", tree, state), lg)
            return {"wall_s": c["streamed"], "components": c}

        self.run_scenario(1, prepare, measure, floor)

    def debian_floor(self, steps):
        def floor(state, lg):
            root = os.path.join(state, "rootfs")
            c = {"pull+extract": bl.timed_sh(fetch_extract_cmd(self.registry, "debian", "bookworm", root), lg)}
            cmds = [f"chroot {bl.sh_quote(root)} /bin/sh -c {bl.sh_quote(s)}" for s in steps]
            c[f"{len(steps)}x chroot sh -c"] = bl.timed_sh("\n".join(cmds), lg)
            return {"wall_s": round(sum(c.values()), 3), "components": c}
        return floor

    def s2(self):
        reg = self.registry.host
        ctx = {}

        def prepare():
            ctx["d"] = self.context("s2", f"FROM {reg}/debian:bookworm\nRUN echo hi > /hi\n")
            return {"base": "debian:bookworm minbase", "base_tar_bytes": os.path.getsize(self.debian_tar)}

        self.run_scenario(2, prepare, lambda t, s, lg, r: t.build(ctx["d"], f"{reg}/s2-{t.name}:r{r + 1}", s, lg),
                          self.debian_floor(["echo hi > /hi"]))

    STEPS = [f"echo step-{i} >> /etc/bench-steps" for i in range(1, 21)]

    def s3(self):
        reg = self.registry.host
        ctx = {}

        def prepare():
            ctx["d"] = self.context("s3", f"FROM {reg}/debian:bookworm\n" + "".join(f"RUN {s}\n" for s in self.STEPS))
            return {"base": "debian:bookworm minbase", "steps": len(self.STEPS)}

        self.run_scenario(3, prepare, lambda t, s, lg, r: t.build(ctx["d"], f"{reg}/s3-{t.name}:r{r + 1}", s, lg),
                          self.debian_floor(self.STEPS))

    def s4(self):
        reg = self.registry.host
        ctx = {}

        def prepare():
            ctx["d"] = self.context("s4", f"FROM {reg}/debian:bookworm\n" + "".join(f"RUN {s}\n" for s in self.STEPS))
            return {"dockerfile": "scenario 3's", "measured": "second build (and push) of the same context, "
                    "same storage; the first, cold build is in phases.cold_s"}

        def measure(tool, state, lg, r):
            dest = f"{reg}/s4-{tool.name}:r{r + 1}"
            if isinstance(tool, Buildah):
                cold = tool.build(ctx["d"], dest, state, lg, layers=True)
                warm = tool.build(ctx["d"], dest, state, lg, layers=True)
            else:
                # A local cache, like Buildah's --layers in its storage; kept in this run's state dir.
                if tool.has_cache_dir:
                    extra = ["--cache", "--cache-dir", os.path.join(state, "kiln-cache")]
                else:
                    extra = ["--cache"] + (["--cache-repo", f"{reg}/s4-kiln-cache"] if tool.has_cache_repo else [])
                cold = tool.build(ctx["d"], dest, state, lg, extra=extra)
                warm = tool.build(ctx["d"], dest, state, lg, extra=extra)
            warm["phases"]["cold_s"] = cold["wall_s"]
            return warm

        reason = None if self.kiln.has_cache else "kiln build has no --cache yet"
        self.run_scenario(4, prepare, measure, None, kiln_reason=reason)

    def s6(self):
        # Issue 8's comparison: a project whose Dockerfile copies its sources and builds; the build
        # is done cold, then again with nothing changed, then after one source file changed. The
        # measured figure is the last; the first two are in phases (cold_s, nochange_s).
        reg = self.registry.host
        ctx = {}
        df = (f"FROM {reg}/debian:bookworm\n"
              "RUN mkdir -p /opt/tools && seq 1 200000 > /opt/tools/table\n"
              "COPY src /src\n"
              "RUN find /src -type f | sort | xargs cat | sha256sum > /src.sum\n"
              "RUN echo built > /built\n")

        def prepare():
            ctx["d"] = self.context("s6", df)
            written, n = gentree.generate(os.path.join(ctx["d"], "src"), 40, 2000, seed=7)
            ctx["file"] = next(os.path.join(r, f) for r, _, fs in sorted(os.walk(os.path.join(ctx["d"], "src")))
                               for f in sorted(fs))
            return {"sources_mb": round(written / 1e6, 1), "sources_files": n,
                    "measured": "third build: one source file changed; phases.cold_s and nochange_s"}

        def measure(tool, state, lg, r):
            dest = f"{reg}/s6-{tool.name}:r{r + 1}"
            with open(ctx["file"], "w") as f:
                f.write(f"run {r} start\n")
            if isinstance(tool, Buildah):
                run = lambda: tool.build(ctx["d"], dest, state, lg, layers=True)  # noqa: E731
            else:
                extra = ["--cache", "--cache-dir", os.path.join(state, "kiln-cache")]
                run = lambda: tool.build(ctx["d"], dest, state, lg, extra=extra)  # noqa: E731
            cold = run()
            same = run()
            with open(ctx["file"], "a") as f:
                f.write("one line changed\n")
            changed = run()
            changed["phases"]["cold_s"] = cold["wall_s"]
            changed["phases"]["nochange_s"] = same["wall_s"]
            return changed

        reason = None if self.kiln.has_cache_dir else "kiln build has no --cache-dir yet"
        self.run_scenario(6, prepare, measure, None, kiln_reason=reason)

    def s5(self):
        reg = self.registry.host
        ctx = {}

        def prepare():
            t0 = time.monotonic()
            tars = [self.debian_tar]
            per = max(8, (self.a.big_mb - 110) // 3)
            for i in range(3):
                root = os.path.join(self.work, "inputs", f"big-layer{i + 1}")
                written, n = gentree.generate(os.path.join(root, "opt", f"layer{i + 1}"), per,
                                              max(1000, per * 40), seed=100 + i)
                tar = root + ".tar"
                bl.sh(f"tar --numeric-owner --sort=name -C {bl.sh_quote(root)} -cf {bl.sh_quote(tar)} .")
                tars.append(tar)
            raw = sum(os.path.getsize(t) for t in tars)
            packed = bl.push_layers_as_image(tars, os.path.join(self.work, "inputs", "big-oci"), "latest",
                                             f"{reg}/big:latest", self.logp("seed-big"))
            ctx["d"] = self.context("s5", f"FROM {reg}/big:latest\nRUN true\n")
            bl.log(f"  big image: {len(tars)} layers, {raw / 1048576:.0f} MiB raw, "
                   f"{packed / 1048576:.0f} MiB gzip, made in {time.monotonic() - t0:.1f}s")
            return {"layers": len(tars), "raw_bytes": raw, "compressed_bytes": packed,
                    "kiln_measures": "kiln build --no-push of FROM big + RUN true (pull, extract, one "
                                     "trivial RUN and its snapshot, no push)",
                    "buildah_measures": "buildah from (pull, extract into storage, create the container)"}

        def measure(tool, state, lg, r):
            if isinstance(tool, Buildah):
                return tool.pull_extract(f"{reg}/big:latest", state, lg)
            return tool.build(ctx["d"], "", state, lg, push=False)

        def floor(state, lg):
            root = os.path.join(state, "rootfs")
            t = bl.timed_sh(fetch_extract_cmd(self.registry, "big", "latest", root), lg)
            return {"wall_s": t, "components": {"curl|pigz -d|tar -x per layer": t}}

        self.run_scenario(5, prepare, measure, floor)

    def s7(self):
        reg = self.registry.host
        ctx = {}

        def prepare():
            ctx["d"] = self.context("s7", f"FROM {reg}/debian:bookworm\nRUN {S7_STEP}\n")
            return {"base": "debian:bookworm minbase", "step": S7_STEP,
                    "note": "kiln is tier 1 (rootless, identity mapping as root); kiln-ptrace runs the step traced"}

        self.run_scenario(7, prepare, lambda t, s, lg, r: t.build(ctx["d"], f"{reg}/s7-{t.name}:r{r + 1}", s, lg),
                          self.debian_floor([S7_STEP]))


    def s8(self):
        # apt's archives and lists behind cache mounts (docker-clean removed so apt keeps its downloads).
        reg = self.registry.host
        self.fresh_runner_scenario(8, lambda: self.context("s8", f"FROM {reg}/debian:bookworm\nARG BUST\n"
                                                                 "RUN rm -f /etc/apt/apt.conf.d/docker-clean\n" + S8_RUN),
                                   {"packages": S8_PKGS})

    def s9(self):
        reg = self.registry.host

        def context():
            d = self.context("s9", f"FROM {reg}/node:bench\nARG BUST\n"
                                   "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n"
                                   "WORKDIR /app\nCOPY package.json package-lock.json ./\n" + S9_RUN)
            for f in ("package.json", "package-lock.json"):
                bl.sh(f"cp {bl.sh_quote(os.path.join(S9_PROJECT, f))} {bl.sh_quote(d)}/", self.logp("s9-prepare"))
            return d
        self.fresh_runner_scenario(9, context, {"project": "bench/npm-project"})

    def fresh_runner_scenario(self, sid, make_context, details):
        # The measured figure is the third build: a fresh runner (new state dir, new Buildah storage).
        # kiln brings the cache mounts back from the registry (--cache --cache-repo); Buildah keeps
        # cache mounts on the machine only, so a fresh runner starts cold. The first (cold) and second
        # (same machine) builds are in phases. BUST changes each time so the cached step always runs.
        reg = self.registry.host
        ctx = {}

        def prepare():
            ctx["d"] = make_context()
            return dict(details, measured="third build, on a fresh runner; phases.cold_s (first build) and "
                        "same_machine_s (second, same state/storage)")

        def measure(tool, state, lg, r):
            dest = f"{reg}/s{sid}-{tool.name}:r{r + 1}"
            runner_b = os.path.join(state, "runner-b")
            os.makedirs(runner_b, exist_ok=True)
            if isinstance(tool, Buildah):
                run = lambda st, n: tool.build(ctx["d"], dest, st, lg, extra=["--build-arg", f"BUST={n}"])  # noqa: E731
            else:
                cache = ["--cache", "--cache-repo", f"{reg}/s{sid}-cache-{tool.name}-r{r + 1}"]
                run = lambda st, n: tool.build(ctx["d"], dest, st, lg,  # noqa: E731
                                               extra=cache + ["--build-arg", f"BUST={n}"])
            try:
                cold = run(state, 1)
                same = run(state, 2)
                fresh = run(runner_b, 3)
            finally:
                if isinstance(tool, Buildah):
                    tool.cleanup(runner_b)
            fresh["phases"]["cold_s"] = cold["wall_s"]
            fresh["phases"]["same_machine_s"] = same["wall_s"]
            return fresh

        self.run_scenario(sid, prepare, measure, None)


def tool_of(suite, name):
    for t in suite.tools(7):
        if t.name == name:
            return t
    return None


def ratios(entries):
    def med(n):
        e = entries.get(n)
        return e["wall_s"]["median"] if e and e.get("wall_s") else None
    k = med("kiln")
    out = {}
    for n in entries:
        if n != "kiln" and k and med(n):
            out[f"kiln/{n}"] = round(k / med(n), 2)
    return out


def main():
    ap = argparse.ArgumentParser(description="kiln vs Buildah benchmark suite (see bench/README.md)")
    ap.add_argument("--kiln", required=True, help="path of the kiln binary")
    ap.add_argument("--kiln-baseline", help="a second kiln binary measured side by side (before/after a change)")
    ap.add_argument("--quick", action="store_true", help="scenario 1 only, ~200 MB / 10,000 files, 1 run")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--scenarios", help="comma-separated list, e.g. 1,2,3,5 (default: all; --quick: 1)")
    ap.add_argument("--size-mb", type=int, help="scenario 1 tree size (default 1024; --quick 200)")
    ap.add_argument("--files", type=int, help="scenario 1 file count (default 50000; --quick 10000)")
    ap.add_argument("--big-mb", type=int, default=500, help="scenario 5 image size, uncompressed")
    ap.add_argument("--no-overlay", action="store_true", help="skip buildah's overlay driver")
    ap.add_argument("--workdir", help="parent of the fresh work directory (default /dev/shm if room)")
    ap.add_argument("--keep", action="store_true", help="keep run directories and the work dir")
    ap.add_argument("--results", default=os.path.join(bl.REPO, "bench", "results"))
    a = ap.parse_args()
    a.runs = a.runs or (1 if a.quick else 3)
    a.size_mb = a.size_mb or (200 if a.quick else 1024)
    a.files = a.files or (10000 if a.quick else 50000)
    a.scenarios = [int(x) for x in a.scenarios.split(",")] if a.scenarios else ([1] if a.quick else [1, 2, 3, 4, 5, 6, 7, 8, 9])
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (Buildah's chroot isolation, debootstrap, overlay mounts)")
    for tool in ("buildah", "skopeo", "docker-registry", "pigz", "curl", "debootstrap"):
        if subprocess.call(["sh", "-c", f"command -v {tool}"], stdout=subprocess.DEVNULL) != 0:
            sys.exit(f"bench: {tool} is missing (scripts/setup.sh installs it)")

    s = Suite(a)
    started = time.time()
    load0 = os.getloadavg()
    try:
        if not s.kiln.available:
            bl.log(f"kiln: n/a ({s.kiln.reason}); measuring everything else")
        s.seed()
        for sid in a.scenarios:
            getattr(s, f"s{sid}")()
    finally:
        s.registry.stop()
        if not a.keep:
            bl.remove_tree(s.work)
        else:
            bl.log(f"kept {s.work}")
    doc = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "params": {"runs": a.runs, "quick": a.quick, "scenarios": a.scenarios, "size_mb": a.size_mb,
                   "files": a.files, "big_mb": a.big_mb},
        "host": {"cpus": os.cpu_count(), "mem_available_kib": bl.mem_available_kib(), "kernel": platform.release(),
                 "loadavg_start": [round(x, 2) for x in load0],
                 "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                 "workdir": "tmpfs" if s.work.startswith("/dev/shm") else "disk"},
        "versions": {"kiln": s.kiln.version, "buildah": s.buildahs[0].version,
                     "kiln_baseline": s.baseline.version if s.baseline else None,
                     "kiln_build": s.kiln.available, "kiln_reason": s.kiln.reason},
        "scenarios": s.results,
    }
    os.makedirs(a.results, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    path = os.path.join(a.results, f"{stamp}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    md = report.markdown(doc)
    with open(os.path.join(a.results, f"{stamp}.md"), "w") as f:
        f.write(md)
    print(md)
    bl.log(f"results: {path} (total {doc['duration_s']:.0f}s)")


if __name__ == "__main__":
    main()
