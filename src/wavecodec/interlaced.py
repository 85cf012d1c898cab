"""The default entropy coder (``.wvc`` format versions 2 to 4): interlaced context coding in ten whole-tensor passes.

The serial context coder of format version 1 (:mod:`wavecodec.context`) decodes one
wavefront at a time: hundreds of small steps per image. This coder decodes every latent
channel at once in a fixed schedule of **ten steps**, like an interlaced PNG or the
checkerboard context of He et al. (CVPR 2021) applied recursively. Latents ``(B, C, *S)``
are viewed per item as ``C`` planes of ``rows x cols`` (rows are all but the last spatial
axis):

1. the positions on a lattice of spacing 8 (1/64 of them), without spatial context;
2. for spacing s = 8, 4, 2: the lattice *centres* ``(s/2, s/2)`` from their four diagonal
   neighbours at distance s/2, then the *edges* ``(0, s/2)`` and ``(s/2, 0)`` (one step each)
   from their four axial neighbours. Every neighbour used was decoded in an earlier step.

Within a step no symbol's context depends on another's, so the decoder computes all of a
step's contexts first and then runs the entropy decoder over them in one tight loop
(compiled with Numba, :mod:`wavecodec.rans`).

Each symbol ``q`` is coded as the residual ``r = q - mu`` under a discretised Laplace table
chosen from a frozen ladder of :data:`LADDER_SIZE` scales (a quarter octave apart) by a predicted
magnitude ``m``, with ``mu = alpha1 * mean(pair 1) + alpha2 * mean(pair 2)``: the two
opposite-neighbour pairs (left/right and up/down, or the two diagonals) weighted separately, since
the latent channels are anisotropic. The magnitude model is format version 4's **log-linear** one
(:data:`LOG`):

* ``log2 m = b + wV lV + wR lR + wA lA + wY lY`` with ``l = log2(1 + f)`` of four features: the
  spread ``V`` of the four neighbours, their own residual magnitudes ``R``, the residual activity
  ``A`` of all channels there, and ``Y``, the residual magnitudes of the channels already decoded
  *at the same position* (a step decodes channel by channel, so channel ``c`` sees channels
  ``0..c-1``; the channels' magnitudes move together at edges and texture). The first step uses
  ``Y`` alone. The table index is then ``4 log2 m`` less the first table's, one shift: no search.
* Versions 2 and 3 have the **linear** one (:data:`LINEAR`): ``m = a + wV V + wX X + wR R``, ``X``
  the activity of the other channels' values at the neighbours; on the dev photos' ``rgb-16x``
  latents its files are 2% larger (``benchmarks/data_path.py``).

The weights (per channel 16 for the log-linear model, 13 for the linear one, per step kind) are
fitted to the file's own latents when it is encoded (forward adaptation, like FLAC's predictors) and
stored at the start of the payload as fixed-point integers: least squares for the predictions; for
the log-linear magnitudes least squares on ``log2(|r| + 1/4)`` for the slopes, then each intercept
moved to the maximum-likelihood Laplace scale and on by whole ladder steps to the fewest bits. So the coder needs no trained tables, works with every
model, and adapts to each signal. Everything the decoder computes is integer arithmetic on those
integers and the frozen ladder (``assets/laplace_ladder.npz``), so decoding is bit-exact on every
machine and thread count. Values outside a table's window are an escape plus the raw value.

Format 4 chooses the magnitude model per payload (:func:`encode`): the log-linear one for loud
latents, else whichever codes them smaller (at a storage model's low qualities most symbols are 0
and the linear model's 13 weights a channel can win).

Payload of format 4: one byte naming the model (:data:`MODEL_IDS`), per item ``C x 16`` (or ``C x
13``) weights as zigzag LEB128 varints (:func:`pack_weights`: a quiet channel's weights take a byte
each, where at low rates int16 weights were a large share of a file), then the rANS words (:mod:`wavecodec.rans`:
16-bit words, little-endian, four interleaved states). Formats 2 and 3 have the linear model and
int16 weights (little-endian), format 2 two rANS states (:data:`VERSIONS`).

Payload of format 5: a bit per latent channel (``ceil(C / 8)`` bytes, least significant bit first), set for
the channels that hold a symbol other than 0 in some item, then a format 4 payload of those channels alone.
A variable-rate model leaves most of its channels at 0 at low qualities (the step outgrows them); format 4
still coded their weights and symbols: ``rgb-storage``'s files on the dev photos are 66% smaller at quality 0
and 44% at quality 20 in format 5 (``benchmarks/storage_coder.py``). At least one channel is always marked
(channel 0 when all are 0), so a payload still bounds the latents it can declare: at most ``C`` times format 4's
capacity (:func:`max_symbols`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import rans, scratch

from .entropy import quantize_pmf
from .errors import FormatError

LADDER_SIZE = 64
LADDER_MIN, LADDER_RATIO = 0.06, 2**0.25  # mean |residual| of table k: LADDER_MIN * LADDER_RATIO ** k
MAX_WINDOW = 1024
MAX_PROBABILITY = 1 - 2**-6  # the most any value may get: every symbol then costs >= 0.0227 bits
WEIGHTS = 13  # per channel: a0 | alpha1, alpha2, a, wV, wX, wR (diagonal) | the same (axial)
ALPHA_SHIFT = 10  # alpha in units of 2^-10
M_SHIFT = 16  # magnitudes m in units of 2^-16
_M_SCALE = {"a": 6, "wV": 2, "wX": 0, "wR": 2}  # each weight's unit is 2^-(M_SHIFT - shift)
LADDER_PATH = Path(__file__).resolve().parent / "assets" / "laplace_ladder.npz"
LOG, LINEAR = "log", "linear"  # the magnitude models: format version 4's, and that of versions 2 and 3
#: the log-linear model's table index is ``(4 acc + LOG_K0) >> 16`` (:func:`wavecodec.rans._log_index`):
#: ``round(-4 log2(LADDER_MIN) 2^16) + 2^15`` (the first table's offset and the rounding), frozen as an integer
LOG_K0 = 1096783
#: about how many of an item's symbols the encoder fits the log-linear slopes to, and then the intercepts: all of a
#: ``rgb-16x`` photo's, a ninth of an ``rgb-4x`` one's (which would otherwise take a third longer to encode)
FIT_SAMPLES, INTERCEPT_SAMPLES = 1 << 16, 1 << 14
SHIFT_SPAN = 16  # the intercept search's range in ladder steps (4 octaves either way)
_INTERCEPTS = (0, 4, 11)  # where the log-linear weights keep each step kind's intercept


@lru_cache(maxsize=4)
def _log_targets(max_symbol: int) -> np.ndarray:
    """What the encoder's least squares fits for each ``|residual|`` ``0..2 max_symbol``: ``log2(|residual| + 1/4)``."""
    return np.log2(np.arange(2 * max_symbol + 1) + 0.25)


