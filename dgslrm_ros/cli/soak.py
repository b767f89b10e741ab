"""`dgslrm bench --soak MINUTES`: does the node stay flat in memory and steady in latency for hours?

Live mode (default): `dgslrm_node` runs as its own process with the default parameters (plus any
`--param NAME=VALUE`); this command streams a synthetic scene into it over real DDS (loopback, a
private domain) at `--rate` Hz and `--size` pixels, forever forwards and backwards, stamped with the
wall clock. Every `--sample-every` seconds it records the node's resident memory (/proc), the node's
own figures from /diagnostics (glibc heap in use / free, Python allocated blocks, tracemalloc with
`--tracemalloc`, CUDA memory where CUDA), windows per second and end-to-end latency from `rendered`
(arrival minus the stamp of the window's newest frame), drops by reason and the queue sizes.

Replay mode (`--replay`): writes the same scene, looped, as one long bag and runs `dgslrm replay` on
it as a separate process, sampling its resident memory until it ends or the time is up.

Both print a row per sample, and at the end a summary (RSS growth after `--warmup`, latency and
window rate of the first vs the last `--compare-minutes`, largest queues, drops) and write
OUT/soak.json (rewritten at every sample, so an interrupted soak still leaves its data) and
OUT/soak.png (memory, latency and windows per second over time).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from dgslrm_ros.cli.argtypes import positive_float
from dgslrm_ros.cli.children import Child, child_env
from dgslrm_ros.core.strict_json import strict_json

DEFAULT_SIZE = (160, 120)  # width, height of the published images (the stream)
SCENE_FRAMES = 48  # frames of the synthetic scene; played forwards then backwards
SCENE_SEED = 1_000_000  # an evaluation seed (never trained on)
STARTUP_TIMEOUT_S = 180.0
# Diagnostics keys copied into each sample (numbers; absent ones are skipped).
DIAGNOSTIC_KEYS = ("memory_rss_mb", "memory_rss_after_window_mb", "last_release_memory_s", "last_reconstruction_s",
                   "memory_malloc_in_use_mb", "memory_malloc_free_mb", "memory_malloc_mmapped_mb",
                   "python_allocated_blocks", "python_traced_mb", "cuda_allocated_mb", "cuda_reserved_mb",
                   "pending_windows", "buffered_frames", "waiting_for_pose", "tracks_active", "windows_published",
                   "windows_failed", "frames_received", "dropped_frames_total")
QUEUE_KEYS = ("pending_windows", "buffered_frames", "waiting_for_pose")


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """The soak options of `dgslrm bench` (used only with --soak)."""
    group = parser.add_argument_group("soak (with --soak MINUTES)")
    group.add_argument("--soak", type=positive_float, default=None, metavar="MINUTES",
                       help="run the soak for this many minutes instead of the benchmarks")
    group.add_argument("--rate", type=positive_float, default=10.0, help="published frames per second (default 10)")
    group.add_argument("--size", type=_size, default=DEFAULT_SIZE, metavar="WxH",
                       help="published image size (default 160x120)")
    group.add_argument("--scene-frames", type=int, default=SCENE_FRAMES, metavar="N",
                       help=f"frames of the synthetic scene, played forwards and backwards (default {SCENE_FRAMES})")
    group.add_argument("--sample-every", type=positive_float, default=10.0, metavar="S",
                       help="seconds between samples (default 10)")
    group.add_argument("--warmup", type=float, default=2.0, metavar="MINUTES",
                       help="minutes before the RSS reference sample (default 2)")
    group.add_argument("--compare-minutes", type=positive_float, default=10.0, metavar="MINUTES",
                       help="latency and rate of the first vs the last this-many minutes (default 10; at most "
                            "a third of the soak)")
    group.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="node parameter override (repeatable); otherwise the node's defaults (also "
                            "for --node: the pipeline's parameters, e.g. keyframe_stride=2)")
    group.add_argument("--node-env", action="append", default=[], metavar="NAME=VALUE",
                       help="extra environment of the node or replay process (repeatable), e.g. "
                            "DGSLRM_ALLOCATOR=glibc-default to measure without the per-window heap release")
    group.add_argument("--tracemalloc", action="store_true",
                       help="trace the node's Python allocations (DGSLRM_TRACEMALLOC=1; costs some speed)")
    group.add_argument("--replay", action="store_true",
                       help="soak `dgslrm replay` of a long looping bag instead of the live node")
    group.add_argument("--out", dest="soak_out", type=Path, default=Path("out/soak"), metavar="DIR",
                       help="output folder for soak.json, soak.png and logs (default out/soak)")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 160x120, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"expected at least 16x16 pixels, got {text}")
    return width, height


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"dgslrm bench: {what}: expected NAME=VALUE, got {item!r}")
        out[name] = value
    return out


# ---------------------------------------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """q-th percentile (0..100) of the values, NaN for none."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else math.nan


