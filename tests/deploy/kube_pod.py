#!/usr/bin/env python3
"""Runs one container of a Kubernetes Job manifest the way the kubelet would, with podrun.

What is taken from the manifest, with Kubernetes' semantics:
  - command/args: `command` replaces the image's Entrypoint, `args` its Cmd; $(VAR) refers to the
    container's env (earlier entries only), $$ escapes, unknown references stay as written;
  - env: the image's Env, then the container's env entries (literal values);
  - workingDir, else the image's WorkingDir;
  - volumeMounts of emptyDir (a fresh 0777 directory), secret (its items, defaultMode, fsGroup) and
    configMap volumes, readOnly mounts read-only;
  - securityContext (pod, overridden by container): runAsUser/runAsGroup (else the image's User or
    0), fsGroup as a supplementary group, runAsNonRoot (refused for uid 0, as the kubelet does),
    allowPrivilegeEscalation: false (no_new_privs), capabilities.drop ALL (else the runtime's
    default set), seccompProfile RuntimeDefault (no user namespaces without CAP_SYS_ADMIN),
    readOnlyRootFilesystem.
The image is an unpacked rootfs with its OCI config (--rootfs, --image-config), or, for images the
tests do not have (alpine/git), the host's /usr and /etc read-only (--host-image).

Usage:
  kube_pod.py --manifest JOB.yaml --container NAME --podrun BIN --scratch DIR
              (--rootfs DIR --image-config CONFIG.json | --host-image)
              [--secret SECRET.yaml]... [--configmap NAME=DIR]... [--volume-dir NAME=DIR]...
              [--set-env NAME=VALUE]... [--bind SRC:DST[:ro]]... [--print]
--set-env replaces the value of an env entry the container already declares (what a user edits
before `kubectl apply`); it refuses names the manifest does not have. --volume-dir uses DIR for an
emptyDir volume instead of a fresh one (so the test can put files in or look at them afterwards).
"""
import argparse
import json
import os
import re
import sys
import tempfile

import yaml


def fail(msg):
    print("kube_pod.py: " + msg, file=sys.stderr)
    sys.exit(2)


def expand(text, env):
    # Kubernetes' $(VAR) expansion: $$ is a literal $, unknown references are kept.
    def repl(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, text)


