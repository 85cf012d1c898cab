"""Names and defaults of the coding options, importable without torch (the command line's choices)."""

CODERS = ("ans", "ans-all-channels", "ans-linear", "ans-two-states", "ans-wavefront", "ans-iid", "webp", "raw")
DEFAULT_QUALITY = 75.0  # the quality a variable-rate model codes at when none is given (wavecodec.rates)
