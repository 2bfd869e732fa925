#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (run from anywhere).

Seeds are small valid inputs of each reader plus a few edge cases; libFuzzer mutates from there.
They are generated here rather than collected so that they are ours and reviewable; the output is
committed, so running the fuzzers needs neither Python nor the zstd tool. Re-run after editing:
    python3 fuzz/make_corpus.py
"""
import gzip
import io
import json
import pathlib
import shutil
import subprocess
import tarfile

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"
SHA = "sha256:" + "a" * 64
SHA2 = "sha256:" + "b" * 64


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


# ---------------------------------------------------------------- tar layers
def tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, extra) with kind file|dir|symlink|link|fifo; extra: data or link target."""
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=fmt)
    for e in entries:
        name, kind = e[0], e[1]
        extra = e[2] if len(e) > 2 else b""
        opts = e[3] if len(e) > 3 else {}
        ti = tarfile.TarInfo(name)
        ti.mtime = 1700000000
        ti.uid = opts.get("uid", 0)
        ti.gid = opts.get("gid", 0)
        ti.mode = opts.get("mode", 0o755 if kind == "dir" else 0o644)
        if "pax" in opts:
            ti.pax_headers = opts["pax"]
        data = None
        if kind == "file":
            data = extra if isinstance(extra, bytes) else extra.encode()
            ti.size = len(data)
        elif kind == "dir":
            ti.type = tarfile.DIRTYPE
        elif kind == "symlink":
            ti.type = tarfile.SYMTYPE
            ti.linkname = extra
        elif kind == "link":
            ti.type = tarfile.LNKTYPE
            ti.linkname = extra
        elif kind == "fifo":
            ti.type = tarfile.FIFOTYPE
        elif kind == "chr":
            ti.type = tarfile.CHRTYPE
            ti.devmajor, ti.devminor = 1, 3
        tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    end = tf.offset
    tf.close()
    return buf.getvalue()[: end + 1024]  # two zero blocks end the archive; drop the record padding


def zstd(data):
    if shutil.which("zstd") is None:
        return None
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE, check=True).stdout


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


BASIC = tar([
    ("etc", "dir"),
    ("etc/hostname", "file", "kiln\n"),
    ("etc/motd", "symlink", "hostname"),
    ("etc/motd.hard", "link", "etc/hostname"),
    ("run", "dir", b"", {"mode": 0o1777}),
    ("run/fifo", "fifo"),
    ("usr/bin/tool", "file", "#!/bin/sh\necho hi\n", {"mode": 0o4755, "uid": 1000, "gid": 1000}),
])
WHITEOUTS = tar([
    ("etc", "dir"),
    ("etc/.wh.hostname", "file", ""),
    ("var/lib", "dir"),
    ("var/lib/.wh..wh..opq", "file", ""),
    ("var/lib/new", "file", "new\n"),
])
PAX = tar([
    ("a" * 120 + "/" + "b" * 120, "file", "long name\n"),
    ("x", "file", "xattrs\n", {"pax": {"SCHILY.xattr.user.note": "hello", "mtime": "1700000000.5"}}),
    ("dev/null", "chr"),
], fmt=tarfile.PAX_FORMAT)
GNU = tar([("gnu/" + "c" * 150, "file", "gnu long name\n"), ("gnu/l", "symlink", "d" * 150)], fmt=tarfile.GNU_FORMAT)
HOSTILE = [
    ("traversal", tar([("../outside/pwned", "file", "x")])),
    ("absolute", tar([("/etc/kiln-fuzz-abs", "file", "x")])),
    ("symlink_escape", tar([("up", "symlink", "../outside"), ("up/pwned", "file", "x")])),
    ("symlink_abs", tar([("root", "symlink", "/"), ("root/tmp/kiln-fuzz-pwn", "file", "x")])),
    ("hardlink_escape", tar([("h", "link", "../outside/sentinel")])),
    ("whiteout_dotdot", tar([(".wh...", "file", ""), ("d/.wh...", "file", "")])),
    ("opaque_under_symlink", tar([("lnk", "symlink", "../outside"), ("lnk/.wh..wh..opq", "file", "")])),
    ("replace_dir_by_symlink", tar([("d", "dir"), ("d/f", "file", "1"), ("d", "symlink", ".."), ("d/f", "file", "2")])),
]

for name, data in [("basic", BASIC), ("whiteouts", WHITEOUTS), ("pax", PAX), ("gnu", GNU)] + HOSTILE:
    write("extract", name + ".tar", data)
