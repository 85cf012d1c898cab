"""An int8 copy of the decoder's residual network, for the fastest CPU decode.

The residual's convolutions run as int8 (PyTorch's x86 quantized kernels: per-channel weights,
per-tensor activations). That is about 2.8x float32 on a CPU with AVX512-VNNI, where bfloat16 is
1.8-1.9x (``benchmarks/data_path.py``). Three choices keep the decode close to float32:

* the last convolution, which maps the features to every subband at once (their ranges differ
  by orders of magnitude, more than one int8 scale can hold), stays in floating point, and so
  do the residual blocks' additions (the running sum is not rounded to int8 after every block);
* the activation scales cover each activation's whole observed range (min/max): a histogram
  observer, PyTorch's default, clips the rare large values, which costs this decoder more
  (``experiments/int8_calibration.py``);
* the scales are calibrated once from the model's own latents of pink noise
  (a ``1/f`` amplitude spectrum, like photos and music), generated from a fixed seed: no data
  ships with the models, and no held-out signal is seen.

Outputs then depend on the calibration, not on the signal being decoded, so a tiled or chunked
decode equals the whole decode and repeated decodes are identical. The int8 decode's own noise
sits about 50 dB below full scale for ``rgb-16x`` and ``rgb-4x`` (0.03 and 0.06 dB lost at worst on
training photos) but 44 dB for ``rgb-storage``, whose larger residual carries more of the signal: up
to 1.2 dB lost on smooth photos decoded at 38-39 dB (``experiments/int8_calibration.py``). Keeping the
first convolution, which reads the latents, in floating point would lift that floor by 3-4 dB
(``rgb-storage``: -0.46 dB at worst) but cuts the speed-up to about 2x, below bfloat16's, so it is not done.
"""

from __future__ import annotations

import copy
import operator
import warnings
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import nn

SEEDS = 4  # calibration signals per quantization step
_LENGTH = {1: 64, 2: 32, 3: 8}  # calibration signal length per axis, in transform blocks


@lru_cache(maxsize=1)
def int8_available() -> bool:
    """Whether this PyTorch build has the x86 int8 convolution kernels (fbgemm or oneDNN)."""
    return "x86" in torch.backends.quantized.supported_engines


def pink_noise(channels: int, size: Sequence[int], seed: int) -> torch.Tensor:
    """``(1, channels, *size)`` noise with a ``1/f`` amplitude spectrum, in the unit range ``[-0.5, 0.5]``.

    Independent channels at a standard deviation of 0.2 of the range. Signals with shared
    channels, several contrasts up to clipping, and colour offsets calibrated worse on the
    training photos (``experiments/int8_calibration.py``): the wider ranges they reach cost
    every typical activation resolution.
    """
    gen = torch.Generator().manual_seed(seed)
    white = torch.randn(1, channels, *size, generator=gen, dtype=torch.float64)
    axes = list(range(2, 2 + len(size)))
    f2 = torch.zeros(tuple(size), dtype=torch.float64)
    for i, n in enumerate(size):
        f2 = f2 + torch.fft.fftfreq(n, dtype=torch.float64).view([-1 if j == i else 1 for j in range(len(size))]) ** 2
    u = torch.fft.ifftn(torch.fft.fftn(white, dim=axes) / f2.clamp(min=1.0 / max(size) ** 2).sqrt(), dim=axes).real
    return (u / u.std() * 0.2).clamp(-0.5, 0.5).float()


def calibration_size(ndim: int, block: int) -> list[int]:
    """The spatial size of a calibration signal for a model of ``ndim`` axes and transform ``block``."""
    return [block * _LENGTH[ndim]] * ndim


class Int8Residual(nn.Module):
    """``last(body(z))``: an int8 body and a floating-point last convolution (bfloat16 where the CPU has it)."""

    def __init__(self, body: nn.Module, last: nn.Module, half: bool) -> None:
        super().__init__()
        self.body, self.half = body, half
        self.last = copy.deepcopy(last).to(torch.bfloat16 if half else torch.float32)
        if half and self.last.weight.dim() == 4:
            self.last = self.last.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.body(z)
        return self.last(h.to(torch.bfloat16) if self.half else h).float()


def int8_residual(residual: nn.Sequential, calibration: list[torch.Tensor], half: bool, observer: str = "minmax",
                  float_additions: bool = True, float_first: bool = False) -> Int8Residual:
    """An int8 copy of ``residual`` (a ``Sequential`` ending in a convolution), its activation scales
    observed on the expanded latents ``calibration``; ``half``: run the last convolution in bfloat16.

    ``observer`` (``"minmax"`` or PyTorch's default ``"histogram"``), ``float_additions`` and
    ``float_first`` (the first convolution, which reads the latents, in floating point) are there to
    compare the choices (``experiments/int8_calibration.py``); the defaults are the decoder's.
    """
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver, QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    mapping = get_default_qconfig_mapping("x86")
    if observer == "minmax":
        mapping = mapping.set_global(QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8),
                                             weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                                                        qscheme=torch.per_channel_symmetric)))
    if float_additions:
        mapping = mapping.set_object_type(operator.add, None)
    if float_first:
        mapping = mapping.set_module_name("0", None)
    body = copy.deepcopy(residual[:-1]).float().eval()
    with warnings.catch_warnings():  # the FX API warns that it moves to torchao; it is in this PyTorch
        warnings.simplefilter("ignore")
        prepared = prepare_fx(body, mapping, example_inputs=(calibration[0],))
        with torch.inference_mode():
            for z in calibration:
                prepared(z)
        quantized = convert_fx(prepared)
    return Int8Residual(quantized, residual[-1], half).eval()
