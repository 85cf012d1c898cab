"""Convert a dataset of images (or audio) into shards of compressed latents.

Layout of ``DST``::

    shard-000000.tar   WebDataset shard: per sample KEY.wvc (the file), KEY.cls (label index,
                       when there are labels) and KEY.json (source path, shape, label name)
    shard-000000.json  what the shard holds and which inputs could not be read
    index.json         counts, model name and hash, shapes, class names, sizes, the shards

Items are sorted, shuffled with a fixed seed (so every shard mixes the classes) and cut into
shards deterministically, so shard ``k`` always holds the same inputs. A shard is written to a temporary name and renamed when complete, and its sidecar
JSON written after it: a re-run skips shards that have both, so after a crash (even
``kill -9``) every input ends up present exactly once. The per-shard function is the same
for the local engine (worker processes) and the Ray engine (one Ray task per shard).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .atomic import atomic_write
from .errors import InputError, WavecodecError
from .files import SUFFIXES, read_input

INDEX = "index.json"


@dataclass(frozen=True)
class Item:
    """One input: its path, its label index (-1 for none) and a stable key."""

    path: str
    label: int
    key: str


def list_items(
    src: str | os.PathLike[str], labels_csv: str | None = None, labels_from_folders: bool = False
) -> tuple[list[Item], list[str]]:
    """The sorted inputs of ``src`` (a folder tree or a manifest file) and the class names."""
    root = Path(src)
    if root.is_dir():
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        base = root
    elif root.is_file():
        base = root.parent
        lines = [ln.strip() for ln in root.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        paths = sorted((base / ln).resolve() if not Path(ln).is_absolute() else Path(ln) for ln in lines)
    else:
        raise InputError(f"{src}: no such file or directory")
    if not paths:
        raise InputError(f"{src} lists no supported files")
    names: list[str] = []
    label_of: dict[Path, str] = {}
    if labels_from_folders:
        for p in paths:
            rel = p.relative_to(base)
            if len(rel.parts) < 2:
                raise InputError(f"{p} is not inside a class folder (labels from folders)")
            label_of[p] = rel.parts[0]
    elif labels_csv:
        try:
            with open(labels_csv, newline="") as f:
                rows = list(csv.reader(f))
        except OSError:
            raise InputError(f"cannot read the labels file {labels_csv}") from None
        for row in rows:
            if len(row) >= 2 and row[0] not in ("path", "file"):
                path = Path(row[0]) if Path(row[0]).is_absolute() else (base / row[0]).resolve()
                label_of[path] = row[1]
        missing = [p for p in paths if p.resolve() not in label_of and p not in label_of]
        if missing:
            raise InputError(f"{missing[0]} has no label in {labels_csv} ({len(missing)} inputs without labels)")
    if label_of:
        names = sorted(set(label_of.values()))
    index = {n: i for i, n in enumerate(names)}
    items = []
    for i, p in enumerate(paths):
        name = label_of.get(p, label_of.get(p.resolve()))
        items.append(Item(str(p), index[name] if name is not None else -1, f"{i:09d}"))
    return items, names


def shard_name(k: int) -> str:
    """The file stem of shard ``k``."""
    return f"shard-{k:06d}"


def is_done(dst: Path, k: int) -> bool:
    """Whether shard ``k`` of ``dst`` is complete (its tar and its sidecar JSON exist)."""
    return (dst / f"{shard_name(k)}.tar").exists() and (dst / f"{shard_name(k)}.json").exists()


_WORKER_CODEC: dict[str, Any] = {}


def _codec(model: str):
    if model not in _WORKER_CODEC:
        import multiprocessing

        import torch

        from .registry import load

        if multiprocessing.current_process().name != "MainProcess":
            torch.set_num_threads(1)  # one worker process per core: no oversubscription
        _WORKER_CODEC[model] = load(model)
    return _WORKER_CODEC[model]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def convert_shard(dst: str, k: int, items: list[Item], model: str, coder: str, class_names: list[str]) -> dict[str, Any]:
    """Compress ``items`` into shard ``k`` of ``dst``; returns the shard's report."""
    out = Path(dst)
    codec = _codec(model)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{shard_name(k)}.", suffix=".tar.tmp", dir=out)  # unique: runs never share one
    os.close(fd)
    tmp = Path(tmp_name)
    report: dict[str, Any] = {"shard": k, "items": 0, "failed": [], "bytes": 0, "source_bytes": 0, "shapes": {}}
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread in every engine: the encoder's float sums, and so the latents, never depend on --workers
    try:
        _write_shard(tmp, items, codec, coder, class_names, report)
    finally:
        torch.set_num_threads(threads)
    os.replace(tmp, out / f"{shard_name(k)}.tar")  # a shard appears whole or not at all
    atomic_write(out / f"{shard_name(k)}.json", lambda t: Path(t).write_text(json.dumps(report)))
    return report


