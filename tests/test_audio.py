"""The 1-D path end to end: generated signals, chunked coding, audio files in every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavecodec import Codec, CodecConfig, ConfigError, FormatError, InputError
from wavecodec.audio_coding import decode_file, encode_file
from wavecodec.cli import main
from wavecodec.compression import compress, compress_reader, decompress, read_header
from wavecodec.container import pack, unpack
from wavecodec.fitting import fit_entropy, pca_init
from wavecodec.streaming import transform_reach

RATE = 8000


def signals(seconds: float = 1.0, channels: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Float ``(C, T)`` test signals in [-1, 1]: sines, a chirp, noise, and a mix."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    sine = np.stack([0.5 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])
    chirp = np.stack([0.5 * np.sin(2 * np.pi * (50 + 1500 * t) * t + c) for c in range(channels)])
    noise = rng.normal(0, 0.1, (channels, t.size))
    return {"sine": sine, "chirp": chirp, "noise": noise, "mix": 0.5 * sine + 0.3 * chirp + 0.2 * noise}


def snr(ref: np.ndarray, out: np.ndarray) -> float:
    return 10 * np.log10((ref**2).sum() / max(((ref - out) ** 2).sum(), 1e-20))


@pytest.fixture(scope="module")
def stereo() -> Codec:
    torch.manual_seed(0)
    cfg = CodecConfig(channels=2, levels=4, latent_dim=12, decoder_width=8, decoder_depth=1, modality="audio",
                      sample_rate=RATE, value_range=(-1.0, 1.0), name="test-stereo")
    codec = Codec(cfg)
    data = [torch.from_numpy(s[:, i * 1024 : (i + 1) * 1024]).float()[None] for s in signals(seed=1).values() for i in range(4)]
    batches = [torch.cat(data[i : i + 4]) for i in range(0, len(data), 4)]
    pca_init(codec, batches)
    fit_entropy(codec, batches)
    return codec.eval()


@pytest.mark.parametrize("name", ["sine", "chirp", "noise", "mix"])
def test_generated_signals_round_trip(stereo: Codec, name: str) -> None:
    x = torch.from_numpy(signals()[name]).float()[None]
    data = compress(stereo, x, sample_rate=RATE)
    out = decompress(stereo, data)
    assert out.signal.shape == x.shape and out.signal.dtype == torch.float32 and out.sample_rate == RATE
    with torch.no_grad():
        expected = stereo.decode(stereo.quantize(stereo.encode(x)), size=[x.shape[-1]])
    assert torch.allclose(out.signal, expected, atol=1e-6)
    if name == "sine":  # narrow-band: a PCA codec keeping 12 of 32 subbands holds it well
        assert snr(x[0].numpy(), out.signal[0].numpy()) > 15


def test_chunked_and_whole_signal_coding_agree(stereo: Codec) -> None:
    x = torch.from_numpy(signals(seconds=1.3)["mix"]).float()[None]  # 10,400 samples = 650 frames
    whole = compress(stereo, x, chunk_frames=10**6)
    chunked = compress(stereo, x, chunk_frames=37)
    assert read_header(whole)["chunk_frames"] is None
    header = read_header(chunked)
    assert header["chunk_frames"] == 37 and len(header["chunk_bytes"]) == -(-650 // 37)
    a, b = decompress(stereo, whole).signal, decompress(stereo, chunked).signal
    assert a.shape == b.shape == x.shape
    # identical latents give identical samples up to float rounding
    assert (a - b).abs().max() < 1e-4


def test_chunked_encoding_reads_bounded_windows(stereo: Codec) -> None:
    x = torch.from_numpy(signals(seconds=1)["mix"]).float()
    widths = []

    def read(a: int, b: int) -> torch.Tensor:
        widths.append(b - a)
        return x[:, a:b]

    data = compress_reader(stereo, read, x.shape[1], torch.float32, 2, chunk_frames=16)
    block = stereo.config.block
    from wavecodec.streaming import encode_chunks

    chunked = torch.cat(list(encode_chunks(stereo, lambda a, b: x[:, a:b], x.shape[1], chunk_frames=16)), dim=-1)
    with torch.no_grad():
        whole = stereo.quantize(stereo.encode(x[None]))
    assert torch.equal(chunked, whole)  # the same integers, chunk boundaries or not
    assert max(widths) <= (16 + 2 * transform_reach(stereo)) * block
    assert (decompress(stereo, data).signal[0] - decompress(stereo, compress(stereo, x[None], chunk_frames=10**6)).signal[0]).abs().max() < 1e-4


def test_corrupt_chunk_table_is_refused(stereo: Codec) -> None:
    x = torch.from_numpy(signals()["mix"]).float()[None]
    header, sections = unpack(compress(stereo, x, chunk_frames=50))
    header["chunk_bytes"][0] += 1
    with pytest.raises(FormatError):
        decompress(stereo, pack(header, sections))
    header["chunk_bytes"] = header["chunk_bytes"][:-1]
    with pytest.raises(FormatError):
        decompress(stereo, pack(header, sections))


FORMATS = [("a.wav", "WAV", "PCM_16"), ("b.wav", "WAV", "PCM_24"), ("c.wav", "WAV", "FLOAT"), ("d.flac", "FLAC", "PCM_16"),
           ("e.ogg", "OGG", "VORBIS"), ("f.opus", "OGG", "OPUS"), ("g.mp3", "MP3", "MPEG_LAYER_III")]


@pytest.mark.parametrize("name,fmt,subtype", FORMATS)
@pytest.mark.parametrize("out_suffix", [".wav", ".flac"])
def test_every_format_in_and_out(stereo: Codec, tmp_path: Path, name: str, fmt: str, subtype: str, out_suffix: str) -> None:
    x = signals()["sine"]
    src = tmp_path / name
    sf.write(src, x.T, RATE, format=fmt, subtype=subtype)
    info = sf.info(src)
    data = encode_file(stereo, src, chunk_frames=64)
    header = read_header(data)
    assert header["sample_rate"] == RATE and header["source_format"] == subtype
    out = tmp_path / f"out{out_suffix}"
    decode_file(stereo, data, out)
    got = sf.info(out)
    assert got.samplerate == RATE and got.channels == 2 and got.frames == info.frames
    if subtype in ("PCM_16", "PCM_24"):
        assert got.subtype == subtype  # integer PCM in, the same PCM out
    ref, _ = sf.read(src, dtype="float32")
    dec, _ = sf.read(out, dtype="float32")
    assert snr(ref.T, dec.T) > 10


def test_pcm16_file_round_trip_keeps_dtype(stereo: Codec, tmp_path: Path) -> None:
    src = tmp_path / "x.wav"
    sf.write(src, signals()["sine"].T, RATE, subtype="PCM_16")
    data = encode_file(stereo, src)
    assert read_header(data)["dtype"] == "int16"
    assert decompress(stereo, data).signal.dtype == torch.int16


def test_mono_file_through_a_stereo_model(stereo: Codec, tmp_path: Path) -> None:
    mono = signals(channels=1)["sine"]
    src = tmp_path / "mono.flac"
    sf.write(src, mono.T, RATE, subtype="PCM_16")
    out = tmp_path / "mono_out.wav"
    decode_file(stereo, encode_file(stereo, src, chunk_frames=32), out)
    dec, rate = sf.read(out, dtype="float32", always_2d=True)
    assert rate == RATE and dec.shape == (mono.shape[1], 1)
    assert snr(mono[0], dec[:, 0]) > 10


def test_file_shorter_than_one_latent_frame(stereo: Codec, tmp_path: Path) -> None:
    src = tmp_path / "tiny.wav"
    sf.write(src, np.full((5, 2), 0.25), RATE, subtype="PCM_16")  # block is 16 samples
    out = tmp_path / "tiny_out.wav"
    decode_file(stereo, encode_file(stereo, src), out)
    dec, _ = sf.read(out, dtype="float32")
    assert dec.shape == (5, 2) and np.abs(dec - 0.25).max() < 0.05


def test_other_sample_rates_are_resampled_and_restored(stereo: Codec, tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    x = np.stack([0.5 * np.sin(2 * np.pi * 300 * t)] * 2)
    src = tmp_path / "hi.wav"
    sf.write(src, x.T, 16000, subtype="PCM_16")
    data = encode_file(stereo, src)
    assert read_header(data)["sample_rate"] == RATE and read_header(data)["source_rate"] == 16000
    out = tmp_path / "hi_out.wav"
    decode_file(stereo, data, out)
    dec, rate = sf.read(out, dtype="float32")
    assert rate == 16000 and dec.shape == (16000, 2)
    assert snr(x[:, 200:-200], dec.T[:, 200:-200]) > 10


def test_corrupted_audio_file_gives_a_clear_error(stereo: Codec, tmp_path: Path, capsys) -> None:
    src = tmp_path / "broken.wav"
    sf.write(src, signals()["sine"].T, RATE, subtype="PCM_16")
    src.write_bytes(src.read_bytes()[:30])  # a header cut short
    with pytest.raises(InputError):
        encode_file(stereo, src)
    model = tmp_path / "m.safetensors"
    import wavecodec

    wavecodec.save(stereo, model)
    assert main(["encode", str(src), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wavecodec: error:") and "Traceback" not in err


def test_cli_encodes_and_decodes_audio(stereo: Codec, tmp_path: Path) -> None:
    import wavecodec

    model = tmp_path / "m.safetensors"
    wavecodec.save(stereo, model)
    src = tmp_path / "song.flac"
    sf.write(src, signals()["mix"].T, RATE, subtype="PCM_16")
    assert main(["encode", str(src), "--model", str(model), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "song.wvc"), "--model", str(model), "--quiet"]) == 0
    info = sf.info(tmp_path / "song.wav")
    assert info.samplerate == RATE and info.subtype == "PCM_16" and info.frames == RATE


def test_eval_reports_audio_metrics(stereo: Codec, tmp_path: Path) -> None:
    import json

    import wavecodec

    model = tmp_path / "m.safetensors"
    wavecodec.save(stereo, model)
    folder = tmp_path / "music"
    folder.mkdir()
    for i, name in enumerate(["sine", "mix"]):
        sf.write(folder / f"{i}.flac", signals()[name].T, RATE, subtype="PCM_16")
    out = tmp_path / "eval.json"
    assert main(["eval", str(folder), "--model", str(model), "-o", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert len(report["files"]) == 2
    row = report["files"][0]
    data_bytes = row["bytes"]
    assert row["kbps"] == pytest.approx(8 * data_bytes / 1.0 / 1000)
    assert row["compression_ratio"] == pytest.approx(2 * 2 * RATE / data_bytes)
    assert row["snr"] > 10 and row["psnr"] > row["snr"] and row["stft_distance"] >= 0 and row["mel_distance"] >= 0
    for key in ("si_sdr", "encode_msamples_s", "decode_msamples_s", "encode_realtime"):
        assert key in row and np.isfinite(row[key])
    assert 1.0 <= row["visqol"] <= 5.0 and report["results"]["visqol"][0] == pytest.approx(np.mean([r["visqol"] for r in report["files"]]))


def test_audio_metrics_behave() -> None:
    from wavecodec.audio_metrics import all_metrics, si_sdr

    x = np.random.default_rng(0).normal(0, 0.1, (2, RATE))
    same = all_metrics(x, x, RATE)
    assert same["snr"] == float("inf") and same["stft_distance"] == 0 and same["mel_distance"] == 0
    noisy = all_metrics(x, x + np.random.default_rng(1).normal(0, 0.01, x.shape), RATE)
    assert 19 < noisy["snr"] < 21 and noisy["stft_distance"] > 0 and noisy["mel_distance"] > 0
    assert si_sdr(x, 0.5 * x) > 100  # invariant to scale


def test_learn_cli_trains_a_sequence_classifier_on_audio_latents(stereo: Codec, tmp_path: Path) -> None:
    import json

    import wavecodec
    from wavecodec.learn.classify import load_classifier

    model = tmp_path / "m.safetensors"
    wavecodec.save(stereo, model)
    rng = np.random.default_rng(3)
    t = np.arange(RATE // 2) / RATE
    for i in range(40):  # two classes: a low and a high tone, each with its own random pitch wobble and noise
        label = i % 2
        f = (200 if label == 0 else 1500) * rng.uniform(0.9, 1.1)
        clip = np.stack([0.4 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))] * 2) + rng.normal(0, 0.05, (2, t.size))
        folder = tmp_path / "src" / ("low" if label == 0 else "high")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{i:02d}.wav", clip.T, RATE, subtype="PCM_16")
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "lat"), "--model", str(model),
                 "--labels-from-folders", "--workers", "1", "--quiet"]) == 0
    out = tmp_path / "clf"
    assert main(["learn", str(tmp_path / "lat"), "-o", str(out), "--epochs", "8", "--batch-size", "8", "--width", "16",
                 "--depth", "1", "--test-fraction", "0.25", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["head"]["dims"] == 1 and metrics["test_samples"] == 10
    assert metrics["final_accuracy"] >= 0.8  # chance is 0.5
    clf, names = load_classifier(out / "classifier.safetensors")
    assert sorted(names) == ["high", "low"] and clf(torch.zeros(1, 12, RATE // 2 // 16)).shape == (1, 2)


def test_subband_frequencies_name_the_subband_a_sine_lands_in() -> None:
    from wavecodec.fitting import subband_frequencies

    codec = Codec(CodecConfig(channels=1, levels=5, latent_dim=4, decoder_width=8, decoder_depth=1, modality="audio",
                              sample_rate=RATE, value_range=(-1.0, 1.0)))
    freqs = subband_frequencies(codec)
    width = RATE / 2 / 32
    assert freqs.shape == (32,) and sorted(freqs.tolist()) != freqs.tolist()  # packet order is not frequency order
    t = torch.arange(4096) / RATE
    for hz in (300.0, 1100.0, 2900.0, 3700.0):
        subbands = codec.wpt(torch.sin(2 * torch.pi * hz * t)[None, None])
        loudest = int(subbands.pow(2).sum(-1)[0].argmax())
        assert abs(float(freqs[loudest]) - hz) < width


def test_band_split_pca_start_keeps_the_high_bands() -> None:
    """The split start gives channels to log-spaced high bands: a decode keeps quiet treble that plain PCA drops."""
    from wavecodec.fitting import subband_frequencies

    cfg = CodecConfig(channels=1, levels=5, latent_dim=8, decoder_width=8, decoder_depth=1, modality="audio",
                      sample_rate=RATE, value_range=(-1.0, 1.0))
    rng = np.random.default_rng(3)
    t = np.arange(8 * 1024) / RATE
    treble = (2300.0, 3300.0)
    # loud bass in every subband below 1 kHz, quiet treble: PCA spends all 8 channels on the bass
    bass = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(30, 950, 24))
    x = torch.from_numpy(bass + sum(0.02 * np.sin(2 * np.pi * f * t) for f in treble)).float()[None, None]
    plain, split = Codec(cfg), Codec(cfg)
    most = pca_init(plain, [x])["explained_variance"]
    explained = pca_init(split, [x], split_hz=2000.0, low_channels=6)["explained_variance"]
    assert 0.5 < explained < most  # the split trades variance (SNR) for the bands

    high = subband_frequencies(split) >= 2000.0
    weights = split.encoder.proj.weight.detach()[:, :, 0]
    assert weights[:6, high].abs().max() == 0 and weights[6:, ~high].abs().max() == 0
    assert all(weights[i, high].abs().max() > 0 for i in (6, 7))

    def treble_kept(codec: Codec) -> float:
        """The decode's amplitude at the treble frequencies, relative to the input's (the worse of the two)."""
        with torch.no_grad():
            y = codec.decode(codec.encode(x), size=[x.shape[-1]])
        bins = [round(f * t.size / RATE) for f in treble]
        return min(float(np.abs(np.fft.rfft(y[0, 0].numpy()))[b] / np.abs(np.fft.rfft(x[0, 0].numpy()))[b]) for b in bins)

    assert treble_kept(split) > 0.7 and treble_kept(plain) < 0.2
    with pytest.raises(ConfigError, match="pca_low_channels"):
        pca_init(Codec(cfg), [x], split_hz=2000.0, low_channels=8)
