#!/bin/sh
# Peak memory of encoding/decoding 1- and 10-minute stereo WAV files (run from the repository root):
# constant memory means the long file is streamed. Needs /usr/bin/time.
cd "$(dirname "$0")/.."
mkdir -p runs/memcheck
.venv/bin/python - <<'PY'
import numpy as np, soundfile as sf
rng = np.random.default_rng(0)
for minutes in (1, 10):
    path = f"runs/memcheck/noise_{minutes}min.wav"
    with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
        for _ in range(minutes * 6):  # 10 s blocks
            t = np.arange(441000) / 44100
            block = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + rng.normal(0, 0.05, (441000, 2))
            f.write(block.astype(np.float32))
PY
for m in 1 10; do
  /usr/bin/time -v .venv/bin/wavecodec encode runs/memcheck/noise_${m}min.wav --model stereo-20x --force -q 2>&1 | grep -E "Maximum resident|Elapsed" | sed "s/^/encode ${m} min: /"
  /usr/bin/time -v .venv/bin/wavecodec decode runs/memcheck/noise_${m}min.wvc -o runs/memcheck/out_${m}min.wav --force -q 2>&1 | grep -E "Maximum resident|Elapsed" | sed "s/^/decode ${m} min: /"
done
ls -la runs/memcheck
