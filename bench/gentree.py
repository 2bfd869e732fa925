#!/usr/bin/env python3
"""Generates a deterministic directory tree that looks like an application's files.

    gentree.py DIR --size-mb 1024 --files 50000 [--seed 1]

Sizes follow what source trees and node_modules/site-packages look like: most files are small
(log-normal around 3 KiB, a few hundred bytes to a couple of hundred KiB) and about 1% are large
(hundreds of KiB to several MiB: bundles, binaries, assets) and carry most of the bytes. Half the
bytes are random (incompressible, like compressed assets and binaries), half are text made of
words (compresses ~3x, like source). Directories are 2-4 levels deep with ~20 entries each, and
there are a few symlinks and empty directories. The same arguments give the same tree, byte for
byte, so every builder in a run reads identical input.
"""
import argparse
import math
import os
import random
import sys

WORDS = (
    "the of and to in is for on that with as by this be are from at or it an not was which have "
    "function return const let var if else while for import export class struct namespace int "
    "string value error result config include define public private static void true false null "
    "package module require self def lambda yield async await try catch throw new delete buffer "
    "request response server client token header layer image build cache index digest manifest"
).split()


LARGE_CAP = 16 * 1024 * 1024


def text_pool(rng, size):
    """A block of word-salad text with line breaks; files take slices of it."""
    out = []
    n = 0
    line = []
    while n < size:
        w = WORDS[rng.randrange(len(WORDS))]
        line.append(w)
        n += len(w) + 1
        if len(line) >= rng.randrange(4, 14):
            out.append(" ".join(line))
            line = []
    return ("\n".join(out) + "\n").encode()[:size]


def text_slice(pool, off, size):
    """size bytes of pool starting at off, wrapping around (without copying the whole pool)."""
    out = bytearray()
    while len(out) < size:
        take = min(size - len(out), len(pool) - off)
        out += pool[off:off + take]
        off = 0
    return bytes(out)


def file_sizes(rng, files, total):
    """files sizes summing to ~total: 99% small log-normal, 1% large filling the remainder."""
    n_large = max(1, files // 100)
    n_small = files - n_large
    small = [min(256 * 1024, max(0, int(rng.lognormvariate(math.log(3000), 1.3)))) for _ in range(n_small)]
    remaining = max(n_large, total - sum(small))
    # Large files: Pareto-ish weights, so a few are several MiB and most are hundreds of KiB.
    weights = [rng.paretovariate(1.2) for _ in range(n_large)]
    # Scale to the remainder, capping single files at 16 MiB and spreading what the cap cut off.
    large = [0] * n_large
    for _ in range(8):
        free = [i for i in range(n_large) if large[i] < LARGE_CAP]
        left = remaining - sum(large)
        if left <= 0 or not free:
            break
        scale = left / sum(weights[i] for i in free)
        for i in free:
            large[i] = min(LARGE_CAP, large[i] + max(1, int(weights[i] * scale)))
    sizes = small + large
    rng.shuffle(sizes)
    return sizes


def generate(root, size_mb, files, seed):
    rng = random.Random(seed)
    total = size_mb * 1024 * 1024
    sizes = file_sizes(rng, files, total)
    pool = text_pool(rng, 8 * 1024 * 1024)
    # Directory skeleton: ~20 entries per directory, 2-4 levels.
    n_dirs = max(1, files // 20)
    dirs = []
    for i in range(n_dirs):
        depth = rng.randrange(2, 5)
        parts = [f"d{rng.randrange(0, 8 ** (k + 1)) % 64:02d}" for k in range(depth - 1)]
        dirs.append(os.path.join(*parts, f"pkg{i:05d}"))
    os.makedirs(root, exist_ok=True)
    made = set()
    written = 0
    for i, size in enumerate(sizes):
        d = dirs[i % n_dirs]
        if d not in made:
            os.makedirs(os.path.join(root, d), exist_ok=True)
            made.add(d)
        ext = (".js", ".py", ".h", ".cc", ".json", ".txt", ".bin", ".png")[rng.randrange(8)]
        path = os.path.join(root, d, f"f{i:06d}{ext}")
        if rng.random() < 0.5:
            data = rng.randbytes(size)
        else:
            data = text_slice(pool, rng.randrange(0, len(pool)), size)
        with open(path, "wb") as f:
            f.write(data)
        # Deterministic times too, so tar streams (and the floors) are identical between runs.
        os.utime(path, (1700000000 + i, 1700000000 + i))
        written += size
    for k in range(min(200, files // 250 + 1)):
        d = os.path.join(root, dirs[rng.randrange(n_dirs)])
        os.makedirs(d, exist_ok=True)
        link = os.path.join(d, f"link{k:03d}")
        if not os.path.lexists(link):
            os.symlink(f"f{rng.randrange(len(sizes)):06d}.js", link)
        os.makedirs(os.path.join(root, "empty", f"e{k:03d}"), exist_ok=True)
    return written, len(sizes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    written, n = generate(a.dir, a.size_mb, a.files, a.seed)
    print(f"gentree: {a.dir}: {n} files, {written / 1048576:.0f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
