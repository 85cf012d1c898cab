"""Spectral training losses for audio: what listeners hear, beside the MSE that SNR counts.

MSE spends a model's capacity where the energy is (the low bands) and leaves the quiet high
bands and transients that listeners notice; spectral losses on log magnitudes weigh every
band by its loudness relative to itself. The two here are the ones neural audio codecs and
vocoders train with:

* :class:`MultiResolutionSTFTLoss`: spectral convergence (relative Frobenius error of the
  magnitudes) plus L1 of log magnitudes, averaged over FFT sizes 512, 1024 and 2048 with
  75% overlap (Yamamoto et al., Parallel WaveGAN, 2020).
* :class:`MelLoss`: L1 of log10 mel spectrograms (80 bands, 2048-point FFT), the same
  mel filterbank as :func:`wavecodec.audio_metrics.mel_distance`.

Both take float audio ``(B, C, T)`` in [-1, 1] and return a scalar; they are used as
``loss = mse + stft_weight * stft + mel_weight * mel`` (``TrainConfig.stft_weight`` and
``mel_weight``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio_metrics import mel_filterbank

_EPS = 1e-7


def _magnitudes(x: torch.Tensor, n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """``(B * C, bins, frames)`` STFT magnitudes, hop ``n_fft / 4``, float32 (stable under bf16 autocast)."""
    flat = x.reshape(-1, x.shape[-1]).float()
    spec = torch.stft(flat, n_fft, hop_length=n_fft // 4, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    return spec.abs().clamp_min(_EPS)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over several FFT sizes."""

    def __init__(self, sizes: tuple[int, ...] = (512, 1024, 2048)) -> None:
        super().__init__()
        self.sizes = sizes
        for n in sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        total = x_hat.new_zeros((), dtype=torch.float32)
        for n in self.sizes:
            window = getattr(self, f"window_{n}")
            a, b = _magnitudes(x, n, window), _magnitudes(x_hat, n, window)
            convergence = torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp_min(_EPS)
            total = total + convergence + (a.log() - b.log()).abs().mean()
        return total / len(self.sizes)


class MelLoss(nn.Module):
    """L1 distance of log10 mel spectrograms at ``rate``."""

    def __init__(self, rate: int, n_fft: int = 2048, bands: int = 80) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(rate, n_fft, bands)).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        def log_mel(v: torch.Tensor) -> torch.Tensor:
            return torch.log10(self.filters @ _magnitudes(v, self.n_fft, self.window) ** 2 + 1e-5)

        return (log_mel(x) - log_mel(x_hat)).abs().mean()
