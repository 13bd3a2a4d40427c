"""Turns bench results into Markdown tables (rows = operations, columns = tools, then ratios).

A ratio is "their / ours": above 1 means mailvault is faster (or smaller). "peer" is the better
of restic and borg for that operation and metric; "tar" is tar | zstd -3 -T0.
"""

OPS = [("full", "full backup"), ("incr", "incremental after --mutate"),
       ("noop", "no-op backup"), ("restore", "restore latest"),
       ("verify", "verify latest (restore to scratch + compare)"), ("check", "check, reading all data")]
PEERS = ("restic", "borg")

# Targets (bench/README.md), as minimum ratios (their / ours).
TIME_TARGETS = {"full": {"peer": 2.0, "tar": 1 / 1.2}, "incr": {"peer": 10.0},
                "noop": {"peer": 10.0}, "restore": {"peer": 1.7}}
MEMORY_TARGET = 2.0   # half the peak RSS of the better peer


def best(cell, metric):
    """Best (lowest) value of metric over a cell's samples; peak RSS takes the worst sample."""
    if not cell or cell.get("status") != "ok":
        return None
    values = [s[metric] for s in cell["samples"]]
    return max(values) if metric == "rss_mb" else min(values)


def _fmt(cell, metric):
    if cell is None or cell.get("status") == "n/a":
        return "–"
    if cell["status"] != "ok":
        return "**%s**" % cell["status"].upper() + (" (%s)" % cell["why"] if cell.get("why") else "")
    values = sorted(s[metric] for s in cell["samples"])
    fmt = "%.0f" if metric == "rss_mb" else "%.2f"
    lo, hi = fmt % values[0], fmt % values[-1]
    return lo if lo == hi else lo + "–" + hi


def _ratio(theirs, ours):
    if theirs is None or ours is None or ours <= 0:
        return None
    return theirs / ours


def _fmt_ratio(r, target=None):
    if r is None:
        return "–"
    text = "%.2fx" % r
    if target is not None:
        text += " %s (≥%.2fx)" % ("met" if r >= target else "MISSED", target)
    return text


def _peer_best(cells, metric):
    vals = [best(cells.get(p), metric) for p in PEERS]
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def metric_table(results, metric, title, targets):
    tools = results["tools"]
    labels = results["labels"]
    head = ["operation"] + [labels[t] for t in tools]
    head += ["vs better of restic/borg", "vs tar\\|zstd"] if "mailvault" in tools else []
    lines = ["### " + title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for op, op_label in OPS:
        cells = results["ops"].get(op, {})
        row = [op_label] + [_fmt(cells.get(t), metric) for t in tools]
        if "mailvault" in tools:
            ours = best(cells.get("mailvault"), metric)
            tgt = targets(op) if targets else {}
            row.append(_fmt_ratio(_ratio(_peer_best(cells, metric), ours), tgt.get("peer")))
            row.append(_fmt_ratio(_ratio(best(cells.get("tar"), metric), ours), tgt.get("tar")))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def size_table(results):
    tools = results["tools"]
    labels = results["labels"]
    lines = ["### Repository size (bytes on disk, du -sb)", "",
             "| after | " + " | ".join(labels[t] for t in tools) + " |",
             "|" + "---|" * (len(tools) + 1)]
    for key, label in (("full", "full backup"), ("incr", "incremental"), ("noop", "no-op")):
        row = []
        for t in tools:
            v = results["sizes"].get(t, {}).get(key)
            row.append("–" if v is None else "%.1f MB" % (v / 1e6))
        lines.append("| %s | %s |" % (label, " | ".join(row)))
    # Growth: what each backup added (metadata of a no-op backup is the whole point at scale).
    for key, prev, label in (("incr", "full", "added by the incremental"),
                             ("noop", "incr", "added by the no-op")):
        row = []
        for t in tools:
            s = results["sizes"].get(t, {})
            row.append("–" if s.get(key) is None or s.get(prev) is None
                       else "%.1f KB" % ((s[key] - s[prev]) / 1e3))
        lines.append("| %s | %s |" % (label, " | ".join(row)))
    row = [results["verify"].get(t, "–") for t in tools]
    lines.append("| restore verified | %s |" % " | ".join(row))
    return "\n".join(lines)


def corpus_line(cfg, c):
    if cfg.get("files"):
        return ("Corpus: `bench/gen_small.py --files %d --seed %d`, %d files, %.2f GB in vol/; then one "
                "`gen_small.py --mutate --seed 2` day before the incrementals." % (
                    cfg["files"], cfg.get("seed", 1), c["files"], c["bytes"] / 1e9))
    return ("Corpus: %d users x %d messages (seed %d), %d files, %.2f GB in vol/ (mail + data/main.db + "
            "dkim); then one `gen_maildir.py --mutate --seed 2` day before the incrementals." % (
                cfg["users"], cfg["messages"], cfg.get("seed", 1), c["files"], c["bytes"] / 1e9))


def markdown(results):
    c = results["corpus"]
    cfg = results["config"]
    head = [
        "## mailvault benchmark — %s" % results["started"],
        "",
        corpus_line(cfg, c),
        "Machine: %s, %d cores. Page cache **warm** (never dropped; the tree was read once before "
        "the first backup; `sync` before each operation, not counted). Each operation run %d time(s) per tool, tools alternating; ranges are "
        "min–max, ratios use the best run (peak RSS: the worst)." % (
            results["host"], results["cores"], cfg["repeat"]),
        "Versions: " + "; ".join("%s" % v for v in results["versions"].values()),
        "",
        "Ratios are theirs / ours: above 1x mailvault is faster or lighter. Targets: bench/README.md.",
        "",
    ]
    parts = [
        metric_table(results, "wall_s", "Wall seconds", lambda op: TIME_TARGETS.get(op, {})),
        metric_table(results, "cpu_s", "CPU seconds (user + sys, all processes)", None),
        metric_table(results, "rss_mb", "Peak RSS (MB, largest process)",
                     lambda op: {"peer": MEMORY_TARGET}),
        size_table(results),
    ]
    return "\n".join(head) + "\n" + "\n\n".join(parts) + "\n"
