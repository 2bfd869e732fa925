#!/usr/bin/env python3
"""Fails when a module includes a header of a module it must not depend on, or when a product
source file is longer than MAX_LINES (a file that long usually holds two ideas: split it by job).

Dependencies point one way:
  core <- dockerfile, sandbox, layers, snapshot, registry   (leaf modules: each on core only)
  executor/policy on core and dockerfile only; pipeline and cmd use it
  executor/tree (image trees: pure text and files) on core only; cmd uses it
       <- executor/log <- executor/steps <- executor/cache <- executor/image <- executor/pipeline <- cmd
registry does not see layers: image stores meet in core's ImageSource/ImageSink, and only the
executor's image/locations.cc knows every kind. A module may include its own headers and those of the
modules listed for it below.
"""
import pathlib
import re
import sys

LEAVES = {"core", "executor/dockerfile", "executor/sandbox", "layers", "snapshot", "registry"}
ALLOWED = {
    "core": {"core"},
    "executor/dockerfile": {"core", "executor/dockerfile"},
    "executor/sandbox": {"core", "executor/sandbox"},
    "layers": {"core", "layers"},
    "snapshot": {"core", "snapshot"},
    "registry": {"core", "registry"},
    "executor/log": {"core", "executor/log"},
    "executor/policy": {"core", "executor/dockerfile", "executor/policy"},
    "executor/tree": {"core", "executor/tree"},
    "executor/steps": LEAVES | {"executor/log", "executor/steps"},
    "executor/cache": LEAVES | {"executor/log", "executor/steps", "executor/cache"},
    "executor/image": LEAVES | {"executor/log", "executor/cache", "executor/image"},
    "executor/pipeline": LEAVES | {"executor/log", "executor/steps", "executor/cache", "executor/image",
                                   "executor/policy", "executor/pipeline"},
    # Nothing may live directly in executor/: every file belongs to one of its folders.
    "executor": set(),
    "cmd": LEAVES | {"executor/log", "executor/steps", "executor/cache", "executor/image", "executor/pipeline",
                     "executor/policy", "executor/tree", "cmd"},
}
# Product sources (not tests, benchmarks or fuzz targets) under these roots are held to MAX_LINES.
SIZED_ROOTS = ("core", "layers", "registry", "snapshot", "executor", "cmd")
MAX_LINES = 600
MODULES = sorted(ALLOWED, key=len, reverse=True)  # longest prefix first: executor/dockerfile before executor
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(rel: str):
    for m in MODULES:
        if rel == m or rel.startswith(m + "/"):
            return m
    return None


def is_product_source(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return (rel.split("/", 1)[0] in SIZED_ROOTS and not name.endswith(("_test.cc", "_fuzz.cc", "_bench.cc")))


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    bad = []
    too_long = []
    checked = 0
    for src in sorted(root.glob("**/*")):
        if src.suffix not in (".h", ".cc") or "build" in src.relative_to(root).parts[0]:
            continue
        rel = src.relative_to(root).as_posix()
        owner = module_of(rel)
        if owner is None:
            continue  # tests, bench: may include anything
        checked += 1
        text = src.read_text(errors="replace")
        if is_product_source(rel):
            lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            if lines > MAX_LINES:
                too_long.append(f"{rel}: {lines} lines (at most {MAX_LINES}); split it by job")
        if owner == "executor":
            bad.append(f"{rel}: lives directly in executor/; put it in one of executor's folders")
            continue
        for inc in INCLUDE.findall(text):
            target = module_of(inc)
            if target is not None and target not in ALLOWED[owner]:
                bad.append(f"{rel}: includes \"{inc}\" but {owner} may not depend on {target}")
    for line in bad + too_long:
        print(line)
    print(f"checked {checked} files: {len(bad)} forbidden includes, {len(too_long)} files over {MAX_LINES} lines")
    return 1 if bad or too_long else 0


if __name__ == "__main__":
    sys.exit(main())
