"""Chunked coding of long 1-D signals (audio) in constant memory, without seams.

A long signal is coded ``chunk_frames`` latent frames at a time. Each chunk is encoded from
a window of samples that reaches ``context`` frames beyond it on both sides and decoded
from latents that do the same, so every output sample sees exactly the inputs it would see
if the whole signal were transformed at once:

* the packet transform is periodic over the padded signal (periodization), so windows at
  the ends wrap around to the other end, as the whole-signal transform does;
* the decoder's convolutions pad with zeros at the ends of the whole latent sequence, so
  the latents they read are clipped (not wrapped) at those ends.

The context is the transform's reach (filter length x (2^J - 1) samples) plus the
decoder's receptive field, so chunked and whole-signal results differ by float rounding
only (tested to 1e-4). Memory is bounded by the chunk size: a source is read window by
window, and coded chunks are decoded on demand with a small cache.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pywt
import torch

from .layers import DownUp, reach as layer_reach

if TYPE_CHECKING:
    from .model import Codec

DEFAULT_CHUNK_FRAMES = 1024  # 262,144 samples a chunk at J = 8 (about 6 s at 44.1 kHz)

Reader = Callable[[int, int], torch.Tensor]  # (start, stop) -> (C, stop - start) samples


def transform_reach(codec: Codec) -> int:
    """Latent frames on each side that one frame's transform touches, rounded up, plus one."""
    taps = pywt.Wavelet(codec.config.wavelet).dec_len
    return math.ceil((taps - 1) * (codec.config.block - 1) / codec.config.block) + 1


def decoder_reach(codec: Codec) -> int:
    """Latent positions on each side the decoder network reads along an axis (its receptive field's half-width)."""
    return layer_reach(codec.decoder)


def decoder_alignment(codec: Codec) -> int:
    """Where a window of latents may start for the decoder network to compute what it computes on the whole:
    every position, or every second one when it has a half-resolution stage (:class:`wavecodec.layers.DownUp`)."""
    return 2 if any(isinstance(m, DownUp) for m in codec.decoder.modules()) else 1


def _window(lo: int, hi: int, net: int, align: int, length: int) -> tuple[int, int]:
    """The latents ``[a, b)`` the decoder network reads for outputs ``[lo, hi)`` of a signal of ``length``: the reach on
    each side, clipped at the ends, widened to the network's alignment (see :func:`decoder_alignment`)."""
    a, b = max(0, lo - net), min(length, hi + net)
    return a - a % align, min(length, b + b % align)


def padded_positions(start: int, stop: int, length: int, padded: int) -> np.ndarray:
    """Sample indices of ``[start, stop)`` of the periodic, end-reflect-padded signal, as indices of the signal."""
    i = np.arange(start, stop) % padded
    if padded - length >= length:  # very short signals are padded by replication (see Codec.pad)
        return np.minimum(i, length - 1)
    return np.where(i < length, i, 2 * length - 2 - i)


def gather(read: Reader, positions: np.ndarray) -> torch.Tensor:
    """``(C, len(positions))`` samples, read as few contiguous runs as the positions allow."""
    breaks = np.flatnonzero(np.abs(np.diff(positions)) != 1) + 1
    parts = []
    for run in np.split(positions, breaks):
        lo, hi = int(run.min()), int(run.max()) + 1
        block = read(lo, hi)
        parts.append(block[:, torch.from_numpy(run - lo)])
    return torch.cat(parts, dim=1)