def summarize(samples: list[dict[str, Any]], latencies: list[tuple[float, float]], warmup_s: float,
              compare_s: float) -> dict[str, Any]:
    """Soak verdict figures from the samples (t in s, rss_mb, ...) and every (t, latency) of the run.

    RSS growth = last sample minus the first sample at or after the warm-up (and the largest excursion
    above it); slope by least squares over the post-warm-up samples. Latency and windows per second are
    compared between the first and the last `compare_s` seconds (at most a third of the run each).
    """
    out: dict[str, Any] = {"samples": len(samples)}
    if not samples:
        return out
    duration = float(samples[-1]["t"])
    out["duration_min"] = duration / 60.0
    after = [s for s in samples if s["t"] >= warmup_s and s.get("rss_mb") is not None]
    if after:
        reference = after[0]["rss_mb"]
        rss = np.array([s["rss_mb"] for s in after])
        t = np.array([s["t"] for s in after]) / 60.0
        out["rss_warmup_mb"] = float(reference)
        out["rss_end_mb"] = float(rss[-1])
        out["rss_growth_after_warmup_mb"] = float(rss[-1] - reference)
        out["rss_max_above_warmup_mb"] = float(rss.max() - reference)
        out["rss_slope_mb_per_min"] = float(np.polyfit(t, rss, 1)[0]) if len(after) >= 3 else math.nan
    out.update(_level_growth(samples, "rss_mb", "rss", warmup_s, compare_s))
    out.update(_level_growth(samples, "memory_rss_after_window_mb", "rss_after_window", warmup_s, compare_s))
    compare = min(compare_s, duration / 3.0)
    out["compare_min"] = compare / 60.0
    first = [lat for t, lat in latencies if t <= compare]
    last = [lat for t, lat in latencies if t >= duration - compare]
    for name, part in (("first", first), ("last", last)):
        out[f"latency_p50_{name}_s"] = percentile(part, 50)
        out[f"latency_p95_{name}_s"] = percentile(part, 95)
        out[f"windows_per_s_{name}"] = len(part) / compare if compare > 0 else math.nan
    for key in ("latency_p50", "latency_p95"):
        a, b = out[f"{key}_first_s"], out[f"{key}_last_s"]
        out[f"{key}_change"] = (b - a) / a if a and math.isfinite(a) and math.isfinite(b) else math.nan
    a, b = out["windows_per_s_first"], out["windows_per_s_last"]
    out["windows_per_s_change"] = (b - a) / a if a else math.nan
    for key in QUEUE_KEYS:
        values = [s[key] for s in samples if s.get(key) is not None]
        if values:
            out[f"{key}_max"] = max(values)
            out[f"{key}_end"] = values[-1]
    drops = samples[-1].get("drops") or {}
    out["drops"] = {k: v for k, v in drops.items() if v}
    return out


def _level_growth(samples: list[dict[str, Any]], key: str, name: str, warmup_s: float,
                  compare_s: float) -> dict[str, float]:
    """Median and max of `key` over the first vs the last `compare_s` after warm-up (at most half each).

    A sample falls anywhere inside a window, whose working set comes and goes, so one sample against
    another differs by that working set; medians and peaks over minutes do not.
    """
    after = [(s["t"], _number(s.get(key))) for s in samples if s["t"] >= warmup_s]
    after = [(t, v) for t, v in after if v is not None]
    if len(after) < 2:
        return {}
    span = min(compare_s, (after[-1][0] - after[0][0]) / 2.0)
    first = [v for t, v in after if t <= after[0][0] + span]
    last = [v for t, v in after if t >= after[-1][0] - span]
    return {f"{name}_median_first_mb": float(np.median(first)), f"{name}_median_last_mb": float(np.median(last)),
            f"{name}_median_growth_mb": float(np.median(last) - np.median(first)),
            f"{name}_max_growth_mb": float(max(last) - max(first))}


