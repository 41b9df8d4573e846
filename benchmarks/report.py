"""The benchmark report (``docs/benchmarks.md``) from the raw figures of one run of ``python -m benchmarks``."""

from __future__ import annotations

import statistics
from typing import Any

GB = 1e9
MIB = 2**20


def _median(results: list[dict[str, Any]], name: str) -> float:
    return float(statistics.median(r[name] for r in results))


def _spread(results: list[dict[str, Any]], name: str, fmt: str = "{:,.0f}") -> str:
    values = sorted(r[name] for r in results)
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(values[0])}–{fmt.format(values[-1])})"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _runs_of(match: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of (b): a list since (b) runs ``--runs`` times; one dict in results of older runs."""
    return match if isinstance(match, list) else [match]


def _row_values(match: dict[str, Any] | list[dict[str, Any]], variant: str, category: str) -> list[float]:
    """The variant's µs per read on the category, one value a run (each the median of its passes)."""
    return [
        float(row["us_per_read"])
        for run in _runs_of(match)
        for row in run["rows"]
        if row["variant"] == variant and row["category"] == category
    ]


def _row(match: dict[str, Any] | list[dict[str, Any]], variant: str, category: str) -> float | None:
    """The median over the runs of (b), or None when the variant was not measured on the category."""
    values = _row_values(match, variant, category)
    return float(statistics.median(values)) if values else None


def _row_spread(match: dict[str, Any] | list[dict[str, Any]], variant: str, category: str) -> str:
    values = sorted(_row_values(match, variant, category))
    if len(values) < 2:
        return ""
    return f" ({values[0]:.2f}–{values[-1]:.2f})"


