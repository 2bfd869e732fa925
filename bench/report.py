"""Markdown tables from a bench/suite.py result document (also: `report.py RESULT.json`)."""
import json
import statistics
import sys

COLUMNS = ["kiln", "buildah-vfs", "buildah-overlay", "floor"]


def cell(e):
    if e is None:
        return "—"
    if e.get("status") == "n/a":
        return f"n/a ({e.get('reason')})"
    if e.get("status") == "failed" and not e.get("wall_s"):
        fr = e.get("failed_run") or {}
        how = f" after {fr['wall_s']:.1f} s" if fr.get("wall_s") else ""
        how += f", {fr['rss_kib'] / 1024:.0f} MiB" if fr.get("rss_kib") else ""
        return f"failed{how}: " + " ".join(e.get("reason", "").split())[:100].replace("|", "\\|")
    w = e["wall_s"]
    s = f"{w['median']:.2f} s" if w["n"] == 1 else f"{w['median']:.2f} s ({w['min']:.2f}–{w['max']:.2f})"
    if e.get("peak_rss_mib"):
        s += f", {e['peak_rss_mib']:.0f} MiB"
    if e.get("status") == "failed":
        s += " (later run failed)"
    return s


def markdown(doc):
    p = doc["params"]
    h = doc["host"]
    out = [f"## kiln benchmark, {doc['timestamp']}", "",
           f"{h['cpus']} CPUs, kernel {h['kernel']}, work dir on {h['workdir']}, "
           f"load average {h['loadavg_start'][0]} at start, {h['loadavg_end'][0]} at end; "
           f"{p['runs']} run(s) per tool, median (min–max), peak RSS of the largest process. "
           f"kiln: {doc['versions']['kiln'] or 'n/a'}; {doc['versions']['buildah']}.", ""]
    baseline = any("kiln-baseline" in s["tools"] for s in doc["scenarios"])
    columns = COLUMNS[:1] + (["kiln-baseline"] if baseline else []) + COLUMNS[1:]
    ratio_keys = (["kiln/kiln-baseline"] if baseline else []) + ["kiln/buildah-vfs", "kiln/buildah-overlay", "kiln/floor"]
    out.append("| scenario | " + " | ".join(columns) + " | " + " | ".join(ratio_keys) + " |")
    out.append("|---" * (len(columns) + len(ratio_keys) + 1) + "|")
    for s in doc["scenarios"]:
        t = s["tools"]
        r = s["ratios"]
        out.append(f"| {s['id']}. {s['name']} | " + " | ".join(cell(t.get(c)) for c in columns) + " | " +
                   " | ".join(f"{r[k]:.2f}" if k in r else "—" for k in ratio_keys) + " |")
    floors = [(s, s["tools"]["floor"]) for s in doc["scenarios"] if s["tools"].get("floor", {}).get("components")]
    if floors:
        out += ["", "Floor components (median s; the scenario's floor is *streamed* for 1, the sum otherwise):", "",
                "| scenario | component | median (s) | min–max |", "|---|---|---|---|"]
        for s, f in floors:
            for k, v in f["components"].items():
                k = k.replace("|", "\\|")  # a pipe in a Markdown cell ends it
                out.append(f"| {s['id']} | {k} | {v['median']:.2f} | {v['min']:.2f}–{v['max']:.2f} |")
    tiers = [s for s in doc["scenarios"] if "kiln-ptrace" in s["tools"]]
    if tiers:
        out += ["", "Sandbox tiers (scenario 7: the same build with each RUN tier forced):", "",
                "| tier | wall | vs kiln (tier 1) | vs floor |", "|---|---|---|---|"]
        for s in tiers:
            t = s["tools"]
            base = (t.get("kiln") or {}).get("wall_s")
            floor = (t.get("floor") or {}).get("wall_s")
            for name in ("kiln", "kiln-chroot", "kiln-ptrace"):
                e = t.get(name)
                w = (e or {}).get("wall_s")
                rel = f"{w['median'] / base['median']:.2f}" if w and base else "—"
                rf = f"{w['median'] / floor['median']:.2f}" if w and floor else "—"
                out.append(f"| {name} | {cell(e)} | {rel} | {rf} |")
    phase_rows = []
    for s in doc["scenarios"]:
        for name, e in s["tools"].items():
            per = {}
            for run in e.get("runs", []):
                for k, v in run.get("phases", {}).items():
                    per.setdefault(k, []).append(v)
            if len(per) > 1:
                phase_rows.append(f"- {s['id']} {name}: " + ", ".join(
                    f"{k} {statistics.median(v):.2f}" for k, v in per.items() if max(v) > 0))
    if phase_rows:
        out += ["", "Phases (median s; kiln's are its own summary line, Buildah's are bud and push):", ""]
        out += phase_rows
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(markdown(json.load(f)))
