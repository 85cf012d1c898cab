"""Compressed-domain learning: heads that read codec latents, matched pixel baselines, training loops."""

from .baselines import MatchedInput, classifier_pair, downsample, matched_pixels, matched_samples, tokens
from .fit import History, accuracy, activation_bytes, fit_classifier, fit_dense
from .heads import Classifier, ConvBlock, DenseHead, PatchEmbed, TransformerBlock, count_parameters

__all__ = [
    "Classifier", "ConvBlock", "DenseHead", "History", "MatchedInput", "PatchEmbed", "TransformerBlock",
    "accuracy", "activation_bytes", "classifier_pair", "count_parameters", "downsample", "fit_classifier",
    "fit_dense", "matched_pixels", "matched_samples", "tokens",
]