def targets(f: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, measured, ratio or limit, met) for each target of the issue."""
    bare_rate = _median(f["bare"], "reads_per_s")
    bare_us = _median(f["bare"], "us_per_read")
    batch = _median(f["throughput_batch"], "per_worker")
    stage = _row(f["match"], "stage_batch", "stream") or float("nan")
    stage_miss = _row(f["match"], "stage_batch", "nomatch") or float("nan")
    stage_all = _row(f["match"], "stage_batch_all_kinds", "stream") or float("nan")
    p99 = _median(f["latency"], "p99_s")
    asked = _median(f["latency"], "rate") + _median(f["latency"], "background_rate")
    carried = _median(f["latency"], "worker_rate")
    half = _median(f["throughput_batch"], "reads_per_s") / 2  # what (c) asks the load for
    rss = _median(f["coldstart"], "rss_mib") * MIB
    caught = _median(f["coldstart"], "caught_up_s")
    return [
        (
            "worker throughput ≥ 50 % of the bare consumer",
            f"{batch:,.0f} vs {bare_rate:,.0f} reads/s",
            f"{batch / bare_rate:.0%}",
            batch / bare_rate >= 0.5,
        ),
        (
            "match stage ≤ 10 % of the bare consumer's cost per read (default mix, default settings)",
            f"{stage:.2f}{_row_spread(f['match'], 'stage_batch', 'stream')} µs vs {bare_us:.2f} µs",
            f"{stage / bare_us:.0%}",
            stage / bare_us <= 0.10,
        ),
        (
            "… the same mix with the OCR kinds making hits too (`SEIZEWATCH_MATCH_HIT_KINDS=exact,province,ocr,ocr_province`)",
            f"{stage_all:.2f}{_row_spread(f['match'], 'stage_batch_all_kinds', 'stream')} µs vs {bare_us:.2f} µs",
            f"{stage_all / bare_us:.0%}",
            stage_all / bare_us <= 0.10,
        ),
        (
            "… on reads that match nothing (the hot path)",
            f"{stage_miss:.2f}{_row_spread(f['match'], 'stage_batch', 'nomatch')} µs vs {bare_us:.2f} µs",
            f"{stage_miss / bare_us:.0%}",
            stage_miss / bare_us <= 0.10,
        ),
        (
            "p99 read → SMS handed over ≤ 1 s at half load",
            f"{p99:.3f} s at {asked:,.0f} reads/s offered, {asked / half / 2:.0%} of the worker's rate;"
            f" the worker carried {carried:,.0f}",
            "≤ 1 s",
            # Not shown unless the load offered was half the worker's rate (the machine may not make it
            # beside the worker, broker, ingest and pager) and the worker really carried it.
            p99 <= 1.0 and asked >= 0.9 * half and carried >= 0.9 * asked,
        ),
        ("1M-entry worker ≤ 1.5 GB RSS", f"{rss / GB:.2f} GB", "≤ 1.5 GB", rss <= 1.5 * GB),
        ("1M-entry worker caught up ≤ 30 s", f"{caught:.1f} s", "≤ 30 s", caught <= 30),
    ]


def _machine(m: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    load = ", ".join(f"{x:.2f}" for x in m["load_average"])
    dirty = " (with uncommitted changes)" if m["git_dirty"] else ""
    return [
        f"- CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable)",
        f"- Memory: {m['memory_total_mib']:,} MiB ({m['memory_available_mib']:,} available at the start)",
        f"- Load average at the start: {load}; kernel {m['kernel']}",
        f"- Python {m['python']}; {packages}",
        f"- Kafka broker {m['kafka_broker']} (KRaft, one node, loopback); PostgreSQL from Debian's packages",
        f"- Code: commit {m['git_commit'][:12]}{dirty}; taken {m['taken_at']}",
        *(
            [
                f"- Transparent huge pages: `{m['transparent_hugepage']}`; the harness started with "
                f"`GLIBC_TUNABLES={m.get('glibc_tunables') or '(unset)'}` (as a worker re-executes itself,"
                " streams/hugepages.py); the processes it starts with the environment it was given"
            ]
            if "transparent_hugepage" in m
            else []  # a run from before the worker ran on huge pages
        ),
    ]


def _pages(f: dict[str, Any]) -> list[str]:
    """(b) on 4 KiB pages beside huge pages: one row per child process, then the ratio of the medians."""
    figures = f.get("pages")
    if not figures:
        return []  # results of a run before this measurement existed
    runs = figures["runs"]

    def median(pages: str, name: str) -> float:
        return float(statistics.median(r[name] for r in runs if r["pages"] == pages))

    lines = [
        "### The same on 4 KiB pages and on huge pages",
        "",
        f"`stage_batch` in child processes, alternately, each building the same {figures['entries']:,}-entry"
        f" index and timing the same reads (median of {figures['passes']} passes): `glibc.malloc.hugetlb=0`",
        "(`4k`: as before the worker re-executed itself) and `=1` (`huge`: what the worker runs with).",
        *(
            []
            if f["machine"].get("transparent_hugepage") == "madvise"
            else [
                f"With transparent_hugepage `{f['machine'].get('transparent_hugepage')}` the kernel does not"
                " follow the tunable alone (`always`: huge pages for both; `never`: for neither): read the"
                " huge-page column."
            ]
        ),
        "",
        "| run | pages | stream µs | nomatch µs | on huge pages MiB | RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(
            f"| {i} | {r['pages']} | {r['stream_us']:.2f} | {r['nomatch_us']:.2f} | {r['huge_pages_mib']:,.0f} |"
            f" {r['rss_mib']:,.0f} |"
        )
    pairs = list(zip(runs[0::2], runs[1::2], strict=False))  # run in pairs: 4k, then huge

    def ratios(name: str) -> str:
        values = sorted(huge[name] / small[name] for small, huge in pairs if small[name])
        return ", ".join(f"{v:.2f}×" for v in values)

    lines += [
        "",
        f"Huge pages against 4 KiB pages, pair by pair: the default mix {ratios('stream_us')}, the hot path"
        f" {ratios('nomatch_us')}; medians {median('huge', 'stream_us'):.2f} against"
        f" {median('4k', 'stream_us'):.2f} µs and {median('huge', 'nomatch_us'):.2f} against"
        f" {median('4k', 'nomatch_us'):.2f} µs.",
        "",
    ]
    return lines


def _match_table(match: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    categories = ["nomatch", "stream", "exact", "fuzzy"]
    lines = ["| variant | " + " | ".join(categories) + " |", "|---" * (len(categories) + 1) + "|"]
    variants: list[str] = []
    for row in _runs_of(match)[0]["rows"]:
        if row["variant"] not in variants:
            variants.append(row["variant"])
    for variant in variants:
        cells = []
        for category in categories:
            value = _row(match, variant, category)
            cells.append("–" if value is None else f"{value:.2f}")
        lines.append(f"| `{variant}` | " + " | ".join(cells) + " |")
    return lines


def _throughput_rows(name: str, results: list[dict[str, Any]], bare_rate: float) -> str:
    per_worker = _median(results, "per_worker")
    return (
        f"| {name} | {results[0]['reads']:,} | {_spread(results, 'per_worker')} | "
        f"{_spread(results, 'steady_reads_per_s')} | {per_worker / bare_rate:.0%} | "
        f"{_median(results, 'worker_cores'):.2f} | {int(_median(results, 'hits')):,} |"
    )


def render(f: dict[str, Any], *, quick: bool = False) -> str:
    """The whole report as Markdown."""
    bare_rate = _median(f["bare"], "reads_per_s")
    runs_b = _runs_of(f["match"])
    match = runs_b[0]  # what every run measures alike (sizes, shares); figures are medians of the runs
    out = ["# Benchmarks", ""]
    if quick:
        out += [
            "> **Quick run** (`--quick`): small sizes that check the harness; not the figures of record.",
            "",
        ]
    out += [
        "Reproduce (the local Kafka and PostgreSQL are installed and started by the script):",
        "",
        "```sh",
        "scripts/bench            # every measurement, --runs 3; rewrites this file and var/bench/results.json",
        "scripts/bench --quick    # small sizes, a few minutes: checks the harness only",
        "```",
        "",
        f"Each figure is the median of {f['runs']} runs (range in brackets); ratios are taken between",
        f"figures of this one run, on one machine, side by side. The run took {f['wall_s'] / 60:.0f} minutes.",
        "Nothing here is part of the test suite: no test is timed.",
        "",
        "## Machine",
        "",
        *_machine(f["machine"]),
        "",
        "## Targets",
        "",
        "| target | measured | ratio / limit | |",
        "|---|---|---|---|",
        *(f"| {t} | {m} | {r} | {_met(ok)} |" for t, m, r, ok in targets(f)),
        "",
        "## (a) The limit: a bare aiokafka consumer",
        "",
        f"{f['bare'][0]['reads']:,} reads of {f['bare'][0]['payload_bytes']:.0f} bytes (canonical sightings from",
        "the generator) in one topic of 6 partitions; `getmany` batches, `orjson.loads` of every value, nothing",
        "else.",
        "",
        f"- {_spread(f['bare'], 'reads_per_s')} reads/s, {_spread(f['bare'], 'us_per_read', '{:.2f}')} µs/read",
        f"- fetching alone (no parse): {_spread(f['bare'], 'fetch_only_us_per_read', '{:.2f}')} µs/read",
        "",
        f"## (b) The match stage in process, {match['entries']:,} watch entries",
        "",
        f"µs per read: the median of {len(runs_b)} runs, each the median of {len(match['rows'][0]['runs_us'])} passes, the",
        "default match settings. `nomatch`: reads that match nothing (the hot path); `stream`: the default",
        "mix (0.1 % watched, OCR noise); `exact` / `fuzzy`: reads of watched vehicles, read right / with a",
        "confusion, a misread or a missing province. `stage_batch` is",
        "the production code, `MatchStage.match_batch` on consumer records, 2,000 a batch, metrics included",
        "(hits are built, not recorded): the match stage's cost. `match_step` is its per-read logic alone",
        "(the record key's skeleton looked up; decode, `read_plate` and match only for a possible match).",
        "By default the OCR kinds make no hit and a read only they could match is ruled out by its plate too,",
        "undecoded; `stage_batch_all_kinds` is `stage_batch` with every kind making hits (the OCR kinds on).",
        "`stage_handle` is the faust engine's per-event path (`MatchStage.handle`: every read decoded).",
        "`orjson`, `decode` (`decode_sighting`), `full` (decode, `read_plate`, match), `plate_match`, `match`",
        "(`WatchIndex.match` on parsed plates) and `validate_json` (a prototype) show what the parts cost.",
        "",
        *_match_table(runs_b),
        "",
        "The same variant, run by run (µs per read on the default mix, `stream`): "
        + "; ".join(
            f"`{v}` " + ", ".join(f"{x:.2f}" for x in _row_values(runs_b, v, "stream"))
            for v in ("stage_batch", "stage_batch_all_kinds")
        )
        + ".",
        "",
        f"- Index build: {_spread(runs_b, 'index_build_s', '{:.1f}')} s, {_spread(runs_b, 'index_rss_mib')} MiB, "
        f"{match['gc_tracked_objects']:,} objects tracked by the garbage collector; one full collection "
        f"{_spread(runs_b, 'full_gc_s', '{:.2f}')} s (the worker, and this measurement, freeze the index out of"
        " collections).",
        "- Reads with at least one match: "
        + ", ".join(f"{k} {v:.1%}" for k, v in match["matched_share"].items())
        + "; that would be hits under the default settings: "
        + ", ".join(f"{k} {v:.1%}" for k, v in match["hit_share"].items())
        + "; with the OCR kinds making hits too: "
        + ", ".join(f"{k} {v:.1%}" for k, v in match.get("hit_share_all_kinds", {}).items())
        + ".",
        "- The same with `SEIZEWATCH_MATCH_PROVINCE_KINDS=always` (the kinds ignoring the province for every"
        " read): "
        + ", ".join(f"{k} {v:.1%}" for k, v in match.get("matched_share_across_provinces", {}).items())
        + ".",
        "",
        *_pages(f),
        "## (c) The whole pipeline",
        "",
        f"One worker process draining reads produced beforehand, a watchlist of "
        f"{f['sizes']['throughput_watchlist']:,}",
        "entries, counted from the moment it caught up; every expected hit must be in PostgreSQL or the run",
        "fails. Before: the faust engine (one event at a time), on fewer reads of the same mix (it takes",
        "minutes); after: the batch engine (aiokafka, `SEIZEWATCH_MATCH_ENGINE=batch`, the default).",
        "",
        "| engine | reads | reads/s | steady reads/s | of the bare limit | cores busy | hits |",
        "|---|---|---|---|---|---|---|",
        _throughput_rows("faust (before)", f["throughput_faust"], bare_rate),
        _throughput_rows("batch (after)", f["throughput_batch"], bare_rate),
        "",
        f"Against the transport alone (fetch, no parse: {_median(f['bare'], 'fetch_only_us_per_read'):.2f} µs/read,"
        f" {1e6 / _median(f['bare'], 'fetch_only_us_per_read'):,.0f} reads/s) the batch worker reaches "
        f"{_median(f['throughput_batch'], 'per_worker') * _median(f['bare'], 'fetch_only_us_per_read') / 1e6:.0%}:"
        " it decodes only the reads their key does not rule out, so it can outrun a consumer that decodes all.",
        "",
        "Read → SMS handed to the provider with the load asked for half the batch worker's rate "
        f"({_median(f['throughput_batch'], 'reads_per_s') / 2:,.0f} reads/s; offered "
        f"{_median(f['latency'], 'rate') + _median(f['latency'], 'background_rate'):,.0f}): a parking lot",
        f"posting {_median(f['latency'], 'rate'):,.0f} reads/s through `seizewatch ingest` (one process), the rest "
        "produced straight to `plate.sightings` by `benchmarks/load.py` (the province's other devices), one",
        "worker, `seizewatch pager` and the local Twilio-compatible server; latency over the lot's watched",
        "reads (2 a second, each of its own vehicle), from the request sent to the SMS at the provider.",
        "",
        f"- the worker carried {_spread(f['latency'], 'worker_rate')} reads/s (lot "
        f"{_spread(f['latency'], 'achieved_rate')}, background offered {_spread(f['latency'], 'background_rate')});"
        f" refused {int(_median(f['latency'], 'refused'))}; pages {int(_median(f['latency'], 'pages'))} of "
        f"{int(_median(f['latency'], 'watched'))} watched reads",
        f"- p50 {_spread(f['latency'], 'p50_s', '{:.3f}')} s, p99 {_spread(f['latency'], 'p99_s', '{:.3f}')} s, "
        f"max {_spread(f['latency'], 'max_s', '{:.3f}')} s; ingest answered (p50) "
        f"{_spread(f['latency'], 'ingest_p50_s', '{:.3f}')} s",
        "- by stage, p50 / p99 (s): "
        + "; ".join(
            f"{stage} {p50:.3f} / {f['latency'][0]['stages_p99_s'].get(stage, float('nan')):.3f}"
            for stage, p50 in f["latency"][0]["stages_p50_s"].items()
        )
        + " (first run)",
        "",
        f"## (d) A worker with {f['coldstart'][0]['entries']:,} watch entries",
        "",
        "Published to `watchlist.changes` beforehand; a `seizewatch worker` started and watched until its",
        "`/metrics` say caught up with every entry; RSS of its process tree then.",
        "",
        f"- caught up in {_spread(f['coldstart'], 'caught_up_s', '{:.1f}')} s "
        f"(first entries at {_spread(f['coldstart'], 'first_entry_s', '{:.1f}')} s)",
        f"- RSS {_spread(f['coldstart'], 'rss_mib')} MiB, peak {_spread(f['coldstart'], 'hwm_mib')} MiB",
        "",
        "## (e) Scaling: 1, 2 and 4 batch workers on one topic",
        "",
        f"The machine has {f['scaling'][0]['cores']} cores; a worker is one Python process (one core at most).",
        "",
        "| workers | reads/s | speed-up | cores busy |",
        "|---|---|---|---|",
    ]
    counts = [r["workers"] for r in f["scaling"][0]["runs"]]
    for i, n in enumerate(counts):
        runs = [s["runs"][i] for s in f["scaling"]]
        speedup = statistics.median(s["speedup"][str(n)] for s in f["scaling"])
        out.append(
            f"| {n} | {_spread(runs, 'reads_per_s')} | {speedup:.2f}× | {_median(runs, 'worker_cores'):.2f} |"
        )
    out += ["", FINDINGS]
    return "\n".join(out) + "\n"


FINDINGS = """## Reading these figures

What the figures mean, what was changed to reach them (before and after) and what is still open:
[performance.md](performance.md), written by hand from the run of record; this file is generated.
"""
