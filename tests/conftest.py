"""Shared fixtures: small codecs and inputs the tests make themselves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from wavecodec import Codec, CodecConfig

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "data"))


@pytest.fixture
def small_config() -> CodecConfig:
    return CodecConfig(channels=3, levels=2, latent_dim=6, decoder_width=8, decoder_depth=1, name="test-rgb")


@pytest.fixture
def small_codec(small_config: CodecConfig) -> Codec:
    torch.manual_seed(0)
    codec = Codec(small_config).eval()
    with torch.no_grad():  # give the residual path non-zero weights so it is exercised
        for p in codec.decoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return codec


@pytest.fixture(scope="session")
def fitted():
    from helpers import fitted_codec

    return fitted_codec()
