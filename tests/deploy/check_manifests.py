#!/usr/bin/env python3
"""Checks deploy/kubernetes/*.yaml offline, with kubectl's own types, and what kiln relies on.

1. kubectl: `kubectl apply --dry-run=client --validate=false` when a cluster answers; without one
   (the usual case here) `kubectl set env --local -o json` decodes each Job into Kubernetes' typed
   objects (a wrong type fails) and re-encodes it: every field of the input must come back, so an
   unknown or misplaced field (which typed decoding drops) fails too.
2. What the Jobs must say for kiln: the registry secret is kubernetes.io/dockerconfigjson and is
   mounted at /kaniko/.docker with .dockerconfigjson as config.json; every $(VAR) in args/command is
   declared in env; the non-root Job runs as uid 1000 with runAsNonRoot, allowPrivilegeEscalation
   false, every capability dropped and seccomp RuntimeDefault, with kiln's state on a volume.

Usage: check_manifests.py DEPLOY_KUBERNETES_DIR
"""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

errors = []


def err(where, msg):
    errors.append("%s: %s" % (where, msg))


def subset(where, want, got, path="$"):
    """Every field of `want` is in `got` with the same value."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            err(where, "%s: kubectl turned an object into %r" % (path, got))
            return
        for k, v in want.items():
            if k not in got:
                err(where, "%s.%s: dropped by kubectl (unknown or misplaced field)" % (path, k))
            else:
                subset(where, v, got[k], path + "." + k)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) < len(want):
            err(where, "%s: list changed by kubectl" % path)
            return
        for i, v in enumerate(want):
            subset(where, v, got[i], "%s[%d]" % (path, i))
    elif str(want) != str(got):
        err(where, "%s: %r came back as %r" % (path, want, got))


def kubectl_check(path, docs):
    probe = subprocess.run(["kubectl", "apply", "--dry-run=client", "--validate=false", "-f", path],
                           capture_output=True, text=True)
    if probe.returncode == 0:
        return  # a cluster answered and accepted it
    for i, d in enumerate(docs):
        if d.get("kind") != "Job":
            continue
        one = os.path.join(os.environ.get("TMPDIR", "/tmp"), "kiln-manifest-%d-%d.yaml" % (os.getpid(), i))
        with open(one, "w") as f:
            yaml.safe_dump(d, f)
        r = subprocess.run(["kubectl", "set", "env", "--local", "-f", one, "KILN_MANIFEST_CHECK=1", "-o", "json"],
                           capture_output=True, text=True)
        os.unlink(one)
        if r.returncode != 0:
            err(path, "kubectl rejects it: " + r.stderr.strip())
            continue
        subset(path, d, json.loads(r.stdout))


def check_secret(path, d):
    if d.get("type") != "kubernetes.io/dockerconfigjson":
        err(path, "the registry secret must have type kubernetes.io/dockerconfigjson")
    data = d.get("stringData", {}).get(".dockerconfigjson")
    if data is None:
        err(path, "the registry secret has no .dockerconfigjson")
    else:
        try:
            if "auths" not in json.loads(data):
                err(path, ".dockerconfigjson has no auths")
        except ValueError as e:
            err(path, ".dockerconfigjson is not JSON: %s" % e)


def check_job(path, d):
    spec = d["spec"]["template"]["spec"]
    if spec.get("restartPolicy") not in ("Never", "OnFailure"):
        err(path, "a Job's pod needs restartPolicy Never or OnFailure")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    kiln = [c for c in spec.get("containers", []) if c["name"] == "kiln"]
    if len(kiln) != 1:
        err(path, "expected one container named kiln")
        return
    c = kiln[0]
    for cont in spec.get("initContainers", []) + spec.get("containers", []):
        declared = {e["name"] for e in cont.get("env", [])}
        for word in cont.get("command", []) + cont.get("args", []):
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", word):
                if ref not in declared:
                    err(path, "container %s: $(%s) is not declared in env" % (cont["name"], ref))
        for m in cont.get("volumeMounts", []):
            if m["name"] not in volumes:
                err(path, "container %s mounts unknown volume %s" % (cont["name"], m["name"]))
    creds = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/kaniko/.docker"]
    if len(creds) != 1:
        err(path, "the registry secret must be mounted at /kaniko/.docker")
    else:
        secret = volumes.get(creds[0]["name"], {}).get("secret")
        if not secret:
            err(path, "/kaniko/.docker must be a secret volume")
        elif {"key": ".dockerconfigjson", "path": "config.json"} not in secret.get("items", []):
            err(path, "the secret must map .dockerconfigjson to config.json")
        if not creds[0].get("readOnly"):
            err(path, "/kaniko/.docker should be mounted readOnly")
    args = c.get("args", [])
    if not any(a.startswith("--destination=") for a in args):
        err(path, "kiln has no --destination")
    if not any(a.startswith("--context=") for a in args):
        err(path, "kiln has no --context")
    psc = spec.get("securityContext", {})
    csc = c.get("securityContext", {})
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(path, "the pod should run with seccomp RuntimeDefault (what docs/deploy.md describes)")
    if psc.get("runAsNonRoot") or "nonroot" in os.path.basename(path):
        if not psc.get("runAsNonRoot") or psc.get("runAsUser") != 1000:
            err(path, "the non-root Job must set runAsNonRoot and runAsUser 1000")
        if csc.get("allowPrivilegeEscalation") is not False:
            err(path, "the non-root Job must set allowPrivilegeEscalation: false")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            err(path, "the non-root Job must drop ALL capabilities")
        state = [a for a in args if a.startswith("--state-dir=")]
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        if not state or state[0].split("=", 1)[1] not in mounts:
            err(path, "the non-root Job needs --state-dir on a writable volume")
    elif csc.get("privileged") or "SYS_ADMIN" in csc.get("capabilities", {}).get("add", []):
        err(path, "the default Job must not need privileges")


def main():
    files = sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml")))
    if not files:
        err(sys.argv[1], "no manifests")
    kinds = []
    for path in files:
        with open(path) as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d]
            except yaml.YAMLError as e:
                err(path, "not YAML: %s" % e)
                continue
        kubectl_check(path, docs)
        for d in docs:
            kinds.append(d.get("kind"))
            if d.get("kind") == "Secret":
                check_secret(path, d)
            elif d.get("kind") == "Job":
                check_job(path, d)
    if kinds.count("Job") < 2:
        err(sys.argv[1], "expected two Jobs (default and non-root)")
    for e in errors:
        print(e)
    print("%d manifests, %d problems" % (len(files), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
