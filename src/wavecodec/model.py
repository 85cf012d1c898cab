"""The codec: wavelets -> encoder -> bottleneck -> decoder -> inverse wavelets.

Data flow, for an image ``x`` of shape ``(B, C, H, W)``::

    x --normalise, reflect-pad to a multiple of 2^J--> wpt.analysis --> (B, C*4^J, H/2^J, W/2^J)
      --LinearEncoder--> (B, latent_dim, ...) --compand--> latents in (-(2^b-1)/2, (2^b-1)/2)
      --round--> b-bit integers --expand--> Decoder --> subbands --wpt.synthesis--> crop --> x_hat
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Callable, Sequence

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from . import compression, metrics, perceptual, scratch
from .bottleneck import Bottleneck, per_channel
from .config import CodecConfig
from .context import ContextModel
from .decoder import Decoder
from .encoder import LinearEncoder
from .entropy import EntropyModel
from .errors import ShapeError
from .images import as_signal
from .layers import count_parameters
from .quantized import SEEDS, calibration_size, pink_noise
from .rates import DEFAULT_QUALITY, RateLadder
from .wpt import WaveletPacket
from .wpt import analysis_into as wpt_analysis_into
from .wpt import lifting_computes


class Codec(nn.Module):
    """A learned wavelet codec built from a :class:`CodecConfig`.

    Inputs are ``(B, C, *S)`` tensors with ``ndim`` spatial axes of any size, either floats
    in ``config.value_range`` or integers (``uint8``/``uint16`` scaled by their maximum,
    signed integers as PCM by ``2^(bits-1)``); outputs use the same range and dtype.
    """

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        self.wpt = WaveletPacket(config.levels, config.wavelet)
        self.encoder = LinearEncoder(config)
        self.bottleneck = Bottleneck(config.latent_bits)
        self.decoder = Decoder(config)
        self.entropy = EntropyModel(config.latent_dim, config.latent_bits)
        self.context = ContextModel(config.latent_dim, config.latent_bits)
        self.rates = RateLadder(config.rate_lambdas, config.latent_dim, config.latent_bits, config.rate_gains,
                                config.rate_model) if config.rate_lambdas else None
        self._fingerprint_cache: tuple[Any, str] | None = None
        #: how the decoder's residual runs when decoding (not training) on a CPU: ``"float32"`` (the
        #: default: the same samples on every machine), ``"bfloat16"`` (about 1.8x faster where the CPU
        #: has it, within 0.01 dB) or ``"int8"`` (about 2.8x, within 0.03 dB for ``rgb-16x`` and 0.1 dB for
        #: ``rgb-4x``, but up to 1.2 dB for ``rgb-storage`` at high quality; see :mod:`wavecodec.quantized`). The lower two depend on the CPU.
        self.decoder_precision = "float32"

    # -- identity ---------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A short hash of the config and every weight, recorded in compressed files.

        Every ``compress`` and ``decompress`` needs it, so the digest is cached and
        recomputed only when a tensor was replaced or modified in place (its storage pointer
        or autograd version counter changed) or the config changed.

        Returns:
            16 hex digits.
        """
        state = self.state_dict()
        key = (self.config, tuple((name, t.data_ptr(), t._version, tuple(t.shape), t.dtype) for name, t in state.items()))
        if self._fingerprint_cache is not None and self._fingerprint_cache[0] == key:
            return self._fingerprint_cache[1]
        h = hashlib.sha256(self.config.to_json().encode())
        for name, tensor in sorted(state.items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()[:16]
        self._fingerprint_cache = (key, digest)
        return digest

    @property
    def param_dtype(self) -> torch.dtype:
        """The floating-point type the model computes in (that of its weights)."""
        return self.encoder.proj.weight.dtype

    @property
    def device(self) -> torch.device:
        """The device the model's weights are on."""
        return self.encoder.proj.weight.device

    # -- value range and size handling ---------------------------------------------------
    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        if not isinstance(x, torch.Tensor):
            raise ShapeError(f"expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() != c.ndim + 2 or x.shape[1] != c.channels:
            axes = {1: "T", 2: "H, W", 3: "D, H, W"}[c.ndim]
            raise ShapeError(
                f"this codec takes (B, {c.channels}, {axes}) tensors, got shape {tuple(x.shape)}"
            )
        if x.numel() == 0:
            raise ShapeError(f"the input is empty (shape {tuple(x.shape)})")

    def to_unit(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Map input samples to floats in ``[-0.5, 0.5]`` (the range the model works in), into ``out`` if given."""
        if not (x.is_floating_point() or x.dtype in (torch.uint8, torch.uint16, torch.bool, torch.int8, torch.int16, torch.int32)):
            raise ShapeError(f"unsupported input dtype {x.dtype}")
        u = x.to(self.param_dtype, copy=True) if out is None else out.copy_(x)  # then in place: one float image, not three
        if x.is_floating_point():
            lo, hi = self.config.value_range
            return u.sub_(lo).div_(hi - lo).sub_(0.5)
        if x.dtype in (torch.uint8, torch.uint16, torch.bool):
            return u.div_(1.0 if x.dtype == torch.bool else float(torch.iinfo(x.dtype).max)).sub_(0.5)
        return u.div_(float(2 ** (torch.iinfo(x.dtype).bits - 1))).add_(1).div_(2).sub_(0.5)

    def from_unit(self, u: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Inverse of :meth:`to_unit`, clamped to the valid range and cast to ``dtype``."""
        u = (u + 0.5).clamp(0, 1)
        if dtype.is_floating_point:
            lo, hi = self.config.value_range
            return (u * (hi - lo) + lo).to(dtype)
        if dtype in (torch.uint8, torch.uint16, torch.bool):
            top = 1.0 if dtype == torch.bool else float(torch.iinfo(dtype).max)
            return torch.round(u * top).to(dtype)
        info = torch.iinfo(dtype)
        return torch.round(u * 2 * 2 ** (info.bits - 1) - 2 ** (info.bits - 1)).clamp(info.min, info.max).to(dtype)

    def pad(self, u: torch.Tensor) -> torch.Tensor:
        """Pad every spatial axis at the end to a multiple of ``2^levels`` (reflect, or replicate when too short)."""
        block = self.config.block
        pads: list[int] = []
        reflect = True
        for size in reversed(u.shape[2:]):
            extra = -size % block
            pads += [0, extra]
            reflect &= extra < size
        if not any(pads):
            return u
        return F.pad(u, pads, mode="reflect" if reflect else "replicate")

    @staticmethod
    def crop(u: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Crop the spatial axes of ``u`` to ``size`` (undoes :meth:`pad`)."""
        slices = (slice(None), slice(None)) + tuple(slice(0, s) for s in size)
        return u[slices]

    def latent_shape(self, size: Sequence[int]) -> tuple[int, ...]:
        """Shape ``(latent_dim, *S')`` of the latents of one input of spatial ``size``."""
        block = self.config.block
        return (self.config.latent_dim, *(-(-s // block) for s in size))

    # -- the stages ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous (companded) latents ``(B, latent_dim, *ceil(S / 2^J))``, for compressed-domain learning."""
        self._check(x)
        if self._encodes_in_scratch(x):
            return self.bottleneck.compand(self.encoder(self._subbands_in_scratch(x)), in_place=True)
        subbands = self.wpt(self.pad(self.to_unit(x)))
        return self.bottleneck.compand(self.encoder(subbands))

    def _encodes_in_scratch(self, x: torch.Tensor) -> bool:
        """CPU inference by lifting: the intermediates can live in reused buffers (:mod:`wavecodec.scratch`)."""
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.encoder.proj.weight.requires_grad)
        return not needs_grad and x.device.type == "cpu" and lifting_computes(self.param_dtype, self.device, self.config.wavelet)

    def _subbands_in_scratch(self, x: torch.Tensor) -> torch.Tensor:
        """``wpt(pad(to_unit(x)))`` computed in per-thread scratch buffers: a stream of inputs allocates nothing new."""
        dtype = torch.empty(0, dtype=self.param_dtype).numpy().dtype
        u = self.pad(self.to_unit(x, out=torch.from_numpy(scratch.array("codec.unit", tuple(x.shape), dtype))))
        B, C, *size = u.shape
        small = [n // self.config.block for n in size]
        out = torch.from_numpy(scratch.array("codec.subbands", (B, C * self.config.block ** len(size), *small), dtype))
        return wpt_analysis_into(u.contiguous(), self.config.levels, out)

    def quantization_step(self, quant_step: float = 1.0, quality: float | None = None) -> float | torch.Tensor:
        """The step(s) :meth:`quantize` takes: ``quant_step`` for a fixed-rate model; for a
        variable-rate one, its per-channel steps at ``quality`` (default
        :data:`~wavecodec.rates.DEFAULT_QUALITY`) times ``quant_step``.

        Raises:
            ShapeError: a quality for a fixed-rate model, or one outside 0..100.
        """
        if self.rates is None:
            if quality is not None:
                raise ShapeError(f"model {self.config.name or 'unnamed'!r} has a single rate; use a variable-rate model "
                                 "(see `wavecodec models`) for a quality setting, or a quantization step")
            return quant_step
        return self.rates.steps(DEFAULT_QUALITY if quality is None else quality) * quant_step  # steps() checks quality

    def reconstruction_step(self, quant_step: float = 1.0, quality: float | None = None) -> float | torch.Tensor:
        """What :meth:`dequantize` multiplies symbols by: :meth:`quantization_step`, times the rung's
        reconstruction gains for a variable-rate model that has them (``CodecConfig.rate_gains``)."""
        if self.rates is None or self.rates.log_gains is None:
            return self.quantization_step(quant_step, quality)
        return self.rates.reconstruction_steps(DEFAULT_QUALITY if quality is None else quality) * quant_step

    def quantize(self, latents: torch.Tensor, quant_step: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Round latents to ``latent_bits``-bit integer symbols (int8/int16), in steps of ``quant_step``."""
        return self.bottleneck.quantize(latents, quant_step)

    def dequantize(self, symbols: torch.Tensor, quant_step: float | torch.Tensor = 1.0) -> torch.Tensor:
        """Integer symbols back to latents the decoder takes (floats in the model's dtype)."""
        return self.bottleneck.dequantize(symbols, quant_step, self.param_dtype)

    def decode(
        self,
        latents: torch.Tensor,
        size: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Reconstruct from latents (float or integer); crop to ``size`` if given."""
        expected = self.config.ndim + 2
        if latents.dim() != expected or latents.shape[1] != self.config.latent_dim:
            raise ShapeError(
                f"expected latents of shape (B, {self.config.latent_dim}, ...) with {self.config.ndim} spatial axes, "
                f"got {tuple(latents.shape)}"
            )
        u = self._decode_unit(latents.to(self.param_dtype))
        if size is not None:
            u = self.crop(u, size)
        return self.from_unit(u, dtype)

    def _decode_unit(self, v: torch.Tensor) -> torch.Tensor:
        return self.wpt.inverse(self.synthesize(self.bottleneck.expand(v)))

    def synthesize(self, z: torch.Tensor) -> torch.Tensor:
        """Subbands from expanded latents by the decoder network, in :attr:`decoder_precision`."""
        return self.decoder(z, precision=self.decoder_precision, calibration=self.calibration_latents)

    @torch.inference_mode()
    def calibration_latents(self) -> list[torch.Tensor]:
        """Expanded latents of pink noise (:func:`wavecodec.quantized.pink_noise`, fixed seeds), at the
        default quality and both ends of a variable-rate model's range: what an int8 decoder's
        activation scales are observed on."""
        qualities = (None,) if self.rates is None else (0, DEFAULT_QUALITY, 100)
        steps = [(self.quantization_step(quality=q), self.reconstruction_step(quality=q)) for q in qualities]
        size = calibration_size(self.config.ndim, self.config.block)
        out = []
        for seed in range(SEEDS):
            u = pink_noise(self.config.channels, size, seed).to(self.param_dtype)
            latents = self.bottleneck.compand(self.encoder(self.wpt(u)))
            out += [self.bottleneck.expand(self.dequantize(self.quantize(latents, s), r)) for s, r in steps]
        return out

    def forward(self, x: torch.Tensor, rung: int | float | None = None, without_noise: bool = False,
                ms_ssim: bool = False, rounded: bool = False, ssimulacra2: bool = False,
                rate_scale: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training pass: noise instead of rounding when ``self.training``; returns ``(x_hat, losses)``.

        ``losses["mse"]`` is the mean squared error with the value range scaled to 1 (so
        PSNR is ``-10 log10(mse)``); ``losses["subband_mse"]`` the same in the wavelet domain;
        ``losses["bpp"]`` the estimated rate in bits per pixel (per sample position for audio,
        per voxel for volumes), from the learned probabilities while training and from the
        frozen integer tables in eval mode. While training, ``losses["entropy_fit"]`` is the
        same rate of the *detached* latents: it trains the probabilities to fit the latents
        without pushing the latents (that is the job of ``bpp`` weighted by lambda). With
        ``without_noise`` (a noise-fill decoder), ``losses["mse_without_noise"]`` is the MSE of the
        decode without its noise. With ``ms_ssim`` (images), ``losses["ms_ssim"]`` is the batch's mean MS-SSIM;
        with ``ssimulacra2`` (RGB images), ``losses["ssimulacra2_distance"]`` the batch's mean
        :func:`wavecodec.perceptual.distance`. ``rate_scale`` ``(C,)`` multiplies each channel's estimated bits in
        ``losses["bpp"]`` (a calibration to the file coder: :mod:`wavecodec.training.calibration`).
        """
        self._check(x)
        size = x.shape[2:]
        u = self.pad(self.to_unit(x))
        subbands = self.wpt(u)
        latents = self.bottleneck.compand(self.encoder(subbands))
        bits_noisy, bits_integer, step, gain, lmbda = self.entropy.bits_noisy, self.entropy.bits_integer, None, None, None
        if self.rates is not None and isinstance(rung, float) and not rung.is_integer():  # between two rungs
            steps, gains, lmbda, bits_noisy = self.rates.at(rung)
            bits_integer = lambda q: bits_noisy(q.to(latents.dtype))  # noqa: E731  (the same discretised Laplace)
            step, gain = per_channel(steps, latents), None if gains is None else per_channel(gains, latents)
        elif self.rates is not None:  # a variable-rate model at one rung (the middle one unless told)
            rung = self.rates.rungs // 2 if rung is None else int(rung)
            entropy = self.rates.entropy[rung]
            bits_noisy, bits_integer, lmbda = entropy.bits_noisy, entropy.bits_integer, self.rates.lambdas[rung]
            step = per_channel(self.rates.rung_steps(rung), latents)
            gains = self.rates.rung_gains(rung)
            gain = None if gains is None else per_channel(gains, latents)
        scaled = latents if step is None else latents / step
        v = self.bottleneck(scaled)  # noise or rounding, in units of the step
        seen = scaled + (torch.round(scaled) - scaled).detach() if rounded and self.training else v
        z = self.bottleneck.expand(seen if step is None else seen * (step if gain is None else step * gain))
        if without_noise:
            clean, noise = self.decoder(z, split_noise=True)
            subbands_hat = clean if noise is None else clean + noise
        else:
            subbands_hat = self.decoder(z)
        u_hat = self.crop(self.wpt.inverse(subbands_hat), size)
        bits = bits_noisy(v) if self.training else bits_integer(v.to(torch.int32))
        if rate_scale is not None:
            bits = bits * per_channel(rate_scale, bits)
        positions = x.shape[0] * math.prod(size)
        losses = {
            "mse": F.mse_loss(u_hat, self.crop(u, size)),
            "subband_mse": F.mse_loss(subbands_hat, subbands),
            "bpp": bits.sum().to(u_hat.dtype) / positions,
        }
        if ms_ssim:  # on the unclamped decode, which gradients reach (x_hat of integer inputs is rounded)
            losses["ms_ssim"] = metrics.ms_ssim(u_hat + 0.5, self.crop(u, size) + 0.5, dtype=u_hat.dtype).mean()
        if ssimulacra2:
            losses["ssimulacra2_distance"] = perceptual.distance(self.crop(u, size) + 0.5, u_hat + 0.5).mean()
        if without_noise:  # the waveform error of the decode without its noise fill (TrainConfig.noise_free_mse)
            losses["mse_without_noise"] = F.mse_loss(self.crop(self.wpt.inverse(clean), size), self.crop(u, size))
        if lmbda is not None:
            losses["lmbda"] = torch.tensor(lmbda)
        if self.training:
            losses["entropy_fit"] = bits_noisy(v.detach()).sum().to(u_hat.dtype) / positions
        x_hat = self.from_unit(u_hat, x.dtype) if not x.is_floating_point() else self._unit_to_range(u_hat, x.dtype)
        return x_hat, losses

    def _unit_to_range(self, u: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Like :meth:`from_unit` for floats, but unclamped so gradients flow everywhere."""
        lo, hi = self.config.value_range
        return ((u + 0.5) * (hi - lo) + lo).to(dtype)

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Encode, round and decode ``x`` in one call; same shape, range and dtype as ``x``."""
        return self.decode(self.quantize(self.encode(x)), size=x.shape[2:], dtype=x.dtype)

    def compress(self, x: torch.Tensor | np.ndarray | Any, coder: str = "ans", *, quant_step: float = 1.0,
                 sample_rate: int | None = None, extra: dict[str, Any] | None = None,
                 progress: Callable[[int, int], None] | None = None, quality: float | None = None) -> bytes:
        """Encode ``x`` into the bytes of a ``.wvc`` file.

        ``x`` is a tensor ``(B, C, *S)`` or ``(C, *S)``, a NumPy array (an image may be
        ``(H, W, C)``, as Pillow lays it out) or a Pillow image. See
        :func:`wavecodec.compression.compress` for the other arguments and the errors;
        ``quality`` (0-100, higher is better) is for variable-rate models.
        """
        return compression.compress(self, as_signal(x, self.config.ndim), coder=coder, quant_step=quant_step, sample_rate=sample_rate,
                                    extra=extra, progress=progress, quality=quality)

    def decompress(self, data: bytes) -> torch.Tensor:
        """Decode the bytes of a ``.wvc`` file made with this model; raises :class:`FormatError` otherwise."""
        return compression.decompress(self, data).signal

    def num_parameters(self, part: str | None = None) -> int:
        """Parameters of the whole codec, or of one stage (``"encoder"``, ``"decoder"``, ...)."""
        return count_parameters(self if part is None else getattr(self, part))

    def extra_repr(self) -> str:
        c = self.config
        return f"name={c.name!r}, subbands={c.subbands}, latent_dim={c.latent_dim}, reduction={c.reduction:g}x"