# ---------------------------------------------------------------------------------------------- output
TABLE_COLUMNS = (("t_min", "min", "{:.1f}"), ("rss_mb", "RSS MB", "{:.0f}"),
                 ("memory_rss_after_window_mb", "RSS/win", "{:.0f}"),
                 ("memory_malloc_in_use_mb", "heap used", "{:.0f}"), ("memory_malloc_free_mb", "heap free", "{:.0f}"),
                 ("python_allocated_blocks", "py blocks", "{:.0f}"), ("python_traced_mb", "py MB", "{:.1f}"),
                 ("cuda_allocated_mb", "cuda MB", "{:.0f}"), ("windows_per_s", "win/s", "{:.2f}"),
                 ("latency_p50_s", "lat p50", "{:.2f}"), ("latency_p95_s", "lat p95", "{:.2f}"),
                 ("pending_windows", "pending", "{:.0f}"), ("drops_total", "drops", "{:.0f}"),
                 ("node_cpu_cores", "node CPU", "{:.2f}"), ("load_1min", "load", "{:.1f}"))


def table_columns(samples: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The columns some sample has a value for."""
    return [c for c in TABLE_COLUMNS if any(_number(s.get(c[0])) is not None for s in samples)]


def format_row(sample: dict[str, Any], columns: list[tuple[str, str, str]]) -> str:
    cells = []
    for key, title, fmt in columns:
        value = _number(sample.get(key))
        cells.append(("-" if value is None or math.isnan(value) else fmt.format(value)).rjust(max(len(title), 7)))
    return " ".join(cells)


def format_header(columns: list[tuple[str, str, str]]) -> str:
    return " ".join(title.rjust(max(len(title), 7)) for _, title, _ in columns)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def write_plot(path: Path, samples: list[dict[str, Any]], latencies: list[tuple[float, float]], warmup_s: float,
               title: str) -> Path:
    """PNG: memory (RSS, heap used/free, Python) / latency / windows per second over time."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    t = np.array([s["t"] for s in samples]) / 60.0
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    ax = axes[0]
    for key, label in (("rss_mb", "RSS"), ("memory_rss_after_window_mb", "RSS right after a window"),
                       ("memory_malloc_in_use_mb", "malloc in use"),
                       ("memory_malloc_free_mb", "malloc free (released pages included)"),
                       ("python_traced_mb", "Python traced"),
                       ("cuda_allocated_mb", "CUDA allocated")):
        values = [_number(s.get(key)) for s in samples]
        if any(v is not None for v in values):
            ax.plot(t, [math.nan if v is None else v for v in values], label=label)
    ax.set_ylabel("MB")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=9)
    blocks = [_number(s.get("python_allocated_blocks")) for s in samples]
    if any(v is not None for v in blocks):
        twin = ax.twinx()
        twin.plot(t, [math.nan if v is None else v / 1000.0 for v in blocks], color="purple", linestyle="--",
                  linewidth=1, label="Python allocated blocks (k, right)")
        twin.set_ylabel("Python blocks (thousands)")
        twin.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    if latencies:
        lt = np.array([x for x, _ in latencies]) / 60.0
        ax.plot(lt, [y for _, y in latencies], ".", markersize=2, alpha=0.4, label="each window")
    for key, label in (("latency_p50_s", "p50 per sample"), ("latency_p95_s", "p95 per sample")):
        values = [_number(s.get(key)) for s in samples]
        if any(v is not None for v in values):
            ax.plot(t, [math.nan if v is None else v for v in values], label=label)
    ax.set_ylabel("latency s (stamp to arrival)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    values = [_number(s.get("windows_per_s")) for s in samples]
    ax.plot(t, [math.nan if v is None else v for v in values], label="windows/s")
    ax.set_ylabel("windows / s")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    twin = None
    for key, label, color, scale in (("node_cpu_cores", "node CPU, cores (right)", "purple", 1.0),
                                     ("load_1min", "machine load / 10 (right)", "grey", 10.0)):
        series = [_number(s.get(key)) for s in samples]
        if any(v is not None for v in series):
            twin = twin or ax.twinx()
            twin.plot(t, [math.nan if v is None else v / scale for v in series], linestyle="--", linewidth=1,
                      color=color, label=label)
            twin.set_ylabel("cores")
    if twin is not None:
        twin.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("minutes")
    for ax in axes:
        ax.axvline(warmup_s / 60.0, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(strict_json(payload), indent=1, allow_nan=False))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- the run
def make_scene(size: tuple[int, int], frames: int, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames uint8 [T, H, W, 3], K [3, 3] CameraInfo convention, world_T_cam [T, 4, 4]) of a dynamic scene."""
    from dgslrm_ros.convert.image import frames_to_rgb8
    from dgslrm_ros.core.cameras import intrinsics_to_opencv
    from dgslrm_ros.data.sequence import generate_sequence

    width, height = size
    seq = generate_sequence(seed=SCENE_SEED, num_frames=frames, height=height, width=width, fps=rate, num_views=1,
                            track_grid=16)
    rgb = frames_to_rgb8(seq.frames.numpy())[0]
    return rgb, intrinsics_to_opencv(seq.K[0]).numpy(), seq.world_T_cam[0].numpy()


def run_soak(args: argparse.Namespace) -> int:
    """Entry from `dgslrm bench --soak`."""
    out: Path = args.soak_out
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    extra_env = _pairs(args.node_env, "--node-env")
    if args.tracemalloc:
        extra_env["DGSLRM_TRACEMALLOC"] = "1"
    device = getattr(args, "device", "auto")
    if args.scene_frames < 2:
        raise SystemExit(f"dgslrm bench --soak: --scene-frames must be at least 2, got {args.scene_frames}")
    params = None if args.replay else _node_params(args, out, device)  # refused by name before any work
    print(f"[soak] generating a {args.scene_frames}-frame {args.size[0]}x{args.size[1]} scene ...", flush=True)
    scene = make_scene(args.size, args.scene_frames, args.rate)
    if args.replay:
        return _soak_replay(args, out, scene, extra_env, device)
    return _soak_live(args, out, scene, extra_env, params)


def _node_params(args: argparse.Namespace, out: Path, device: str) -> Path:
    import yaml

    from dgslrm_ros.ros.params import validate

    overrides: dict[str, Any] = {"device": device}
    for name, text in _pairs(args.param, "--param").items():
        overrides[name] = yaml.safe_load(text)
    values = validate(overrides)  # a ParameterError names the parameter
    path = out / "node_params.yaml"
    path.write_text(yaml.safe_dump({"dgslrm": {"ros__parameters": values}}, sort_keys=False))
    return path


class _Recorder:
    """Samples, latencies and the JSON file rewritten at every sample."""

    def __init__(self, out: Path, meta: dict[str, Any], warmup_s: float, compare_s: float) -> None:
        self.out, self.meta = out, meta
        self.warmup_s, self.compare_s = warmup_s, compare_s
        self.samples: list[dict[str, Any]] = []
        self.latencies: list[tuple[float, float]] = []  # (t since streaming started, s)
        self.columns: list[tuple[str, str, str]] | None = None

    def add(self, sample: dict[str, Any]) -> None:
        self.samples.append(sample)
        if self.columns is None:  # the after-window RSS comes once the first window is done
            first = dict(sample, memory_rss_after_window_mb=0.0) if "memory_rss_mb" in sample else sample
            self.columns = table_columns([first])
            print(format_header(self.columns), flush=True)
        print(format_row(sample, self.columns), flush=True)
        self.save()

    def save(self) -> dict[str, Any]:
        summary = summarize(self.samples, self.latencies, self.warmup_s, self.compare_s)
        _write_json(self.out / "soak.json", {**self.meta, "summary": summary, "samples": self.samples,
                                             "latencies": [[round(t, 3), round(v, 4)] for t, v in self.latencies]})
        return summary

    def finish(self, title: str) -> dict[str, Any]:
        summary = self.save()
        columns = table_columns(self.samples)
        print("\n" + format_header(columns))
        for sample in self.samples:
            print(format_row(sample, columns))
        print_summary(summary)
        if self.samples:
            write_plot(self.out / "soak.png", self.samples, self.latencies, self.warmup_s, title)
        print(f"[soak] wrote {self.out / 'soak.json'} and {self.out / 'soak.png'}")
        return summary


def print_summary(summary: dict[str, Any]) -> None:
    def f(key: str, fmt: str = "{:.1f}") -> str:
        value = summary.get(key)
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)

    print(f"\n== soak summary ({f('duration_min')} min, {summary.get('samples', 0)} samples)")
    print(f"RSS: {f('rss_warmup_mb', '{:.0f}')} MB after warm-up -> {f('rss_end_mb', '{:.0f}')} MB at the end: "
          f"growth {f('rss_growth_after_warmup_mb')} MB (largest {f('rss_max_above_warmup_mb')} MB above), "
          f"slope {f('rss_slope_mb_per_min', '{:.2f}')} MB/min")
    if "rss_median_growth_mb" in summary:
        print(f"RSS median over the first / last {f('compare_min')} min after warm-up: "
              f"{f('rss_median_first_mb', '{:.0f}')} / {f('rss_median_last_mb', '{:.0f}')} MB "
              f"(growth {f('rss_median_growth_mb')} MB, peaks {f('rss_max_growth_mb', '{:+.1f}')} MB)")
    if "rss_after_window_median_growth_mb" in summary:
        print(f"RSS right after each window (node's own figure): median "
              f"{f('rss_after_window_median_first_mb', '{:.0f}')} / "
              f"{f('rss_after_window_median_last_mb', '{:.0f}')} MB (growth {f('rss_after_window_median_growth_mb')} MB, "
              f"peaks {f('rss_after_window_max_growth_mb', '{:+.1f}')} MB)")
    if not math.isnan(summary.get("latency_p50_first_s", math.nan)):
        print(f"latency over the first / last {f('compare_min')} min: p50 {f('latency_p50_first_s', '{:.3f}')} / "
              f"{f('latency_p50_last_s', '{:.3f}')} s ({f('latency_p50_change', '{:+.1%}')}), p95 "
              f"{f('latency_p95_first_s', '{:.3f}')} / {f('latency_p95_last_s', '{:.3f}')} s "
              f"({f('latency_p95_change', '{:+.1%}')}); windows/s {f('windows_per_s_first', '{:.3f}')} / "
              f"{f('windows_per_s_last', '{:.3f}')} ({f('windows_per_s_change', '{:+.1%}')})")
    queues = ", ".join(f"{k} max {summary[k + '_max']:g} (end {summary[k + '_end']:g})"
                       for k in QUEUE_KEYS if k + "_max" in summary)
    if queues:
        print(f"queues: {queues}")
    print(f"drops: {summary.get('drops') or 'none'}")


def _soak_live(args: argparse.Namespace, out: Path, scene: tuple, extra_env: dict[str, str], params: Path) -> int:
    from dgslrm_ros.stream.memory import process_cpu_seconds, process_rss_bytes

    frames, K, poses = scene
    env = child_env(extra_env)
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION"):
        os.environ[key] = env[key]  # this process's own DDS participant joins the node's private domain
    node = Child.start("dgslrm_node", [sys.executable, "-m", "dgslrm_ros.ros.main", "--ros-args", "--params-file",
                                       str(params)], env, out / "logs" / "node.log")
    from dgslrm_ros.ros.soak_driver import SoakDriver
    from dgslrm_ros.ros.spin import spin_in_background

    # Ctrl-C must reach this thread as KeyboardInterrupt (summarise, stop the node), not shut rclpy down.
    driver, stop_driver = spin_in_background(lambda: SoakDriver(frames, K, poses, args.rate), "soak-executor")
    meta = {"mode": "live node over DDS", "minutes": args.soak, "rate_hz": args.rate, "size": list(args.size),
            "sample_every_s": args.sample_every, "warmup_min": args.warmup, "node_params": params.read_text(),
            "node_env": extra_env, "host": _host()}
    recorder = _Recorder(out, meta, args.warmup * 60.0, args.compare_minutes * 60.0)
    interrupted = False
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (any("ready:" in line for line in node.lines) and driver.node_subscribed()):
            if node.popen.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(node.lines[-15:])
                print(f"[soak] the node did not come up (exit {node.popen.poll()}); see {node.log}:\n{tail}",
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
        ready = next(line for line in node.lines if "ready:" in line)
        meta["node_ready"] = ready[ready.index("ready:"):]
        print(f"[soak] node pid {node.popen.pid} {meta['node_ready']}", flush=True)
        print(f"[soak] streaming {args.size[0]}x{args.size[1]} at {args.rate:g} Hz for {args.soak:g} min, "
              f"a sample every {args.sample_every:g} s", flush=True)
        driver.start_streaming()
        start = time.time()
        cpu_before = process_cpu_seconds(node.popen.pid)
        end = start + args.soak * 60.0
        next_sample = start + args.sample_every
        while True:
            time.sleep(max(0.0, min(next_sample, end) - time.time()))
            now = time.time()
            if node.popen.poll() is not None:
                print(f"[soak] the node exited with status {node.popen.returncode}; see {node.log}", file=sys.stderr)
                break
            arrivals = driver.take_arrivals()
            window = [a.latency_s for a in arrivals]
            recorder.latencies += [(a.received - start, a.latency_s) for a in arrivals]
            rss = process_rss_bytes(node.popen.pid)
            cpu = process_cpu_seconds(node.popen.pid)
            diagnostics, diag_at = driver.diagnostics()
            previous = recorder.samples[-1]["t"] if recorder.samples else 0.0
            # cores' worth of CPU the node got since the last sample: on a shared machine, latency
            # follows this more than anything the node does
            cpu_share = None if cpu is None or cpu_before is None else \
                (cpu - cpu_before) / max(now - start - previous, 1e-9)
            cpu_before = cpu
            sample: dict[str, Any] = {
                "t": now - start, "t_min": (now - start) / 60.0,
                "rss_mb": None if rss is None else rss / (1024.0 * 1024.0),
                "frames_published": driver.published, "windows": len(window),
                "windows_per_s": len(window) / max(now - start - previous, 1e-9),
                "latency_p50_s": percentile(window, 50), "latency_p95_s": percentile(window, 95),
                "latency_max_s": max(window) if window else math.nan,
                "diagnostics_age_s": now - diag_at if diag_at else None,
                "node_cpu_cores": cpu_share, "load_1min": _load(),
            }
            for key in DIAGNOSTIC_KEYS:
                value = _number(diagnostics.get(key))
                if value is not None:
                    sample[key] = value
            drops = {k.removeprefix("dropped_"): int(float(v)) for k, v in diagnostics.items()
                     if k.startswith("dropped_") and k != "dropped_frames_total"}
            sample["drops"] = drops
            sample["drops_total"] = sum(drops.values()) if drops else None
            recorder.add(sample)
            if now >= end - 1e-3:
                break
            next_sample += args.sample_every
    except KeyboardInterrupt:
        interrupted = True
        print("[soak] interrupted; summarising what was measured", file=sys.stderr)
    finally:
        driver.stop_streaming()
        meta["node_exit"] = node.stop()
        stop_driver()
    title = (f"dgslrm_node soak: {args.size[0]}x{args.size[1]} at {args.rate:g} Hz, {_host()}")
    recorder.finish(title)
    return 130 if interrupted else 0


def write_looping_bag(path: Path, scene: tuple, count: int, rate: float) -> Path:
    """The scene played forwards and backwards as `count` frames at `rate` Hz, as a bag `dgslrm replay` reads."""
    from dgslrm_ros.bags.writer import BagWriter
    from dgslrm_ros.ros.soak_driver import ping_pong_index

    frames, K, poses = scene
    height, width = frames.shape[1:3]
    origin_ns = 1_700_000_000 * 10**9
    with BagWriter(path) as writer:
        for i in range(count):
            stamp_ns = origin_ns + int(round(i * 1e9 / rate))
            index = ping_pong_index(i, frames.shape[0])
            writer.write_camera_info("camera_info", stamp_ns, K, width, height)
            writer.write_pose("camera_pose", stamp_ns, poses[index], "world")
            writer.write_image("image", stamp_ns, frames[index])
    return path


def _soak_replay(args: argparse.Namespace, out: Path, scene: tuple, extra_env: dict[str, str], device: str) -> int:
    from dgslrm_ros.stream.memory import process_rss_bytes

    bag = out / "long_bag"
    count = int(math.ceil(args.soak * 60.0 * args.rate))
    if not bag.exists():
        print(f"[soak] writing {count} frames ({args.soak:g} min at {args.rate:g} Hz) to {bag} ...", flush=True)
        write_looping_bag(bag, scene, count, args.rate)
    replay_out = out / "replay"
    if replay_out.exists():
        import shutil

        shutil.rmtree(replay_out)
    command = [sys.executable, "-m", "dgslrm_ros.cli.main", "replay", str(bag), "--out", str(replay_out),
               "--no-progress", "--device", device]
    for name, text in _pairs(args.param, "--param").items():
        command += [f"--{name.replace('_', '-')}", text]
    env = child_env(extra_env)
    child = Child.start("replay", command, env, out / "logs" / "replay.log")
    meta = {"mode": "dgslrm replay of a looping bag", "minutes": args.soak, "rate_hz": args.rate,
            "size": list(args.size), "bag_frames": count, "sample_every_s": args.sample_every,
            "warmup_min": args.warmup, "command": command, "node_env": extra_env, "host": _host()}
    recorder = _Recorder(out, meta, args.warmup * 60.0, args.compare_minutes * 60.0)
    start = time.time()
    end = start + args.soak * 60.0
    next_sample = start + args.sample_every
    interrupted = False
    try:
        while True:
            time.sleep(max(0.0, min(next_sample, end) - time.time()))
            now = time.time()
            if child.popen.poll() is not None:
                break
            rss = process_rss_bytes(child.popen.pid)
            recorder.add({"t": now - start, "t_min": (now - start) / 60.0,
                          "rss_mb": None if rss is None else rss / (1024.0 * 1024.0), "load_1min": _load()})
            if now >= end - 1e-3:
                break
            next_sample += args.sample_every
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if child.popen.poll() is None:
            child.popen.send_signal(signal.SIGINT)
        meta["replay_exit"] = child.stop(30.0)
        meta["replay_output_tail"] = child.lines[-12:]
    per_window = replay_window_memory(replay_out / "output_bag")
    meta["replay_windows"] = per_window
    if per_window:
        rss = [mb for _, mb in per_window]
        tail = max(1, len(rss) // 4)
        meta["replay_rss_after_window"] = {
            "windows": len(rss), "median_first_quarter_mb": float(np.median(rss[:tail])),
            "median_last_quarter_mb": float(np.median(rss[-tail:])),
            "growth_mb": float(np.median(rss[-tail:]) - np.median(rss[:tail]))}
        print(f"[soak] replay reconstructed {len(rss)} windows; RSS right after a window, median of the first / last "
              f"quarter: {np.median(rss[:tail]):.0f} / {np.median(rss[-tail:]):.0f} MB")
    recorder.finish(f"dgslrm replay soak: {args.size[0]}x{args.size[1]} bag, {_host()}")
    if recorder.samples:  # the replay's own figure: sampled RSS over time, and RSS after each window
        write_replay_plot(out / "soak.png", recorder.samples, per_window, args.warmup * 60.0,
                          f"dgslrm replay soak: {args.size[0]}x{args.size[1]} looping bag, {_host()}")
    return 130 if interrupted else 0


def write_replay_plot(path: Path, samples: list[dict[str, Any]], per_window: list[tuple[int, float]],
                      warmup_s: float, title: str) -> Path:
    """PNG: the replay process's RSS sampled over time / its RSS right after each window."""
    from dgslrm_ros.core.plotting import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5))
    ax = axes[0]
    ax.plot([s["t"] / 60.0 for s in samples], [_number(s.get("rss_mb")) for s in samples], label="RSS, sampled")
    ax.axvline(warmup_s / 60.0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("minutes")
    ax.set_ylabel("MB")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    if per_window:
        ax.plot([n for n, _ in per_window], [mb for _, mb in per_window], label="RSS right after each window")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("window")
    ax.set_ylabel("MB")
    for ax in axes:
        ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=110)