write("extract", "basic.tar.gz", gz(BASIC))
write("extract", "whiteouts.tar.gz", gz(WHITEOUTS))
if (z := zstd(BASIC)) is not None:
    write("extract", "basic.tar.zst", z)
write("extract", "truncated.tar", BASIC[:700])
write("extract", "truncated.tar.gz", gz(BASIC)[:-20])
write("extract", "empty.tar", b"\0" * 1024)

# ---------------------------------------------------------------- decompression
TEXT = b"kiln layer bytes\n" * 40
write("decompress", "plain", TEXT)
write("decompress", "gzip", gz(TEXT))
write("decompress", "gzip_members", gz(TEXT[:100]) + gz(TEXT[100:]))
write("decompress", "gzip_truncated", gz(TEXT)[:30])
write("decompress", "gzip_header_only", b"\x1f\x8b")
if (z := zstd(TEXT)) is not None:
    write("decompress", "zstd", z)
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"skip"
    write("decompress", "zstd_skippable", skippable + z + zstd(b"second frame"))
    write("decompress", "zstd_truncated", z[: len(z) // 2])
write("decompress", "zstd_magic_only", b"\x28\xb5\x2f\xfd")
write("decompress", "empty", b"")

# ---------------------------------------------------------------- image model
def desc(mt, digest=SHA, size=123, **kw):
    d = {"mediaType": mt, "digest": digest, "size": size}
    d.update(kw)
    return d


OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
D_M = "application/vnd.docker.distribution.manifest.v2+json"
D_L = "application/vnd.docker.distribution.manifest.list.v2+json"
docs = {
    "oci_manifest": {"schemaVersion": 2, "mediaType": OCI_M,
                     "config": desc("application/vnd.oci.image.config.v1+json"),
                     "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", SHA2, 456),
                                desc("application/vnd.oci.image.layer.v1.tar+zstd", SHA, 7)],
                     "annotations": {"org.opencontainers.image.source": "https://example.invalid/x"}},
    "oci_manifest_no_media_type": {"schemaVersion": 2,
                                   "config": desc("application/vnd.oci.image.config.v1+json"), "layers": []},
    "docker_manifest": {"schemaVersion": 2, "mediaType": D_M,
                        "config": desc("application/vnd.docker.container.image.v1+json"),
                        "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", SHA2, 99,
                                        urls=["https://example.invalid/l"])]},
    "artifact": {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": "application/vnd.example+type",
                 "config": desc("application/vnd.oci.empty.v1+json", size=2),
                 "layers": [], "subject": desc(OCI_M, SHA2, 500)},
    "oci_index": {"schemaVersion": 2, "mediaType": OCI_I, "manifests": [
        desc(OCI_M, SHA, 500, platform={"os": "linux", "architecture": "amd64"}),
        desc(OCI_M, SHA2, 501, platform={"os": "linux", "architecture": "arm64", "variant": "v8",
                                         "os.features": ["x"], "os.version": "1"}),
        desc(OCI_M, SHA, 10, annotations={"vnd.docker.reference.type": "attestation-manifest"},
             platform={"os": "unknown", "architecture": "unknown"})]},
    "docker_list": {"schemaVersion": 2, "mediaType": D_L, "manifests": [
        desc(D_M, SHA, 500, platform={"os": "linux", "architecture": "arm", "variant": "v7"})]},
    "image_config": {"created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
                     "config": {"User": "1000:1000", "Env": ["PATH=/usr/bin", "A=b"], "Entrypoint": ["/bin/app"],
                                "Cmd": None, "WorkingDir": "/app", "Labels": {"k": "v"},
                                "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
                                "StopSignal": "SIGTERM", "OnBuild": ["RUN make"], "Shell": ["/bin/sh", "-c"],
                                "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000,
                                                "Retries": 3}},
                     "rootfs": {"type": "layers", "diff_ids": [SHA, SHA2]},
                     "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "RUN make"},
                                 {"created_by": "ENV A=b", "empty_layer": True}]},
    "image_config_minimal": {"architecture": "arm64", "variant": "v8", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}},
}
for name, doc in docs.items():
    write("image_model", name + ".json", json.dumps(doc, indent=1))
write("image_model", "schema1.json", '{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}')
write("image_model", "bad_digest.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_M,
      "config": desc("application/vnd.oci.image.config.v1+json", "sha256:XYZ"), "layers": []}))
write("image_model", "huge_size.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_M,
      "config": desc("application/vnd.oci.image.config.v1+json", size=1e300), "layers": []}))
write("image_model", "platform", "linux/arm64/v8")