def _write_shard(tmp: Path, items: list[Item], codec: Any, coder: str, class_names: list[str], report: dict[str, Any]) -> None:
    with tarfile.open(tmp, "w") as tar:
        for item in items:
            try:
                x, facts = read_input(item.path)
                data = codec.compress(x, coder=coder, sample_rate=facts.get("sample_rate"))
            except WavecodecError as exc:
                report["failed"].append({"path": item.path, "error": str(exc)})
                continue
            meta = {"source": item.path, "shape": list(x.shape[1:]), "dtype": str(x.dtype).replace("torch.", "")}
            if item.label >= 0:
                meta["label"] = class_names[item.label]
                _add(tar, f"{item.key}.cls", str(item.label).encode())
            _add(tar, f"{item.key}.wvc", data)
            _add(tar, f"{item.key}.json", json.dumps(meta).encode())
            report["items"] += 1
            report["bytes"] += len(data)
            report["source_bytes"] += os.path.getsize(item.path)
            shape = "x".join(map(str, x.shape[1:]))
            report["shapes"][shape] = report["shapes"].get(shape, 0) + 1


def _die_with_parent() -> None:
    """In a worker: ask Linux to kill this process when its parent dies (even by ``kill -9``)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers end when their queue closes
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _run_local(jobs: list[tuple], workers: int, progress) -> None:
    if workers <= 1:
        for job in jobs:
            progress(convert_shard(*job))
        return
    import multiprocessing

    # spawn, not fork: forking a process that has run torch's thread pools can hang
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_die_with_parent) as pool:
        futures = [pool.submit(convert_shard, *job) for job in jobs]
        for fut in as_completed(futures):
            progress(fut.result())


def _run_ray(jobs: list[tuple], workers: int, progress) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("the ray engine needs Ray: pip install 'wavecodec[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=os.environ.get("RAY_ADDRESS"), num_cpus=None if os.environ.get("RAY_ADDRESS") else max(1, workers),
                 include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(convert_shard)
        pending = [task.remote(*job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            progress(ray.get(done[0]))
    finally:
        if started_here:
            ray.shutdown()


def convert(
    src: str,
    dst: str,
    model: str,
    labels: str | None = None,
    labels_from_folders: bool = False,
    shard_size: int = 1000,
    engine: str = "local",
    workers: int = 2,
    coder: str = "ans",
    progress: Callable[[int, int], None] | None = None,
    shuffle_seed: int | None = 0,
) -> dict[str, Any]:
    """Convert ``src`` into latent shards in ``dst``; re-running it resumes.

    Args:
        src: a folder tree of inputs, or a manifest file listing paths.
        dst: the output folder.
        model: a shipped model name or a checkpoint path.
        labels: a CSV of ``path,label``; or ``labels_from_folders``: the first subfolder names the class.
        shard_size: samples per shard. engine: ``"local"`` (worker processes) or ``"ray"``.
        workers: processes (local) or CPUs (local Ray). coder: the entropy coder.
        progress: called as ``progress(done, total)`` items, first with what earlier runs did.
        shuffle_seed: the inputs are spread over the shards in an order shuffled with this seed
            (so that every shard mixes the classes, as a streaming shuffle buffer needs);
            ``None`` keeps them sorted.

    Returns:
        The index (also written to ``dst/index.json``): counts, failures, sizes, shards.

    Raises:
        InputError: bad arguments, unreadable inputs or labels, or ``dst`` holding another conversion.
    """
    if shard_size < 1:
        raise InputError("shard_size must be at least 1")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; use local or ray")
    items, class_names = list_items(src, labels, labels_from_folders)
    if shuffle_seed is not None:  # deterministic: a rerun puts every input in the same shard
        random.Random(shuffle_seed).shuffle(items)
    out = Path(dst)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        return _convert_locked(src, out, model, items, class_names, shard_size, engine, workers, coder, progress,
                               shuffle_seed)


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the conversion: a second run into the same folder is refused, not raced."""
    import fcntl

    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another conversion is writing to {out}; wait for it to finish") from None
        for pattern in (".shard-*.tmp", ".index.json.*.tmp", ".plan.json.*.tmp"):  # shards, their manifests, the index, the plan
            for stale in out.glob(pattern):  # left by a killed run: nothing else writes here now
                stale.unlink(missing_ok=True)
        yield