def find_job(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    jobs = [d for d in docs if d.get("kind") == "Job"]
    if len(jobs) != 1:
        fail("%s: expected exactly one Job, found %d" % (path, len(jobs)))
    return jobs[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--container", required=True)
    p.add_argument("--podrun", required=True)
    p.add_argument("--scratch", required=True)
    p.add_argument("--rootfs")
    p.add_argument("--image-config")
    p.add_argument("--host-image", action="store_true")
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--configmap", action="append", default=[])
    p.add_argument("--volume-dir", action="append", default=[])
    p.add_argument("--set-env", action="append", default=[])
    p.add_argument("--bind", action="append", default=[])
    p.add_argument("--print", action="store_true")
    a = p.parse_args()

    job = find_job(a.manifest)
    spec = job["spec"]["template"]["spec"]
    containers = spec.get("initContainers", []) + spec.get("containers", [])
    matches = [c for c in containers if c["name"] == a.container]
    if not matches:
        fail("no container %r in %s" % (a.container, a.manifest))
    c = matches[0]

    image = {}
    if a.image_config:
        with open(a.image_config) as f:
            image = json.load(f).get("config", {})

    # Environment: image first, then the container's entries (with $(VAR) over earlier ones).
    env = {}
    for kv in image.get("Env", []) or []:
        k, _, v = kv.partition("=")
        env[k] = v
    if a.host_image:
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    overrides = dict(kv.split("=", 1) for kv in a.set_env)
    declared = {e["name"] for e in c.get("env", [])}
    for name in overrides:
        if name not in declared:
            fail("--set-env %s: container %s declares no such env entry" % (name, a.container))
    for e in c.get("env", []):
        if "value" not in e:
            fail("env %s: only literal values are supported" % e["name"])
        value = overrides.get(e["name"], str(e["value"]))
        env[e["name"]] = expand(value, env)

    if "command" in c:
        argv = [expand(x, env) for x in c["command"]] + [expand(x, env) for x in c.get("args", [])]
    else:
        argv = list(image.get("Entrypoint") or []) + (
            [expand(x, env) for x in c["args"]] if "args" in c else list(image.get("Cmd") or []))
    if not argv:
        fail("container %s has no command" % a.container)

    sc = dict(spec.get("securityContext", {}))
    csc = c.get("securityContext", {})
    for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile"):
        if k in csc:
            sc[k] = csc[k]
    uid, gid = 0, 0
    user = image.get("User", "")
    if user:
        u, _, g = user.partition(":")
        if not u.isdigit() or (g and not g.isdigit()):
            fail("image User %r is not numeric" % user)
        uid = int(u)
        gid = int(g) if g else 0
    uid = sc.get("runAsUser", uid)
    gid = sc.get("runAsGroup", gid)
    if sc.get("runAsNonRoot") and uid == 0:
        fail("container %s has runAsNonRoot and would run as root" % a.container)
    fs_group = spec.get("securityContext", {}).get("fsGroup")

    flags = ["--uid", str(uid), "--gid", str(gid)]
    if fs_group is not None:
        flags += ["--groups", str(fs_group)]
    drops = csc.get("capabilities", {}).get("drop", [])
    if csc.get("privileged"):
        flags += ["--caps", "keep"]
    elif "ALL" in drops:
        flags += ["--caps", "none"]
    else:
        flags += ["--caps", "default"]
    if csc.get("allowPrivilegeEscalation") is False:
        flags.append("--no-new-privs")
    seccomp = sc.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if seccomp == "RuntimeDefault" and not csc.get("privileged"):
        flags.append("--no-userns")

    os.makedirs(a.scratch, exist_ok=True)
    rootfs = a.rootfs
    binds = []
    if a.host_image:
        rootfs = tempfile.mkdtemp(prefix="host-image.", dir=a.scratch)
        for d in ("usr", "etc"):
            binds.append("/%s:/%s:ro" % (d, d))
        for link in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink("/" + link):
                os.symlink("usr/" + link, os.path.join(rootfs, link))
        os.makedirs(os.path.join(rootfs, "tmp"), mode=0o1777, exist_ok=True)
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    if not rootfs:
        fail("give --rootfs or --host-image")
    if csc.get("readOnlyRootFilesystem"):
        binds.insert(0, rootfs + ":/:ro")
    binds += ["/proc:/proc", "/dev:/dev"]

    # Volumes.
    secrets = {}
    for path in a.secret:
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d and d.get("kind") == "Secret":
                    data = dict(d.get("stringData", {}))
                    secrets[d["metadata"]["name"]] = data
    configmaps = dict(kv.split("=", 1) for kv in a.configmap)
    volume_dirs = dict(kv.split("=", 1) for kv in a.volume_dir)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    host_dirs = {}
    for m in c.get("volumeMounts", []):
        name = m["name"]
        v = volumes.get(name)
        if v is None:
            fail("volumeMount %s names no volume" % name)
        if name not in host_dirs:
            if "emptyDir" in v:
                d = volume_dirs.get(name) or tempfile.mkdtemp(prefix="emptydir-%s." % name, dir=a.scratch)
                os.chmod(d, 0o777)
            elif "secret" in v:
                sname = v["secret"]["secretName"]
                if sname not in secrets:
                    fail("secret %s not given (--secret)" % sname)
                d = tempfile.mkdtemp(prefix="secret-%s." % name, dir=a.scratch)
                os.chmod(d, 0o755)
                mode = v["secret"].get("defaultMode", 0o644)
                items = v["secret"].get("items") or [{"key": k, "path": k} for k in secrets[sname]]
                for it in items:
                    fp = os.path.join(d, it["path"])
                    with open(fp, "w") as f:
                        f.write(secrets[sname][it["key"]])
                    os.chmod(fp, it.get("mode", mode))
                    if fs_group is not None:
                        os.chown(fp, 0, fs_group)
            elif "configMap" in v:
                cname = v["configMap"]["name"]
                if cname not in configmaps:
                    fail("configMap %s not given (--configmap)" % cname)
                d = configmaps[cname]
            else:
                fail("volume %s: unsupported type" % name)
            host_dirs[name] = d
        binds.append("%s:%s%s" % (host_dirs[name], m["mountPath"], ":ro" if m.get("readOnly") else ""))
    binds += a.bind
    # Mount points exist in an image before it is started read-only.
    for b in binds:
        src, dst = b.split(":")[:2]
        if dst == "/" or os.path.lexists(rootfs + dst):
            continue
        if os.path.isdir(src):
            os.makedirs(rootfs + dst)
        else:
            os.makedirs(os.path.dirname(rootfs + dst), exist_ok=True)
            open(rootfs + dst, "w").close()

    cmd = [a.podrun, "--rootfs", rootfs]
    for b in binds:
        cmd += ["--bind", b]
    cmd += flags
    workdir = c.get("workingDir") or image.get("WorkingDir") or ""
    if workdir:
        cmd += ["--workdir", workdir]
    for k, v in env.items():
        cmd += ["--env", "%s=%s" % (k, v)]
    cmd += ["--"] + argv
    if a.print:
        print(json.dumps(cmd))
    sys.stdout.flush()
    os.execv(a.podrun, cmd)


if __name__ == "__main__":
    main()