# -- the frozen ladder of tables ----------------------------------------------------------
def build_ladder() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the ladder: window radii ``(K,)``, integer tables ``(K, 2 * MAX_WINDOW + 2)`` (zero-padded), edges ``(K - 1,)``.

    Table ``k`` is a Laplace distribution with mean absolute value ``m_k`` discretised to the
    integers in ``[-R_k, R_k]``, plus an escape entry holding the tail mass, quantized to
    ``2^16``. No entry may exceed :data:`MAX_PROBABILITY` (the excess goes to the values next
    to it), so every symbol costs at least ``-log2(MAX_PROBABILITY)`` bits and a payload's size
    bounds how many symbols it can hold (see :func:`decode`). ``edges`` are the geometric midpoints of the ``m_k`` in units of ``2^-16``: a
    predicted magnitude ``m`` selects table ``searchsorted(edges, m)``. Float arithmetic
    (with its platform-dependent ``exp``) is used only here; coding reads the shipped result.
    """
    mags = LADDER_MIN * LADDER_RATIO ** np.arange(LADDER_SIZE)
    radii = np.minimum(MAX_WINDOW, np.ceil(mags * 12 + 2)).astype(np.int64)
    tables = np.zeros((LADDER_SIZE, 2 * MAX_WINDOW + 2), dtype=np.int32)
    for k, (m, r) in enumerate(zip(mags, radii)):
        x = np.arange(-r, r + 2) - 0.5  # cell edges
        cdf = np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / m), 1 - 0.5 * np.exp(-np.maximum(x, 0) / m))
        probs = np.append(np.diff(cdf), 0.0)
        probs[-1] = max(1.0 - probs.sum(), 1e-9)
        excess = max(0.0, probs[r] - MAX_PROBABILITY)  # probs[r] is the value 0
        probs[r] -= excess
        probs[r - 1] += excess / 2
        probs[r + 1] += excess / 2
        tables[k, : 2 * r + 2] = quantize_pmf(probs[None])[0]
    edges = np.round(np.sqrt(mags[:-1] * mags[1:]) * 2**M_SHIFT).astype(np.int64)
    return radii, tables, edges


@lru_cache(maxsize=1)
def ladder() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The frozen ladder: radii ``(K,)``, edges ``(K - 1,)``, frequencies ``(K, W)`` and cumulative frequencies ``(K, W + 1)``."""
    with np.load(LADDER_PATH) as f:
        radii, tables, edges = f["radii"].astype(np.int64), f["tables"].astype(np.int64), f["edges"].astype(np.int64)
    cum = np.zeros((tables.shape[0], tables.shape[1] + 1), dtype=np.int64)
    np.cumsum(tables, axis=1, out=cum[:, 1:])
    return radii, edges, tables, cum