# ---------------------------------------------------------------- registry auth
for i, h in enumerate([
    'Bearer realm="https://auth.example/token",service="reg.example",scope="repository:library/x:pull"',
    'Basic realm="Registry Realm"',
    'Basic realm="r", Bearer realm=https://auth.example/t , service="s", error="invalid_token"',
    'Bearer realm="https://auth.example/token",scope="repository:a:pull repository:b:pull,push"',
    'Bearer realm="a\\"b\\\\", scope=""',
    'Negotiate',
    'Bearer realm="https://reg.example/v2/token"',
    'Bearer ,,, realm=',
]):
    write("www_authenticate", f"h{i}", h)
for i, b in enumerate([
    '{"token":"abc","expires_in":300,"issued_at":"2024-01-02T03:04:05Z"}',
    '{"access_token":"abc","expires_in":60,"refresh_token":"r"}',
    '{"token":"abc","access_token":"def"}',
    '{"token":"abc","expires_in":-5}',
    '{"token":"abc","expires_in":9223372036854775807}',
    '{"token":"abc","expires_in":1e300}',
    '{"token":""}',
    '{"token":42}',
    '[]',
    'not json',
]):
    write("token_response", f"t{i}", b)

# ---------------------------------------------------------------- credentials
for name, doc in {
    "auth": {"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                       "r.example:5000": {"username": "u", "password": "p"}}},
    "tokens": {"auths": {"ghcr.io": {"identitytoken": "refresh"}, "localhost": {"registrytoken": "bearer"}}},
    "helpers": {"auths": {"ghcr.io": {}}, "credHelpers": {"ghcr.io": "gh", "https://r.example:5000/v2/": "r"},
                "credsStore": "desktop"},
    "nulls": {"auths": None, "credHelpers": None, "credsStore": None, "HttpHeaders": {"X": "y"}},
    "bad_base64": {"auths": {"docker.io": {"auth": "***"}}},
    "no_colon": {"auths": {"docker.io": {"auth": "dXNlcg=="}}},
    "bad_helper_name": {"credsStore": "../x"},
}.items():
    write("docker_config", name + ".json", json.dumps(doc))
write("docker_config", "not_object.json", "[1,2]")
for name, out in {
    "password": '{"ServerURL":"https://index.docker.io/v1/","Username":"u","Secret":"s"}',
    "identity_token": '{"ServerURL":"ghcr.io","Username":"<token>","Secret":"refresh"}',
    "empty": '{}',
    "wrong_types": '{"Username":1,"Secret":["s"]}',
    "not_json": 'credentials not found in native keychain',
    "trailing": '{"Username":"u","Secret":"s"}\n',
}.items():
    write("cred_helper", name, out)

# ---------------------------------------------------------------- .dockerignore
write("dockerignore", "typical", "# comment\n.git\nnode_modules\n**/*.log\n!important.log\n/build/\n*.tmp\n")
write("dockerignore", "classes", "[a-c]*.txt\n[^x]?\nfoo\\*bar\n**\n!**/keep\n  spaced  \n")
write("dockerignore", "edge", "!\n[\n\\\n../x\n./a/../b\n/\n**/**/**/*\n")

# ---------------------------------------------------------------- Dockerfiles
DOCKERFILES = {
    "simple": "FROM alpine:3.19\nRUN apk add --no-cache curl\nCOPY . /src\nWORKDIR /src\nCMD [\"./run\"]\n",
    "multistage": ("ARG BASE=debian:12\nFROM ${BASE} AS build\nARG VERSION\nRUN --mount=type=cache,target=/root/.cache "
                   "make VERSION=$VERSION\nFROM scratch\nCOPY --from=build --chown=1:1 /out /\n"
                   "COPY --from=build --chmod=0755 /bin/tool /bin/\nENTRYPOINT [\"/tool\"]\n"),
    "heredocs": ("# syntax=docker/dockerfile:1\nFROM alpine AS b\nRUN <<EOF\necho hi\nEOF\n"
                 "COPY <<-\"X\" /y\n\tz\n\tX\nRUN <<A cat >/a && <<B cat >/b\na\nA\nb\nB\n"),
    "escape": "# escape=`\nARG V=1\nFROM x:${V:-2}\nENV a=\"b c\" d=e\nRUN echo `\n  continued\n"
              "HEALTHCHECK --interval=5s --timeout=1m30s CMD true\n",
    "onbuild": "FROM a AS p\nONBUILD RUN <<EOF\nx\nEOF\nONBUILD COPY --from=0 a b\nFROM p\nCMD\n",
    "everything": ("# check=skip=JSONArgsRecommended\nFROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n"
                   "LABEL a=b \"c d\"=e\nEXPOSE 80/tcp 53/udp ${PORT:-8080}\nENV API_TOKEN=x\nUSER 1000:1000\n"
                   "VOLUME [\"/data\"]\nSTOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nMAINTAINER me\n"
                   "ADD --checksum=sha256:" + "a" * 64 + " https://example.invalid/x.tgz /x\n"
                   "ADD --keep-git-dir=true https://example.invalid/r.git /r\n"
                   "RUN --mount=type=secret,id=npm,target=/root/.npmrc --mount=type=bind,from=Build,source=/s "
                   "--network=none --security=insecure true\n"
                   "COPY --link --parents --exclude=*.md src/ /dst/\nARG TARGETARCH\nFROM build\n"
                   "HEALTHCHECK NONE\nENTRYPOINT exec app\n"),
    "cycle": "FROM b AS a\nFROM a AS b\nCOPY --from=c / /\nFROM scratch AS c\nCOPY --from=b / /\n",
    "bad": "RUN before from\nFROM\nCOPY --from= a\nFROM a AS 1bad\nRUN [\"unterminated\"\n",
    "global_args": "ARG A=1 B=${A}2\nARG C\nFROM img:${B}${C:+-c} AS s${A}\nARG A\nRUN echo $A\nFROM s1\n",
}
for name, text in DOCKERFILES.items():
    write("dockerfile", name, text)
    write("plan", name, text)
write("dockerfile", "continuation_eof", "FROM a\nRUN a \\\n")
write("plan", "target_index", "FROM a\nFROM b\nCOPY --from=0 / /\nCOPY --from=5 / /\n")

# shell_expand: the first byte picks the escape and lexer options (bit 0: backtick, 1: raw quotes,
# 2: raw escapes, 3: skip unset).
for i, (mode, word) in enumerate([
    (0, "$A ${A} ${A:-x} ${U-y} ${A:+z} ${E+w}"),
    (0, "${P#*/} ${P##*/} ${P%/*} ${P%%/*} ${P/usr/opt} ${P//l/L}"),
    (0, "'single $A' \"double $A \\\" ${Q}\" \\$A"),
    (1, "`$A ${A:?must be set} \"q`\"\""),
    (8, "${UNSET} $UNSET ${UNSET:-d}"),
    (6, "\"raw ${X}\" 'kept' \\n"),
    (0, "${A"),
    (0, "${A:?}"),
    (0, "${}"),
    (0, "${LONG//x/yy}"),
]):
    write("shell_expand", f"w{i}", bytes([mode]) + word.encode())

# ---------------------------------------------------------------- package databases (--sbom)
# The first byte picks the reader: 0 dpkg, 1 apk, 2 npm lockfile, 3 SPDX, 4 RPM header, 5 rpmdb.sqlite.
import struct


def rpm_header(entries):
    index, data = b"", b""
    for tag, typ, value in entries:
        index += struct.pack(">IIII", tag, typ, len(data), 1)
        data += value
    return struct.pack(">II", len(entries), len(data)) + index + data


write("package_db", "dpkg", b"\x00Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2-1\n\n"
      b"Package: x\nVersion: 1\n")
write("package_db", "apk", b"\x01P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36\n")
write("package_db", "npm", b"\x02" + json.dumps({"lockfileVersion": 3, "packages": {
    "": {"name": "app"}, "node_modules/a": {"version": "1.0.0", "license": "MIT"},
    "node_modules/@s/b": {"version": "2.0.0"}, "node_modules/l": {"link": True}}}).encode())
write("package_db", "spdx", b"\x03" + json.dumps({"spdxVersion": "SPDX-2.3", "documentDescribes": ["SPDXRef-I"],
    "packages": [{"name": "i", "SPDXID": "SPDXRef-I"},
                 {"name": "zlib", "SPDXID": "SPDXRef-Z", "versionInfo": "1.3", "externalRefs": [
                     {"referenceType": "purl", "referenceLocator": "pkg:apk/alpine/zlib@1.3"}]}]}).encode())
write("package_db", "rpm_header", b"\x04" + rpm_header([(1000, 6, b"bash\0"), (1003, 4, b"\0\0\0\1"),
                                                        (1001, 6, b"5.1\0"), (1002, 6, b"1.el9\0"),
                                                        (1022, 6, b"x86_64\0")]))
write("package_db", "sqlite_magic", b"\x05SQLite format 3\0" + b"\x10\x00\x02\x02" + b"\0" * 80)
print("corpora written to", ROOT)
