"""The names of the entropy coders, importable without the coders themselves (the command line's choices)."""

CODERS = ("ans", "ans-wavefront", "ans-iid", "webp", "raw")
