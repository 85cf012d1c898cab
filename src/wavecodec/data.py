"""Datasets in the compressed domain: read latent shards written by :mod:`wavecodec.convert`.

* :class:`LatentDataset`: map-style, random access through an index of tar member offsets.
* :class:`LatentShards`: iterable, streams whole shards in order (split across DataLoader
  workers), with an optional shuffle buffer; for datasets too big to index.
* :class:`OnTheFlyLatents`: computes latents from raw batches with ``codec.encode`` on the
  training device, skipping entropy coding entirely.

Both datasets yield ``(latents, label)``: by default the dequantized latents as float32
``(latent_dim, H / 2^J, W / 2^J)`` (the integer symbols times the file's quantization step),
``as_integers=True`` gives the int8/int16 symbols, ``decode=True`` the decoded signal
instead; ``label`` is -1 when the dataset has no labels. Latents are entropy-decoded from the
``.wvc`` bytes through :func:`wavecodec.compression.open_latents` (the same path as
``decompress``, chunked 1-D files included) without running the decoder network.
"""

from __future__ import annotations

import json
import os
import random
import tarfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .compression import decompress, open_latents
from .convert import INDEX
from .errors import FormatError, InputError
from .model import Codec
from .registry import load, model_for_dataset


def read_index(root: str | Path) -> dict[str, Any]:
    """A converted dataset's ``index.json``; :class:`InputError` if missing or not one."""
    path = Path(root) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{root} holds no {INDEX}; convert a dataset first (wavecodec.convert.convert)") from None
    except json.JSONDecodeError:
        raise InputError(f"{path} is not valid JSON") from None
    if index.get("format") != "wavecodec-latent-shards":
        raise InputError(f"{path} is not a wavecodec latent-shard index")
    return index


class _Reader:
    """Shared decoding of one sample: ``.wvc`` bytes (+ label) to what the dataset yields."""

    def __init__(self, root: str | Path, codec: Codec | str | None, as_integers: bool, decode: bool, crop: int | None) -> None:
        self.root = Path(root)
        self.index = read_index(root)
        self.codec = codec if isinstance(codec, Codec) else load(codec or model_for_dataset(self.index))
        self.fingerprint = self.codec.fingerprint()  # the reader's model is fixed: hashed once, not per sample
        if self.fingerprint != self.index["model_hash"]:
            raise InputError(f"the shards were made with model {self.index['model']!r} ({self.index['model_hash']}), not this one")
        self.as_integers, self.decode, self.crop = as_integers, decode, crop
        self.class_names: list[str] = self.index.get("class_names", [])

    def sample(self, wvc: bytes, label: bytes | None, rng: random.Random | None) -> tuple[torch.Tensor, int]:
        """What the dataset yields for one sample; ``rng`` draws the random crop (unused without one)."""
        y = int(label) if label is not None else -1
        if self.decode:
            return decompress(self.codec, wvc).signal[0], y
        _, symbols, _ = open_latents(self.codec, wvc, fingerprint=self.fingerprint)
        if self.as_integers:
            q = symbols.all()[0]
            return torch.from_numpy(np.ascontiguousarray(_random_crop(q, self.crop, rng) if self.crop else q)), y
        v = symbols.latents()[0]  # dequantizing is per channel, so cropping after it is the same
        return (_random_crop(v, self.crop, rng).contiguous() if self.crop else v), y


def _random_crop(q: np.ndarray | torch.Tensor, size: int, rng: random.Random) -> np.ndarray | torch.Tensor:
    """A random ``size`` window along every spatial axis of ``(C, *S)`` latents (whole axis if shorter)."""
    slices = [slice(None)]
    for n in q.shape[1:]:
        start = rng.randrange(n - size + 1) if n > size else 0
        slices.append(slice(start, start + min(size, n)))
    return q[tuple(slices)]