def _convert_locked(src: str, out: Path, model: str, items: list[Item], class_names: list[str], shard_size: int,
                    engine: str, workers: int, coder: str, progress: Callable[[int, int], None] | None,
                    shuffle_seed: int | None) -> dict[str, Any]:
    codec = _codec(model)
    info = {"model": codec.config.name, "model_ref": str(model), "model_hash": codec.fingerprint(), "coder": coder,
            "shard_size": shard_size}
    plan_path = out / "plan.json"
    plan = {**info, "items": len(items), "source": str(src), "class_names": class_names, "shuffle_seed": shuffle_seed}
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != plan:
            raise InputError(f"{out} holds a conversion with other inputs, model or shard size; use another destination")
    else:
        atomic_write(plan_path, lambda t: Path(t).write_text(json.dumps(plan, indent=2)))
    shards = [items[i : i + shard_size] for i in range(0, len(items), shard_size)]
    jobs = [(str(out), k, shard, model, coder, class_names) for k, shard in enumerate(shards) if not is_done(out, k)]
    done = len(items) - sum(len(j[2]) for j in jobs)
    if progress is not None:
        progress(done, len(items))

    def shard_done(report: dict[str, Any]) -> None:
        nonlocal done
        done += len(shards[report["shard"]])
        if progress is not None:
            progress(done, len(items))

    started = time.perf_counter()
    (_run_ray if engine == "ray" else _run_local)(jobs, workers, shard_done)
    reports = [json.loads((out / f"{shard_name(k)}.json").read_text()) for k in range(len(shards))]
    shapes: dict[str, int] = {}
    for r in reports:
        for s, n in r["shapes"].items():
            shapes[s] = shapes.get(s, 0) + n
    index = {
        **plan,
        "format": "wavecodec-latent-shards",
        "version": 1,
        "latent_dim": codec.config.latent_dim,
        "levels": codec.config.levels,
        "count": sum(r["items"] for r in reports),
        "failed": [f for r in reports for f in r["failed"]],
        "bytes": sum(r["bytes"] for r in reports),
        "source_bytes": sum(r["source_bytes"] for r in reports),
        "shapes": shapes,
        "shards": [{"name": f"{shard_name(r['shard'])}.tar", "count": r["items"]} for r in reports],
        "seconds_this_run": time.perf_counter() - started,
    }
    atomic_write(out / INDEX, lambda t: Path(t).write_text(json.dumps(index, indent=2)))
    return index
