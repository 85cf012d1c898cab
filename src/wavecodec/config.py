"""The codec configuration: everything needed to rebuild a model, saved with its weights."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pywt

from .errors import ConfigError

CONFIG_VERSION = 1
MODALITIES = ("image", "audio", "volume", "signal")
RATE_MODELS = ("table", "laplace")  # a ladder rung's training rate estimate (wavecodec.rates)
DECODER_BLOCKS = ("residual", "dilated", "convnext", "downup")  # kinds of the decoder's residual blocks
_DEFAULT_NDIM = {"image": 2, "audio": 1, "volume": 3}


# Bounds on every size a config sets, checked before a model is built, so that a crafted
# checkpoint cannot make the loader allocate without limit (the largest shipped model is far inside).
MAX_CHANNELS = 4096
MAX_WIDTH = 2048
MAX_DEPTH = 64
MAX_KERNEL = 15
MAX_SUBBANDS = 1 << 16
MAX_SAMPLE_RATE = 768_000

@dataclass(frozen=True)
class CodecConfig:
    """Hyper-parameters of a :class:`~wavecodec.model.Codec`.

    ``channels`` input channels are split by a ``levels``-level wavelet packet transform into
    ``channels * 2^(ndim*levels)`` subbands, mapped per position to ``latent_dim`` channels
    and quantized to ``latent_bits``-bit integers. ``value_range`` is the range of the input
    samples as floats (``(0, 1)`` for images, ``(-1, 1)`` for audio); integer inputs are
    scaled into it.
    """

    channels: int = 3
    levels: int = 3
    latent_dim: int = 12
    latent_bits: int = 8
    modality: str = "image"
    ndim: int = 0  # 0: take it from the modality (image 2, audio 1, volume 3)
    wavelet: str = "bior4.4"
    decoder_width: int = 64
    decoder_depth: int = 2
    decoder_kernel: int = 3
    value_range: tuple[float, float] = (0.0, 1.0)
    sample_rate: int | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # "dtype": integers scaled by their type's range, floats by value_range (photos, PCM audio);
    # "per_channel": each file's per-channel min..max recorded in its header and mapped to
    # value_range (16-bit sensor data, MRI, any float data whose range is not known in advance).
    normalize: str = "dtype"
    # a variable-rate model (wavecodec.rates): the rate weights of the rungs it is trained at, finest
    # first; empty for a fixed-rate model
    rate_lambdas: tuple[float, ...] = ()
    # the decoder adds noise of a learned level to every subband (wavecodec.decoder.NoiseFill): what a
    # low-rate audio latent cannot carry (the high bands) comes back as noise of the right loudness
    noise_fill: bool = False
    # the decoder's residual blocks (DECODER_BLOCKS, built by wavecodec.layers.decoder_blocks): "residual" (two k x k convolutions),
    # "dilated" (the second one dilated 2x: a wider view for the same work) or "convnext" (a
    # depthwise 7 x 7 convolution and a 1 x 1 bottleneck, ConvNeXt-style) or "downup" (the middle half of the blocks at
    # half resolution, wider for the same work: wavecodec.layers.DownUp)
    decoder_block: str = "residual"
    # a variable-rate model also learns, per rung and channel, a gain on the dequantized latents (the
    # decoder-side "inverse gain" of Cui et al.): the shared decoder then need not shrink a channel that
    # only the coarse rungs make noisy (wavecodec.rates)
    rate_gains: bool = False
    # how a variable-rate model's rungs estimate the rate while training: "table" (a learned probability table
    # per channel, flat within each unit cell) or "laplace" (a discretised Laplace per channel, which can be a
    # spike, so a channel left at zero costs nothing: wavecodec.entropy.LaplaceRate)
    rate_model: str = "table"

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError(f"modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        if self.ndim == 0:
            if self.modality == "signal":
                raise ConfigError("a 'signal' codec needs ndim set to 1, 2 or 3")
            object.__setattr__(self, "ndim", _DEFAULT_NDIM[self.modality])
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        if not isinstance(self.rate_lambdas, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e3 for v in self.rate_lambdas):
            raise ConfigError(f"rate_lambdas must be a list of positive numbers, got {self.rate_lambdas!r}")
        object.__setattr__(self, "rate_lambdas", tuple(float(v) for v in self.rate_lambdas))
        if list(self.rate_lambdas) != sorted(set(self.rate_lambdas)) or len(self.rate_lambdas) > 64:
            raise ConfigError("rate_lambdas must be at most 64 distinct values in increasing order (finest rate first)")
        checks = [
            (self.ndim in (1, 2, 3), f"ndim must be 1, 2 or 3, got {self.ndim}"),
            (self.normalize in ("dtype", "per_channel"), f"normalize must be 'dtype' or 'per_channel', got {self.normalize!r}"),
            (_positive_int(self.channels) and self.channels <= MAX_CHANNELS, f"channels must be an integer in 1..{MAX_CHANNELS}, got {self.channels!r}"),
            (_positive_int(self.levels) and self.levels <= 10, f"levels must be an integer in 1..10, got {self.levels!r}"),
            (_positive_int(self.latent_dim) and self.latent_dim <= MAX_CHANNELS, f"latent_dim must be an integer in 1..{MAX_CHANNELS}, got {self.latent_dim!r}"),
            (_positive_int(self.latent_bits) and self.latent_bits <= 16, f"latent_bits must be in 1..16, got {self.latent_bits!r}"),
            (_non_negative_int(self.decoder_width) and self.decoder_width <= MAX_WIDTH, f"decoder_width must be an integer in 0..{MAX_WIDTH}, got {self.decoder_width!r}"),
            (_non_negative_int(self.decoder_depth) and self.decoder_depth <= MAX_DEPTH, f"decoder_depth must be an integer in 0..{MAX_DEPTH}, got {self.decoder_depth!r}"),
            (_positive_int(self.decoder_kernel) and self.decoder_kernel % 2 == 1 and self.decoder_kernel <= MAX_KERNEL,
             f"decoder_kernel must be an odd integer in 1..{MAX_KERNEL}, got {self.decoder_kernel!r}"),
            (len(self.value_range) == 2 and self.value_range[0] < self.value_range[1], f"value_range must be (low, high) with low < high, got {self.value_range}"),
            (self.sample_rate is None or (_positive_int(self.sample_rate) and self.sample_rate <= MAX_SAMPLE_RATE),
             f"sample_rate must be an integer in 1..{MAX_SAMPLE_RATE} or None, got {self.sample_rate!r}"),
            (math.isfinite(self.value_range[0]) and math.isfinite(self.value_range[1]), f"value_range must be finite, got {self.value_range}"),
            (self.decoder_width > 0 or self.decoder_depth == 0, "decoder_depth > 0 needs decoder_width > 0"),
            (isinstance(self.noise_fill, bool), f"noise_fill must be true or false, got {self.noise_fill!r}"),
            (self.rate_model in RATE_MODELS and (self.rate_model == "table" or bool(self.rate_lambdas)),
             f"rate_model must be one of {', '.join(RATE_MODELS)}, and 'laplace' only with rate_lambdas; got {self.rate_model!r}"),
            (isinstance(self.rate_gains, bool) and (not self.rate_gains or bool(self.rate_lambdas)),
             "rate_gains must be true or false, and true only with rate_lambdas"),
            (self.decoder_block in DECODER_BLOCKS, f"decoder_block must be one of {', '.join(DECODER_BLOCKS)}, got {self.decoder_block!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.channels * 2 ** (self.ndim * self.levels) > MAX_SUBBANDS:
            raise ConfigError(f"{self.channels} channels with {self.levels} levels in {self.ndim}-D make more than {MAX_SUBBANDS} subbands")
        if self.latent_dim > self.subbands:
            raise ConfigError(f"latent_dim {self.latent_dim} exceeds the {self.subbands} wavelet subbands")
        try:
            pywt.Wavelet(self.wavelet)
        except ValueError:
            raise ConfigError(f"unknown wavelet {self.wavelet!r}; use a discrete PyWavelets name such as 'bior4.4'") from None

    @property
    def subbands(self) -> int:
        """Number of wavelet subbands (encoder input channels)."""
        return self.channels * 2 ** (self.ndim * self.levels)

    @property
    def block(self) -> int:
        """Spatial size of one latent position in input samples along each axis (``2^levels``)."""
        return 2**self.levels

    @property
    def reduction(self) -> float:
        """How many times fewer values the latent has than the input."""
        return self.subbands / self.latent_dim

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (defaults that older models lack are left out)."""
        d = dataclasses.asdict(self)
        d["value_range"] = list(self.value_range)
        if self.normalize == "dtype":  # the default is left out so that older models keep their fingerprints
            del d["normalize"]
        if self.rate_lambdas:
            d["rate_lambdas"] = list(self.rate_lambdas)
        else:
            del d["rate_lambdas"]
        if not self.noise_fill:
            del d["noise_fill"]
        if self.decoder_block == "residual":
            del d["decoder_block"]
        if not self.rate_gains:
            del d["rate_gains"]
        if self.rate_model == "table":
            del d["rate_model"]
        d["config_version"] = CONFIG_VERSION
        return d

    def to_json(self) -> str:
        """The config as canonical JSON (sorted keys): what fingerprints hash."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CodecConfig":
        """A config from a dict; :class:`ConfigError` for unknown or invalid fields."""
        data = dict(data)
        version = data.pop("config_version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigError(f"config version {version} is not supported by this wavecodec (expects {CONFIG_VERSION})")
        return build_dataclass(cls, data, "config")

    @classmethod
    def from_json(cls, text: str) -> "CodecConfig":
        """A config from JSON text; :class:`ConfigError` for invalid JSON or fields."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError("the config is not valid JSON") from None
        if not isinstance(data, dict):
            raise ConfigError("the config must be a JSON object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "CodecConfig":
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)


def build_dataclass(cls: type, data: dict[str, Any], what: str) -> Any:
    """``cls(**data)``, with a :class:`ConfigError` naming unknown fields or wrong types."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {what} field(s): {', '.join(unknown)}")
    try:
        return cls(**data)
    except TypeError as exc:  # wrong types that __post_init__ could not compare
        raise ConfigError(f"invalid {what}: {exc}") from None


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