class LatentDataset(Dataset):
    """Map-style dataset over converted shards: item ``i`` is ``(latents, label)``."""

    def __init__(
        self,
        root: str | Path,
        codec: Codec | str | None = None,
        as_integers: bool = False,
        decode: bool = False,
        crop: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.reader = _Reader(root, codec, as_integers, decode, crop)
        self.seed, self.epoch = seed, 0
        self._fds: dict[str, int] = {}  # shard name -> open descriptor (see _read)
        self.entries: list[tuple[str, int, int, int | None, int]] = []  # shard, wvc offset, size, cls offset, cls size
        for shard in self.reader.index["shards"]:
            members: dict[str, dict[str, tuple[int, int]]] = {}
            with tarfile.open(self.reader.root / shard["name"]) as tar:
                for m in tar.getmembers():
                    key, _, ext = m.name.partition(".")
                    members.setdefault(key, {})[ext] = (m.offset_data, m.size)
            for key in sorted(members):
                parts = members[key]
                if "wvc" in parts:
                    cls = parts.get("cls", (None, 0))
                    self.entries.append((shard["name"], *parts["wvc"], *cls))
        if len(self.entries) != self.reader.index["count"]:
            raise FormatError(f"the shards hold {len(self.entries)} samples but the index says {self.reader.index['count']}")

    @property
    def class_names(self) -> list[str]:
        """Class names by label index (empty without labels)."""
        return self.reader.class_names

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Draw other random crops in ``epoch`` (call it at the start of each epoch, as with a DistributedSampler)."""
        self.epoch = epoch

    def _rng(self, i: int) -> random.Random:
        """The random crop of item ``i``: from ``seed`` (reproducible) or torch's per-process seed, the epoch and ``i``.

        A generator per item, not one shared object: DataLoader workers get copies of the
        dataset, and a shared generator would give every worker the same crops.
        """
        base = self.seed if self.seed is not None else torch.initial_seed()  # differs per worker and per epoch
        return random.Random(f"{base}:{self.epoch}:{i}")

    def _read(self, name: str, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of shard ``name``, through a descriptor kept open instead of opening the shard
        for every sample (a positioned read: no seek, so forked DataLoader workers share it safely)."""
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(self.reader.root / name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        data = os.pread(fd, size, offset)
        if len(data) != size:
            raise FormatError(f"{name} is shorter than its index says")
        return data

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        name, offset, size, cls_offset, cls_size = self.entries[i]
        wvc = self._read(name, offset, size)
        label = self._read(name, cls_offset, cls_size) if cls_offset is not None else None
        return self.reader.sample(wvc, label, self._rng(i) if self.reader.crop else None)

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers started by spawn open their own descriptors
        return {**self.__dict__, "_fds": {}}

    def __del__(self) -> None:
        for fd in getattr(self, "_fds", {}).values():
            os.close(fd)


def _rank() -> tuple[int, int]:
    """``(rank, world size)`` of a torch.distributed job (``(0, 1)`` outside one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class LatentShards(IterableDataset):
    """Streams samples shard by shard, split across distributed ranks and DataLoader workers.

    Every epoch the shard order is shuffled (from ``seed`` and the epoch, the same on every
    rank), then rank ``r`` of ``w`` takes every ``w``-th shard and each DataLoader worker every
    n-th of those, as WebDataset's ``split_by_node`` and ``split_by_worker`` do. ``shuffle`` > 1
    mixes samples through a buffer of that many. Call :meth:`set_epoch` at the start of each
    epoch. ``read_options`` are those of :class:`LatentDataset` (``as_integers``, ``decode``,
    ``crop``).
    """

    def __init__(self, root: str | Path, codec: Codec | str | None = None, shuffle: int = 0, seed: int = 0, **read_options: Any) -> None:
        unknown = set(read_options) - {"as_integers", "decode", "crop"}
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.reader = _Reader(root, codec, read_options.get("as_integers", False), read_options.get("decode", False),
                              read_options.get("crop"))
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shard order and random draws (the same on every rank)."""
        self.epoch = epoch

    def shards(self) -> list[str]:
        """The shards this process reads this epoch: shuffled, then this rank's share, then this worker's."""
        names = [s["name"] for s in self.reader.index["shards"]]
        if self.shuffle > 1:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(names)
        rank, world = _rank()
        names = names[rank::world]
        info = get_worker_info()
        return names[info.id :: info.num_workers] if info is not None else names

    def _samples(self, shards: list[str]) -> Iterator[tuple[bytes, bytes | None]]:
        for name in shards:
            pending: dict[str, dict[str, bytes]] = {}
            with tarfile.open(self.reader.root / name, mode="r|") as tar:
                for m in tar:
                    key, _, ext = m.name.partition(".")
                    f = tar.extractfile(m)
                    pending.setdefault(key, {})[ext] = f.read() if f else b""
                    if ext == "json":  # the last member of a sample
                        parts = pending.pop(key)
                        if "wvc" in parts:
                            yield parts["wvc"], parts.get("cls")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        shards = self.shards()
        info = get_worker_info()
        rank, _ = _rank()
        rng = random.Random(f"{self.seed}:{self.epoch}:{rank}:{info.id if info else 0}")
        buffer: list[tuple[bytes, bytes | None]] = []
        for sample in self._samples(shards):
            if self.shuffle <= 1:
                yield self.reader.sample(*sample, rng)
                continue
            buffer.append(sample)
            if len(buffer) >= self.shuffle:
                yield self.reader.sample(*buffer.pop(rng.randrange(len(buffer))), rng)
        rng.shuffle(buffer)
        for sample in buffer:
            yield self.reader.sample(*sample, rng)


class OnTheFlyLatents:
    """Latents computed from raw batches on the training device, without entropy coding.

    Use it in a training loop (or as a DataLoader ``collate_fn`` wrapper) to train on
    latents straight from pixels: the encoder is a wavelet transform and one 1x1
    convolution, so it costs little next to the model being trained, and on a GPU the
    pixels cross the bus once (as uint8) instead of as decoded floats::

        to_latents = OnTheFlyLatents(wavecodec.load("rgb-16x-linear"), device="cuda")
        for images, labels in loader:          # uint8 (B, 3, H, W)
            z = to_latents(images)             # float (B, 12, H/8, W/8), rounded like the files
    """

    def __init__(self, codec: Codec, device: str | torch.device = "cpu", quantize: bool = True) -> None:
        self.codec = codec.to(device).eval()
        self.device = torch.device(device)
        self.quantize = quantize

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        z = self.codec.encode(batch.to(self.device, non_blocking=True))
        return torch.round(z) if self.quantize else z