# -- fitting (encoder only) -----------------------------------------------------------------
def _to_fixed(values: np.ndarray, unit_shift: int) -> np.ndarray:
    return np.clip(np.round(values * 2.0**unit_shift), -32767, 32767).astype(np.int64)


def _feature_type(channels: int, max_symbol: int) -> type:
    """int32 where every feature fits (half the memory traffic of the encoder's passes), else int64.

    The largest is the activity ``X``: four neighbours' magnitudes summed over the channels.
    """
    return np.int32 if 8 * channels * max_symbol < 2**31 else np.int64


def _fit(q: np.ndarray, max_symbol: int, features: np.ndarray | None = None, model: str = LOG) -> np.ndarray:
    """Weights ``(C, WEIGHTS or rans.LOG_WEIGHTS)`` (int, within int16) for one item's latents ``(C, rows, cols)``.

    First the predictions' ``alpha`` (from the neighbours' values), then, with those fixed,
    the magnitude models (from the residuals they leave). The passes run compiled on the
    decoder's planes (:func:`wavecodec.rans.encoder_planes`, :func:`~wavecodec.rans.encoder_values`,
    :func:`~wavecodec.rans.encoder_residuals`) and leave every symbol's features in ``features``
    ``(rans.FEATURES, symbols)`` for the coding pass. ``model``: :data:`LOG` or :data:`LINEAR`.
    """
    channels, rows, cols = q.shape
    log_model = model == LOG
    if features is None:
        features = np.empty((rans.FEATURES, q.size), dtype=_feature_type(channels, max_symbol))
    values, resid, activity = _plane_buffers(channels, rows, cols, max_symbol)
    table = rans.plane_table(rows, cols)
    rans.encoder_planes(q, values, activity, table, log_model)
    w = np.zeros((channels, rans.LOG_WEIGHTS if log_model else WEIGHTS), dtype=np.int64)
    gram, rhs = rans.encoder_values(values, activity, table, channels, features)
    for kind in (1, 2):
        base = 2 + 7 * (kind - 1) if log_model else 1 + 6 * (kind - 1)
        w[:, base : base + 2] = _to_fixed(np.clip(_solve(gram[kind - 1], rhs[kind - 1]), -2, 2), ALPHA_SHIFT)
    first, gram, rhs = rans.encoder_residuals(values, resid, activity, table, w, max_symbol, ALPHA_SHIFT, features, log_model,
                                              _log_targets(max_symbol), max(1, q.size // FIT_SAMPLES))
    if log_model:
        return _fit_log_magnitudes(w, gram, rhs, features, table)
    w[:, 0] = _to_fixed(first, M_SHIFT - _M_SCALE["a"])
    for kind in (1, 2):
        coef = _solve(gram[kind, :, :4, :4], rhs[kind, :, :4])
        for slot, name in enumerate(("a", "wV", "wX", "wR")):
            w[:, 1 + 6 * (kind - 1) + 2 + slot] = _to_fixed(coef[:, slot], M_SHIFT - _M_SCALE[name])
    return w


def _fit_log_magnitudes(w: np.ndarray, gram: np.ndarray, rhs: np.ndarray, features: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The log-linear magnitude weights into ``w`` ``(C, rans.LOG_WEIGHTS)``: slopes by least squares on
    ``log2(|residual| + 1/4)`` (one pass, done by :func:`wavecodec.rans.encoder_residuals`), then each
    intercept moved to the maximum-likelihood Laplace scale for those slopes, then by whole ladder steps to the
    fewest bits under the ladder's discrete tables (a second pass: :func:`wavecodec.rans.intercept_moves`);
    they read a sample of the symbols (:data:`FIT_SAMPLES`, :data:`INTERCEPT_SAMPLES`). On the dev photos' ``rgb-16x`` latents this comes within 0.2% of a full maximum-likelihood
    fit, which needs a dozen passes."""
    slope_shift = rans.LOG_UNIT + rans.SLOPE_SHIFT  # coefficients on the integer l = 2^8 log2(1 + f)
    coef = _solve(gram[0, :, :2, :2], rhs[0, :, :2])
    w[:, 0], w[:, 1] = _to_fixed(coef[:, 0], rans.INTERCEPT_SHIFT), _to_fixed(coef[:, 1], slope_shift)
    for kind in (1, 2):
        base = 2 + 7 * (kind - 1)
        coef = _solve(gram[kind], rhs[kind])
        w[:, base + 2] = _to_fixed(coef[:, 0], rans.INTERCEPT_SHIFT)
        w[:, base + 3 : base + 7] = _to_fixed(coef[:, 1:], slope_shift)
    radii, costs, firsts = _cost_tables()
    moves = rans.intercept_moves(features, w, table, costs, firsts, radii, LOG_K0, max(1, features.shape[1] // INTERCEPT_SAMPLES),
                                 SHIFT_SPAN)
    for kind, slot in enumerate(_INTERCEPTS):
        w[:, slot] = _to_fixed(w[:, slot] + moves[kind], 0)
    return w


@lru_cache(maxsize=1)
def _cost_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ladder as the encoder's intercept search reads it: radii, every table's entries' bits back to back
    (``16 - log2`` of the frequency; an escape's adds its 16 raw bits), and where each table starts."""
    radii, _, tables, _ = ladder()
    sizes = 2 * radii + 2
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    costs = np.concatenate([16 - np.log2(np.maximum(tables[k, :size], 1)) + np.where(np.arange(size) == size - 1, 16, 0)
                            for k, size in enumerate(sizes)])
    return radii, costs, firsts


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Per channel, the least-squares solution from normal equations ``(C, k, k)``, ``(C, k)``: returns ``(C, k)``.

    A vanishing ridge (``1e-9`` of each diagonal entry) keeps every system solvable: where a
    feature is constant or empty (a silent channel, a missing step) it gives the minimum-norm
    solution, as the pseudo-inverse would, at a fraction of its cost; elsewhere it changes
    nothing that survives the rounding to fixed point.
    """
    k = gram.shape[-1]
    ridge = 1e-9 * np.abs(np.diagonal(gram, axis1=1, axis2=2)) + 1e-300
    return np.linalg.solve(gram + ridge[:, :, None] * np.eye(k), rhs[:, :, None])[:, :, 0]


# -- coding --------------------------------------------------------------------------------
def _decode_masked(data: bytes, shape: tuple[int, ...], max_symbol: int, dtype: type) -> np.ndarray:
    """Format 5: the live-channel mask, then the live channels as format 4 (the others are 0)."""
    channels = shape[1]
    size = (channels + 7) // 8
    if len(data) < size:
        raise FormatError("the ANS payload is cut off inside its channel mask")
    live = np.unpackbits(np.frombuffer(data, np.uint8, count=size), count=size * 8, bitorder="little").astype(bool)
    if live[channels:].any() or not live[0]:
        raise FormatError("the ANS payload's channel mask is malformed")
    live = live[:channels]
    inner = decode(data[size:], (shape[0], int(live.sum()), *shape[2:]), max_symbol, dtype, 4)
    if live.all():
        return inner
    out = np.zeros(shape, dtype)
    out[:, live] = inner
    return out


def max_symbols(payload_bytes: int, version: int = 4) -> int:
    """The most symbols a stream of ``payload_bytes`` can code: each costs at least ``-log2(MAX_PROBABILITY)`` bits.

    The version's rANS states add at most 32 bits each of slack. Work and memory of a decode are linear in the
    symbol count, so they are bounded by the payload's size, whatever the header declares.
    """
    return int((8 * payload_bytes + 32 * VERSIONS[version][0]) / _least_bits()) + 1


@lru_cache(maxsize=1)
def _least_bits() -> float:
    """The fewest bits any symbol costs: ``-log2`` of the ladder's largest probability."""
    _, _, tables, _ = ladder()
    return -math.log2(int(tables.max()) / 2**16)


@lru_cache(maxsize=1)
def _coder_tables() -> tuple[np.ndarray, ...]:
    """The ladder in the forms the compiled coder reads: radii, edges (with a sentinel above every
    magnitude, so the table lookup needs no bounds test), frequencies and cumulative frequencies
    (int32, for the encoder), the cells of :func:`wavecodec.rans.edge_cells`, and for the decoder
    the slot lookup and the packed intervals (:func:`wavecodec.rans.decoder_tables`)."""
    radii, edges, tables, cum = ladder()
    padded_edges = np.append(edges, np.int64(1) << 62)
    return radii, padded_edges, tables.astype(np.int32), cum.astype(np.int32), rans.edge_cells(edges), *rans.decoder_tables(tables, cum, radii)


def _plane_type(max_symbol: int) -> type:
    """int16 where values and residuals (within twice ``max_symbol``) fit, else int32: planes half the size stay in cache."""
    return np.int16 if max_symbol <= 16383 else np.int32


def _plane_buffers(channels: int, rows: int, cols: int, max_symbol: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat scratch for the per-step planes (:func:`wavecodec.rans.plane_table`) of values, residuals (``channels`` each)
    and activity (one; int32, as a sum over channels outgrows int16)."""
    per_channel = rans.plane_buffer_size(rows, cols)
    values = scratch.array("interlaced.values", (channels * per_channel,), _plane_type(max_symbol))
    return (values, scratch.array("interlaced.resid", (channels * per_channel,), values.dtype),
            scratch.array("interlaced.activity", (per_channel,), np.int32))


def _rows(q: np.ndarray) -> np.ndarray:
    """Latents ``(B, C, *S)`` as planes ``(B, C, rows, cols)`` (rows: all but the last axis)."""
    batch, channels, *size = q.shape
    return q.reshape(batch, channels, math.prod(size[:-1]) if len(size) > 1 else 1, size[-1])


#: what each format version's coder writes: (rANS states, magnitude model, fixed int16 weights); version 4 chooses
#: its model per payload (:func:`encode`) and writes variable-length weights; version 5 is version 4 behind the live-channel mask
VERSIONS = {2: (2, LINEAR, True), 3: (rans.LANES, LINEAR, True), 4: (rans.LANES, None, False), 5: (rans.LANES, None, False)}
MASKED = 5  # the first version whose payload starts with the live-channel mask
MODEL_IDS = (LINEAR, LOG)  # format 4's first payload byte
LOG_ABOVE = 6.0  # format 4 codes latents whose mean |q| is at least this with the log-linear model without trying the other


def encode(q: np.ndarray, max_symbol: int, version: int = MASKED, model: str | None = None) -> bytes:
    """Code integer latents ``(B, C, *S)`` (any integer type, ``|q| <= max_symbol``) into bytes as format ``version``
    (2 to 5) codes them.

    Version 5 writes the live-channel mask and codes the live channels as version 4 does.

    Version 4 picks the magnitude ``model`` (unless given): the log-linear one where the latents are loud (mean
    ``|q|`` at least :data:`LOG_ABOVE`: on the dev photos' ``rgb-16x`` and ``rgb-4x`` latents, mean ``|q|`` 6.7-15, it
    always coded them smaller, by 0.4% at the least), else whichever of the two
    codes them smaller (quiet latents, such as a storage model's at low qualities, where most symbols are 0 and
    the linear model's fewer weights often win). The payload then starts with the model's id.
    """
    if version >= MASKED:
        live = live_channels(q)
        return np.packbits(live, bitorder="little").tobytes() + encode(np.ascontiguousarray(q[:, live]), max_symbol, 4, model)
    lanes, fixed_model, fixed_header = VERSIONS[version]
    if fixed_model is not None:
        return _encode_with(q, max_symbol, lanes, fixed_model, fixed_header)
    if model is None and _quiet(q):
        tries = [_encode_with(q, max_symbol, lanes, m, False) for m in MODEL_IDS]
        model = MODEL_IDS[int(len(tries[1]) < len(tries[0]))]
        return bytes([MODEL_IDS.index(model)]) + tries[MODEL_IDS.index(model)]
    model = model or LOG
    return bytes([MODEL_IDS.index(model)]) + _encode_with(q, max_symbol, lanes, model, False)


def _quiet(q: np.ndarray) -> bool:
    """Whether latents are quiet enough (mean ``|q|`` under :data:`LOG_ABOVE`, from a sample) for format 4 to try both magnitude models."""
    return bool(np.abs(q.reshape(-1)[:: max(1, q.size // 8192)]).mean() < LOG_ABOVE)


def live_channels(q: np.ndarray) -> np.ndarray:
    """Which channels of latents ``(B, C, *S)`` hold a symbol other than 0 in some item (channel 0 always: see format 5)."""
    live = np.any(q.reshape(q.shape[0], q.shape[1], -1) != 0, axis=(0, 2))
    live[0] = True
    return live


def _intervals(q: np.ndarray, max_symbol: int, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fitted weights of ``q`` under ``model`` and every symbol's interval in coding order: ``(weights, starts,
    freqs, raw)`` (:func:`wavecodec.rans.code_interlaced`; scratch arrays, valid until the next call)."""
    planes = _rows(q)
    batch, channels, rows, cols = planes.shape
    symbols = q.size
    features = scratch.array("interlaced.features", (batch, rans.FEATURES, symbols // batch), _feature_type(channels, max_symbol))
    weights = np.stack([_fit(item, max_symbol, f, model) for item, f in zip(planes, features)])
    radii, edges, tables, cum, cells, *_ = _coder_tables()
    starts, freqs, raw = (scratch.array(f"interlaced.{name}", (symbols,), np.int32) for name in ("starts", "freqs", "raw"))
    rans.code_interlaced(features, weights, rans.plane_table(rows, cols), max_symbol, radii, edges, tables, cum, cells, starts, freqs,
                         raw, model == LOG, LOG_K0)
    return weights, starts, freqs, raw


def channel_bits(q: np.ndarray, max_symbol: int) -> np.ndarray:
    """Bits each latent channel of ``q`` ``(B, C, *S)`` costs as format 5 codes it: ``(C,)``, 0 for a channel format 5
    leaves out.

    The ideal code length of the intervals the coder gives the channel's symbols (16 bits more for an escape's raw
    value), under the magnitude model :func:`encode` would choose; the weights and the rANS flush, a few bytes a
    payload, are not counted. Training calibrates its per-channel rate estimate to this
    (:mod:`wavecodec.training.calibration`): a context coder charges a smooth channel far less than the channel's
    marginal distribution says.
    """
    out = np.zeros(q.shape[1])
    live = live_channels(q)
    sub = np.ascontiguousarray(q[:, live])
    batch, channels, rows, cols = _rows(sub).shape
    sizes = rans.step_kinds_and_sizes(rans.plane_table(rows, cols))[:, 1]
    order = np.tile(np.concatenate([np.repeat(np.arange(channels), m) for m in sizes]), batch)  # coding order: item, step, channel
    best: np.ndarray | None = None
    for model in MODEL_IDS if _quiet(sub) else (LOG,):
        _, _, freqs, raw = _intervals(sub, max_symbol, model)
        per_channel = np.bincount(order, weights=16.0 - np.log2(freqs) + 16.0 * (raw >= 0), minlength=channels)
        if best is None or per_channel.sum() < best.sum():
            best = per_channel
    out[live] = best
    return out


def _encode_with(q: np.ndarray, max_symbol: int, lanes: int, model: str, fixed_header: bool) -> bytes:
    """The weights (int16, or variable-length: :func:`pack_weights`) and the rANS words of ``q`` under ``model``."""
    weights, starts, freqs, raw = _intervals(q, max_symbol, model)
    symbols = q.size
    out = scratch.array("interlaced.words", (4 * symbols + 2 * lanes,), np.uint16)
    n = rans.encode_symbols(starts, freqs, raw, scratch.array("interlaced.spliced", (2, 2 * symbols), np.int32), out, lanes)
    head = weights.astype("<i2").tobytes() if fixed_header else pack_weights(weights.ravel())
    return head + out[:n][::-1].astype("<u2", copy=False).tobytes()


def pack_weights(w: np.ndarray) -> bytes:
    """Weights (ints within int16) as zigzag LEB128 varints (:func:`wavecodec.rans.pack_varints`), then a zero byte
    where that ends them, after the payload's model byte, at an even offset: the rANS words after them stay aligned."""
    out = scratch.array("interlaced.varints", (3 * w.size + 1,), np.uint8)
    n = rans.pack_varints(np.ascontiguousarray(w, dtype=np.int64), out)
    out[n] = 0
    return out[: n + (n + 1) % 2].tobytes()


_VARINT_PROBLEMS = {-1: "the ANS payload's weights are cut off", -2: "the ANS payload's weights are malformed",
                    -3: "the ANS payload's weights are out of range"}


def unpack_weights(data: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    """Inverse of :func:`pack_weights` for ``count`` weights from ``data[offset:]``: ``(weights, end offset)``, the
    padding included; :class:`FormatError` for varints that are cut off, longer than 3 bytes or beyond int16, or
    padding that is not zero."""
    out = np.empty(count, np.int64)
    end = rans.unpack_varints(np.frombuffer(data, np.uint8), offset, out)
    if end < 0:
        raise FormatError(_VARINT_PROBLEMS[end])
    if end % 2:  # the padding that ends the weights at an even offset
        if end >= len(data) or data[end]:
            raise FormatError(_VARINT_PROBLEMS[-2])
        end += 1
    return out, end


def decode(data: bytes, shape: tuple[int, ...], max_symbol: int, dtype: type = np.int32, version: int = MASKED) -> np.ndarray:
    """Inverse of :func:`encode` for latents of ``shape``, as ``dtype``; :class:`FormatError` for anything malformed."""
    if version >= MASKED:
        return _decode_masked(data, shape, max_symbol, dtype)
    batch, channels, *size = shape
    rows = math.prod(size[:-1]) if len(size) > 1 else 1
    cols = size[-1]
    lanes, model, fixed_header = VERSIONS[version]
    offset = 0
    if model is None:
        if not data or data[0] >= len(MODEL_IDS):
            raise FormatError("the ANS payload names no known magnitude model")
        model, offset = MODEL_IDS[data[0]], 1
    per_channel = rans.LOG_WEIGHTS if model == LOG else WEIGHTS
    count = batch * channels * per_channel
    if fixed_header:
        head = offset + 2 * count
        if len(data) < head:
            raise FormatError("the ANS payload has the wrong length for the declared latents")
        weights = np.frombuffer(data, dtype="<i2", count=count, offset=offset).astype(np.int64)
    else:
        weights, head = unpack_weights(data, offset, count)
    weights = weights.reshape(batch, channels, per_channel)
    if len(data) < head + 4 * lanes or (len(data) - head) % 2:
        raise FormatError("the ANS payload has the wrong length for the declared latents")
    symbols = batch * channels * rows * cols
    if symbols > max_symbols(len(data) - head, version):  # checked before anything is allocated
        raise FormatError("the ANS payload is too short to hold the latents it declares")
    n_words = (len(data) - head) // 2
    if n_words > 2 * symbols + 2 * lanes:
        raise FormatError("the ANS payload is longer than the declared latents can need")
    words = scratch.array("interlaced.words", (2 * symbols + 2 * lanes,), np.uint16)
    words[:n_words] = np.frombuffer(data, dtype="<u2", count=n_words, offset=head)  # read in place: no copy of the payload
    words[n_words:] = 0  # zero padding: the decoder can never read past it
    values, resid, activity = _plane_buffers(channels, rows, cols, max_symbol)
    most = rans.most_per_step(rans.plane_table(rows, cols))
    per_step, floats = scratch.array("interlaced.per_step", (6, most), np.int64), scratch.array("interlaced.floats", (most,), np.float64)
    out = scratch.output("interlaced.out", (batch, channels, rows, cols), dtype)  # the caller's own
    _, edges, _, _, cells, lookup, intervals, ends = _coder_tables()
    status = rans.decode_interlaced(words, n_words, weights, out, max_symbol, edges, intervals, lookup, ends, cells,
                                    ALPHA_SHIFT, values, resid, activity, per_step, floats, lanes, model == LOG, LOG_K0)
    if status:
        raise FormatError(rans.PROBLEMS.get(status, "the ANS payload is corrupted"))
    return out.reshape(shape)