def replay_window_memory(bag: Path) -> list[tuple[int, float]]:
    """(windows done, RSS right after that window in MB) from the /diagnostics a replay wrote per window.

    Read with the raw mcap scanner, so a replay stopped at the end of the soak (no bag footer) still counts.
    """
    from dgslrm_ros.bags.mcap_stream import McapTruncatedError, scan_mcap
    from dgslrm_ros.bags.messages import default_typestore
    from dgslrm_ros.bags.reader import diagnostic_values

    store = default_typestore()
    rows: list[tuple[int, float]] = []
    for path in sorted(bag.glob("*.mcap")) if bag.is_dir() else []:
        try:
            for message in scan_mcap(path):
                if message.topic != "/diagnostics":
                    continue
                values = diagnostic_values(store.deserialize_cdr(message.data, message.msgtype))
                if "memory_rss_after_window_mb" in values:
                    rows.append((int(values["windows_reconstructed"]), float(values["memory_rss_after_window_mb"])))
        except McapTruncatedError:
            pass
    return rows


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _host() -> str:
    """A short description of the machine (cores, memory, load) for the figures."""
    cores = os.cpu_count() or 0
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        mem_gb = math.nan
    load = _load()
    return f"{cores}-core CPU, {mem_gb:.0f} GB, load {math.nan if load is None else load:.1f} at start"