def chunks_per_window(codec: Codec, chunk_frames: int) -> int:
    """How many chunks one chunk's decoding window touches: a cache that size decodes no chunk twice."""
    return 3 + 2 * -(-(transform_reach(codec) + decoder_reach(codec)) // chunk_frames)


def chunk_count(frames: int, chunk_frames: int) -> int:
    """Chunks of ``chunk_frames`` frames needed for ``frames`` frames."""
    return -(-frames // chunk_frames)


@torch.inference_mode()
def encode_chunks(codec: Codec, read: Reader, length: int, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                  quant_step: float = 1.0) -> Iterator[torch.Tensor]:
    """Integer latents ``(1, latent_dim, frames)`` of each chunk of a ``length``-sample signal."""
    block = codec.config.block
    frames = -(-length // block)
    padded, reach = frames * block, transform_reach(codec)
    for k in range(chunk_count(frames, chunk_frames)):
        lo, hi = k * chunk_frames, min(frames, (k + 1) * chunk_frames)
        window = gather(read, padded_positions((lo - reach) * block, (hi + reach) * block, length, padded))
        v = codec.encode(window[None])[..., reach : reach + hi - lo]
        yield codec.quantize(v, quant_step)


class ChunkedLatents:
    """Random access to latent frames of a chunked file, decoding chunk payloads on demand (LRU cache)."""

    def __init__(self, decode_chunk: Callable[[int], np.ndarray], frames: int, chunk_frames: int, cache: int = 4) -> None:
        self.decode_chunk, self.frames, self.chunk_frames = decode_chunk, frames, chunk_frames
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.size = cache

    def _chunk(self, k: int) -> np.ndarray:
        if k in self.cache:
            self.cache.move_to_end(k)
        else:
            self.cache[k] = self.decode_chunk(k)
            if len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return self.cache[k]

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``[lo, hi)`` (within ``[0, frames)``) as ``(latent_dim, hi - lo)``."""
        f = self.chunk_frames
        parts = [self._chunk(k)[:, max(lo, k * f) - k * f : min(hi, (k + 1) * f) - k * f]
                 for k in range(lo // f, (hi - 1) // f + 1)]
        return np.concatenate(parts, axis=1)


def _runs(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` taken modulo ``size`` as contiguous runs inside ``[0, size)``."""
    wanted = np.arange(lo, hi) % size
    breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(wanted, breaks)]


@torch.inference_mode()
def encode_tiles(codec: Codec, x: torch.Tensor, tile: int, quant_step: float = 1.0,
                 progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Integer latents of a 2-D image ``(B, C, H, W)``, computed tile by tile in bounded memory.

    Each tile of ``tile x tile`` latent positions is encoded from a window of pixels reaching
    the transform's span beyond it, wrapping around the padded image as the periodic
    whole-image transform does: the latents equal the whole-image encode to float rounding.
    """
    block, reach = codec.config.block, transform_reach(codec)
    padded = codec.pad(x)  # in the input's own type: the float copy exists one tile at a time
    height, width = padded.shape[-2:]
    h, w = height // block, width // block
    q = torch.empty(x.shape[0], codec.config.latent_dim, h, w, dtype=codec.bottleneck.int_dtype)
    tiles = [(i, j) for i in range(0, h, tile) for j in range(0, w, tile)]
    for done, (i, j) in enumerate(tiles, start=1):
        i1, j1 = min(h, i + tile), min(w, j + tile)
        rows = torch.from_numpy(np.arange((i - reach) * block, (i1 + reach) * block) % height)
        cols = torch.from_numpy(np.arange((j - reach) * block, (j1 + reach) * block) % width)
        window = padded.index_select(-2, rows).index_select(-1, cols).to(codec.device)
        subbands = codec.wpt(codec.to_unit(window))
        v = codec.bottleneck.compand(codec.encoder(subbands))[..., reach : reach + i1 - i, reach : reach + j1 - j]
        q[..., i:i1, j:j1] = codec.quantize(v, quant_step).cpu()
        if progress is not None:
            progress(done, len(tiles))
    return q


@torch.inference_mode()
def decode_tiles(codec: Codec, latents: torch.Tensor, tile: int,
                 progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Decode 2-D latents ``(B, C, h, w)`` tile by tile: ``(row, col, samples)`` in the model's unit range.

    Each tile of ``tile x tile`` latent positions is synthesised from subbands that reach the
    transform's span beyond it, wrapping around the image as the periodic whole-image
    transform does, and those subbands from latents that reach the decoder's receptive field
    further, clipped at the image's edges as the network's zero padding is. So tiles join
    without seams and equal the whole-image decode to float rounding, while memory holds one
    tile's subbands at a time instead of the whole image's.
    """
    block, reach, net, align = codec.config.block, transform_reach(codec), decoder_reach(codec), decoder_alignment(codec)
    h, w = latents.shape[-2:]

    def subbands(r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        (a0, a1), (b0, b1) = _window(r0, r1, net, align, h), _window(c0, c1, net, align, w)
        z = codec.bottleneck.expand(latents[..., a0:a1, b0:b1])
        return codec.synthesize(z)[..., r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]

    tiles = [(i, j) for i in range(0, h, tile) for j in range(0, w, tile)]
    for done, (i, j) in enumerate(tiles, start=1):
        i1, j1 = min(h, i + tile), min(w, j + tile)
        rows = [torch.cat([subbands(r0, r1, c0, c1) for c0, c1 in _runs(j - reach, j1 + reach, w)], dim=-1)
                for r0, r1 in _runs(i - reach, i1 + reach, h)]
        window = torch.cat(rows, dim=-2)
        u = codec.wpt.inverse(window)[..., reach * block : (reach + i1 - i) * block, reach * block : (reach + j1 - j) * block]
        yield i * block, j * block, u
        if progress is not None:
            progress(done, len(tiles))


@torch.inference_mode()
def decode_chunks(codec: Codec, latents: Callable[[int, int], np.ndarray], frames: int, length: int,
                  chunk_frames: int = DEFAULT_CHUNK_FRAMES, reconstruction_step: float | torch.Tensor = 1.0) -> Iterator[torch.Tensor]:
    """Decoded samples of each chunk, in the model's unit range, ``(1, C, n)``; ``length`` samples in all.

    ``latents(lo, hi)`` gives the integer symbols of frames ``[lo, hi)`` as ``(latent_dim, hi - lo)``;
    ``reconstruction_step`` is what they are multiplied by (:meth:`Codec.reconstruction_step`).
    """
    block, reach, net, align = codec.config.block, transform_reach(codec), decoder_reach(codec), decoder_alignment(codec)

    def subbands(lo: int, hi: int) -> torch.Tensor:
        """Decoder output for frames ``[lo, hi)`` inside ``[0, frames)``, with the network's context clipped at the ends."""
        a, b = _window(lo, hi, net, align, frames)
        z = codec.dequantize(torch.from_numpy(latents(a, b))[None], reconstruction_step)
        return codec.synthesize(codec.bottleneck.expand(z))[..., lo - a : hi - a]

    for k in range(chunk_count(frames, chunk_frames)):
        lo, hi = k * chunk_frames, min(frames, (k + 1) * chunk_frames)
        wanted = np.arange(lo - reach, hi + reach) % frames
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        window = torch.cat([subbands(int(r[0]), int(r[-1]) + 1) for r in np.split(wanted, breaks)], dim=-1)
        u = codec.wpt.inverse(window)[..., reach * block : (reach + hi - lo) * block]
        yield u[..., : max(0, min(hi * block, length) - lo * block)]
