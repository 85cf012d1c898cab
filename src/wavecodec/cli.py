"""The ``wavecodec`` command line.

Every subcommand is a function taking parsed arguments; :func:`main` turns user errors
(:class:`WavecodecError`) into one line on stderr and exit status 2, so a user never sees
a traceback for a mistake of theirs. Directory inputs are processed file by file with a
progress bar; a file that fails is reported and the rest go on (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from typing import TYPE_CHECKING

from . import __version__
from .atomic import atomic_write, write_bytes
from .coder_names import CODERS, DEFAULT_QUALITY
from .errors import CheckpointError, ConfigError, InputError, WavecodecError
from .paths import BUNDLED_PHOTO
from .progress import bar, staged_bars

if TYPE_CHECKING:
    from .model import Codec

# The library (and torch, which takes seconds to import) is imported inside the commands, so
# that `wavecodec --help` and argument errors answer at once.


def rate_of(nbytes: int, header: dict) -> dict[str, float]:
    """The rate in the unit people use for the file's kind: bpp (images), kbps (audio), bits per voxel (volumes)."""
    from .compression import bits_per_sample
    bits = bits_per_sample(nbytes, header)
    if header["modality"] == "audio" and header.get("sample_rate"):
        seconds = header["shape"][0] / header["sample_rate"]
        return {"kbps": 8 * nbytes / seconds / 1000, "bits_per_sample": bits / header["input_channels"]}
    if header["modality"] == "volume":
        return {"bits_per_voxel": bits}
    if header["modality"] == "image":
        return {"bpp": bits}
    return {"bits_per_sample_position": bits}


def _rate_text(stats: dict) -> str:
    for key, text in (("bpp", "{:.4f} bpp"), ("kbps", "{:.1f} kbps"), ("bits_per_voxel", "{:.4f} bits per voxel")):
        if key in stats:
            return text.format(stats[key])
    return f"{stats['bits_per_sample_position']:.4f} bits per sample position"


def _check_output(path: Path, force: bool) -> None:
    if path.is_dir():
        raise InputError(f"{path} is a directory; name an output file")
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")


def _default(choose: Callable[[], str]) -> str:
    """A model the registry picks, with the flag that overrides it named when it cannot."""
    try:
        return choose()
    except CheckpointError as exc:
        raise InputError(f"{str(exc).split(';')[0]}; pass --model") from None  # the CLI's words for the library's advice


class _Models:
    """Loads each model once per command: ``--model`` if given, else the registry's choice."""

    def __init__(self, override: str | None, device: str = "cpu") -> None:
        self.override, self.device = override, device
        self.cache: dict[str, Codec] = {}

    def get(self, name: str) -> Codec:
        from .registry import load

        if name not in self.cache:
            self.cache[name] = load(name, _device(self.device))
        return self.cache[name]

    def for_input(self, kind: str, channels: int) -> Codec:
        from .registry import model_for
        return self.get(self.override or _default(lambda: model_for(kind, channels)))

    def for_header(self, header: dict) -> Codec:
        from .registry import model_for_header
        return self.get(self.override or _default(lambda: model_for_header(header)))


def _tile_bar(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """A bar over the tiles of one large image; none when quiet or inside a folder job (which has its own)."""
    return None if args.quiet or getattr(args, "in_tree", False) else bar("tile")


def _device(name: str):
    """A torch device from ``--device``, refused in one line when this machine has none such."""
    import torch

    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError):
        raise InputError(f"--device {name}: no such device here") from None
    return device


def _encode_one(src: Path, dst: Path, args: argparse.Namespace, store: _Models) -> dict:
    from .compression import read_header
    from .files import kind_of, read_input
    if kind_of(src) == "audio":  # streamed from the file: memory does not grow with its length
        from .audio_coding import encode_file

        if args.bpp is not None:
            raise InputError("--bpp is for images and arrays; use --quality or --step for audio")
        data = encode_file(store.for_input("audio", 2), src, coder=args.coder, quant_step=args.quant_step, quality=args.quality)
    else:
        x, facts = read_input(src)
        codec = store.for_input(facts["kind"], x.shape[1])
        extra = {"affine": facts["affine"]} if "affine" in facts else None  # NIfTI volumes stay in place
        data = _compress(codec, x, args, extra=extra, progress=_tile_bar(args))
    write_bytes(dst, data)
    header = read_header(data)
    return {"bytes": len(data), **rate_of(len(data), header)}


def _compress(codec: Any, x: Any, args: argparse.Namespace, **options: Any) -> bytes:
    """One signal compressed as the flags say: at ``--quality``, or searched to ``--bpp``, with ``--coder`` and ``--step``."""
    from .compression import compress_to_bpp

    if args.bpp is not None:
        return compress_to_bpp(codec, x, args.bpp, coder=args.coder, quant_step=args.quant_step, **options)[0]
    return codec.compress(x, coder=args.coder, quant_step=args.quant_step, quality=args.quality, **options)


def encoded_name(path: Path) -> str:
    """The one naming rule, encoding: the name without its type suffix, plus ``.wvc`` (``brain.nii.gz`` -> ``brain.wvc``)."""
    from .files import suffix_of

    suffix = suffix_of(path)
    return (path.name[: -len(suffix)] if suffix else path.name) + ".wvc"


def decoded_name(path: Path, header: dict, fmt: str | None = None) -> str:
    """The rule, decoding: the name without ``.wvc`` (and an older name's type suffix), plus ``fmt`` or a lossless default.

    The default is PNG for 8-bit (and 16-bit gray) images, TIFF for other images, NIfTI for
    volumes, WAV for audio and NumPy otherwise: never a second lossy step unasked.
    """
    from .files import SUFFIXES, default_suffix, suffix_of

    stem = path.name[:-4] if path.name.lower().endswith(".wvc") else path.name
    inner = suffix_of(Path(stem))
    if inner in SUFFIXES:  # photo.jpg.wvc, as older versions named files
        stem = stem[: -len(inner)]
    return stem + ("." + fmt.lstrip(".") if fmt else default_suffix(header))


def _precision_flags(p: argparse.ArgumentParser) -> None:
    """``--fast`` / ``--int8``: the decoder network's precision (:attr:`wavecodec.model.Codec.decoder_precision`)."""
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--fast", action="store_true",
                       help="run the decoder's residual in bfloat16 where the CPU has it (about 1.8x faster; "
                            "pixels may differ from the exact decode by a level)")
    speed.add_argument("--int8", action="store_true",
                       help="run the decoder's residual in int8 (about 2.8x faster; within 0.03 dB for rgb-16x and "
                            "0.1 dB for rgb-4x, up to 1.2 dB for rgb-storage at high quality)")


def _precision(args: argparse.Namespace) -> str:
    """The decoder precision ``decode``'s flags ask for."""
    return "int8" if getattr(args, "int8", False) else "bfloat16" if getattr(args, "fast", False) else "float32"


def _decode_one(src: Path, dst: Path | None, args: argparse.Namespace, store: _Models) -> Path:
    from .compression import decompress, read_header
    from .files import write_output

    data = _read_bytes(src)
    header = read_header(data)
    codec = store.for_header(header)
    codec.decoder_precision = _precision(args)
    out = dst if dst is not None else _in_dir(args, src.with_name(decoded_name(src, header, args.format)))
    _check_output(out, args.force)
    if header["modality"] == "audio" and out.suffix.lower() in (".wav", ".flac"):
        from .audio_coding import decode_file

        decode_file(codec, data, out)  # chunk by chunk
        return out
    decoded = decompress(codec, data, progress=_tile_bar(args))
    if decoded.signal.shape[0] != 1:
        raise InputError("the file holds a batch of signals; decode it with the Python API")
    write_output(out, decoded.signal, header)
    return out


def _in_dir(args: argparse.Namespace, default: Path) -> Path:
    """``default``, moved into the folder that ``-o`` named for several inputs."""
    folder = getattr(args, "output_dir", None)
    return Path(folder) / default.name if folder else default


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None


def _walk(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    from .files import suffix_of
    return sorted(p for p in root.rglob("*") if p.is_file() and suffix_of(p) in suffixes)


def _run_tree(
    sources: list[Path], target: Callable[[Path], Path], work: Callable[[Path, Path], object], quiet: bool
) -> int:
    from tqdm import tqdm

    failures = []
    for src in tqdm(sources, unit="file", disable=quiet, file=sys.stderr):
        try:
            work(src, target(src))
        except WavecodecError as exc:
            failures.append(f"{src}: {exc}")
        except OSError as exc:  # one unwritable output does not stop the others
            failures.append(f"{src}: {exc.strerror or exc}")
    for line in failures:
        print(f"wavecodec: failed: {line}", file=sys.stderr)
    if not quiet:
        print(f"{len(sources) - len(failures)} of {len(sources)} files done", file=sys.stderr)
    return 1 if failures else 0


def _each_input(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``command`` on each of several inputs (shell globs); ``-o`` then names a folder for them all."""
    folder = Path(args.output) if args.output else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise InputError(f"with several inputs, -o names a folder; {folder} is a file")
    status = 0
    for name in args.input:
        one = argparse.Namespace(**{**vars(args), "input": [name], "output": None, "output_dir": folder})
        if folder is not None and Path(name).is_dir():  # a tree goes to a folder of its own inside
            one.output, one.output_dir = str(folder / Path(name).name), None
        try:
            status = max(status, command(one))
        except WavecodecError as exc:
            print(f"wavecodec: failed: {name}: {exc}", file=sys.stderr)
            status = 1
    return status


def _encode_stdin(args: argparse.Namespace) -> int:
    """``encode -``: an image's bytes from standard input, ``.wvc`` bytes to standard output (or ``-o FILE``)."""
    import io

    from PIL import Image, UnidentifiedImageError

    from .images import read_image_object, to_tensor

    try:
        with Image.open(io.BytesIO(sys.stdin.buffer.read())) as im:
            x = to_tensor(read_image_object(im))
    except (UnidentifiedImageError, OSError):
        raise InputError("standard input is not a readable image") from None
    store = _Models(args.model, args.device)
    data = _compress(store.for_input("image", x.shape[1]), x, args)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    _check_output(Path(args.output), args.force)
    write_bytes(args.output, data)
    return 0


def _decode_pipe(args: argparse.Namespace) -> int:
    """``decode -`` or ``-o -``: ``.wvc`` bytes from standard input or a file, the decoded file to standard output or a file."""
    import tempfile

    from .compression import decompress, read_header
    from .files import default_suffix, write_output

    data = sys.stdin.buffer.read() if args.input[0] == "-" else _read_bytes(Path(args.input[0]))
    header = read_header(data)
    codec = _Models(args.model, args.device).for_header(header)
    codec.decoder_precision = _precision(args)
    signal = decompress(codec, data).signal
    suffix = "." + args.format.lstrip(".") if args.format else default_suffix(header)
    if args.output not in (None, "-"):
        _check_output(Path(args.output), args.force)
        write_output(args.output, signal, header)
        return 0
    with tempfile.TemporaryDirectory() as folder:  # the writers write files: stage it, then stream it out
        staged = Path(folder) / f"out{suffix}"
        write_output(staged, signal, header)
        sys.stdout.buffer.write(staged.read_bytes())
    sys.stdout.flush()
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    """``wavecodec encode``: compress files or a folder tree."""
    from .files import SUFFIXES, kind_of

    if len(args.input) > 1:
        return _each_input(cmd_encode, args)
    if args.input[0] == "-":
        return _encode_stdin(args)
    src = Path(args.input[0])
    store = _Models(args.model, args.device)
    if src.is_dir():
        out_root = Path(args.output) if args.output else src.with_name(src.name + "_wvc")
        sources = _walk(src, SUFFIXES)
        if not sources:
            raise InputError(f"{src} holds no supported files ({' '.join(SUFFIXES)})")
        targets: dict[Path, Path] = {}
        for p in sources:
            t = out_root / p.relative_to(src).parent / encoded_name(p)
            if t in targets:
                raise InputError(f"{targets[t]} and {p} would both be written as {t}; rename one of them")
            targets[t] = p

        def target(p: Path) -> Path:
            return out_root / p.relative_to(src).parent / encoded_name(p)

        def work(p: Path, dst: Path) -> None:
            _check_output(dst, args.force)
            _encode_one(p, dst, args, store)

        args.in_tree = True  # the tree's bar, not one per file
        return _run_tree(sources, target, work, args.quiet)
    if not src.exists():
        raise InputError(f"{src}: no such file")
    kind_of(src)
    dst = Path(args.output) if args.output else _in_dir(args, src.with_name(encoded_name(src)))
    _check_output(dst, args.force)
    stats = _encode_one(src, dst, args, store)
    if not args.quiet:
        print(f"{dst}: {stats['bytes']:,} bytes, {_rate_text(stats)}")
    return 0


def add_encode(sub: argparse._SubParsersAction) -> None:
    """The ``encode`` command's arguments."""
    p = sub.add_parser("encode", help="compress a file or a directory tree into .wvc files")
    p.add_argument("input", nargs="+", help="image, audio or .npy files, or directories; - reads an image from standard input")
    p.add_argument("-o", "--output", help="output file (default: INPUT without its type suffix, plus .wvc) or "
                   "directory (default INPUT_wvc)")
    p.add_argument("--model", help="shipped model name or checkpoint path (default: by input type)")
    p.add_argument("--coder", choices=CODERS, default="ans", help="entropy coder (default ans)")
    p.add_argument("--quant-step", "--step", dest="quant_step", type=float, default=1.0,
                   help="quantization step >= 1: larger means fewer bits, lower quality (default 1)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", "-q", type=float, help="0-100, higher is better, for a variable-rate model such as "
                      f"rgb-storage (default {DEFAULT_QUALITY:g})")
    rate.add_argument("--bpp", type=float, help="target bits per pixel: the quality is searched per file to come within 3%% "
                      "(variable-rate models)")
    _common_flags(p)
    _device_flag(p)
    p.set_defaults(func=cmd_encode)


def cmd_decode(args: argparse.Namespace) -> int:
    """``wavecodec decode``: decompress a file or a folder of them."""
    from .compression import read_header

    if len(args.input) > 1:
        return _each_input(cmd_decode, args)
    if args.input[0] == "-" or args.output == "-":
        return _decode_pipe(args)
    src = Path(args.input[0])
    store = _Models(args.model, args.device)
    if src.is_dir():
        out_root = Path(args.output) if args.output else src.with_name(src.name + "_decoded")
        sources = _walk(src, (".wvc",))
        if not sources:
            raise InputError(f"{src} holds no .wvc files")

        def target(p: Path) -> Path:  # the same rule as for one file
            return out_root / p.relative_to(src).parent / decoded_name(p, read_header(_read_bytes(p)), args.format)

        args.in_tree = True  # the tree's bar, not one per file
        return _run_tree(sources, target, lambda p, dst: _decode_one(p, dst, args, store), args.quiet)
    out = _decode_one(src, Path(args.output) if args.output else None, args, store)
    if not args.quiet:
        print(f"wrote {out}")
    return 0


def add_decode(sub: argparse._SubParsersAction) -> None:
    """The ``decode`` command's arguments."""
    p = sub.add_parser("decode", help="decompress a .wvc file or a directory of them")
    p.add_argument("input", nargs="+", help=".wvc files or directories; - reads standard input (and -o - writes standard output)")
    p.add_argument("-o", "--output", help="output file or directory (default: INPUT without .wvc, as PNG, TIFF, NIfTI, "
                   "WAV or NPY by content)")
    p.add_argument("--model", help="checkpoint to decode with (default: the model named in the file)")
    p.add_argument("--format", metavar="EXT",
                   help="output type for every file, e.g. png, tif, jpg, wav, flac, npy (default: lossless by content)")
    _precision_flags(p)
    _common_flags(p)
    _device_flag(p)
    p.set_defaults(func=cmd_decode)


def cmd_info(args: argparse.Namespace) -> int:
    """``wavecodec info``: the header and size figures of a file."""
    from .compression import MAX_SAMPLES, read_header
    import torch
    path = Path(args.input)
    data = _read_bytes(path)
    header = read_header(data, MAX_SAMPLES)
    samples = header["batch"] * header["input_channels"] * math.prod(header["shape"])
    itemsize = torch.empty((), dtype=getattr(torch, header["dtype"])).element_size()
    info = {
        "file": str(path),
        "bytes": len(data),
        **rate_of(len(data), header),
        "compression_ratio": samples * itemsize / len(data),
        **{k: v for k, v in header.items() if k != "sections"},
        "sections": {name: size for name, size in header["sections"]},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        print(f"{key:<{width}}  {value}")
    return 0


def add_info(sub: argparse._SubParsersAction) -> None:
    """The ``info`` command's arguments."""
    p = sub.add_parser("info", help="show the header and size figures of a .wvc file")
    p.add_argument("input", help=".wvc file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)


def cmd_models(args: argparse.Namespace) -> int:
    """``wavecodec models``: the shipped models."""
    from .registry import models
    entries = models()
    if args.json:
        print(json.dumps([{"name": m.name, "file": m.file, "modality": m.modality, "task": m.task, "use": m.use,
                           "description": m.description, "figures": m.figures,
                           "retired_versions": [h for h, _ in m.retired]} for m in entries], indent=2))
        return 0
    if not entries:
        print("no models shipped yet (train one, or pass --model with a checkpoint path)")
        return 0
    print(f"{'name':<16} {'modality':<8} {'channels':>8} {'input':<28} {'fewer values':>12}  measured (see --json)")
    for m in entries:
        f = m.figures
        measured = ", ".join(f"{k}={v}" for k, v in f.items() if k.startswith(("dev_", "test_")))
        task = f"  [made for {m.task}]" if m.task else ""
        print(f"{m.name:<16} {m.modality:<8} {f.get('channels', '?'):>8} {str(f.get('input', 'uint8/float')):<28} "
              f"{str(f.get('reduction', '?')) + 'x':>12}  {measured}{task}")
        if m.use:
            print(f"{'':<16} for {m.use}")
        if m.retired:
            print(f"{'':<16} older weights still decoded: {', '.join(h for h, _ in m.retired)}")
    return 0


def add_models(sub: argparse._SubParsersAction) -> None:
    """The ``models`` command's arguments."""
    p = sub.add_parser("models", help="list the shipped models and their figures")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_models)


def cmd_eval(args: argparse.Namespace) -> int:
    """``wavecodec eval``: rate, quality and speed on files."""
    from .files import AUDIO_SUFFIXES, suffix_of
    from .images import IMAGE_SUFFIXES
    from .registry import load, model_for
    from .evaluation import evaluate

    src = Path(args.input)
    if src.is_dir():
        found = _walk(src, IMAGE_SUFFIXES + AUDIO_SUFFIXES)
    elif src.exists():
        found = [src]
    else:
        raise InputError(f"{src}: no such file or directory")
    audio_input = bool(found) and all(suffix_of(p) in AUDIO_SUFFIXES for p in found)  # audio only when no images
    codec = load(args.model or _default(lambda: model_for("audio", 2) if audio_input else model_for("image", 3)),
                 _device(args.device))
    codec.decoder_precision = _precision(args)
    suffixes = AUDIO_SUFFIXES if codec.config.modality == "audio" else IMAGE_SUFFIXES
    paths = [p for p in found if p == src or suffix_of(p) in suffixes]
    reports = []
    for step in args.quant_step:  # one report per quantization step: a rate-distortion curve in one run
        reports.append(evaluate(codec, paths, coder=args.coder, progress=_bar(args.quiet, "file"), quant_step=step,
                                perceptual=args.perceptual))
        if not args.quiet:
            if len(args.quant_step) > 1:
                print(f"quantization step {step:g}:")
            _print_report(reports[-1], codec.config.modality == "audio")
    if args.json:
        payload = reports[0] if len(reports) == 1 else {"name": codec.config.name, "curve": reports}
        atomic_write(Path(args.json), lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2)))
    for bad in reports[0]["failed"]:
        print(f"wavecodec: failed: {bad['file']}: {bad['error']}", file=sys.stderr)
    return 1 if reports[0]["failed"] else 0


def add_eval(sub: argparse._SubParsersAction) -> None:
    """The ``eval`` command's arguments."""
    p = sub.add_parser("eval", help="measure rate, quality and speed of a model on images or audio")
    p.add_argument("input", help="image or audio file, or a directory (recursive)")
    p.add_argument("--model", help="shipped model name or checkpoint path (default: the shipped model for the input)")
    p.add_argument("--coder", choices=CODERS, default="ans", help="entropy coder (default ans)")
    p.add_argument("--quant-step", "--step", dest="quant_step", type=float, nargs="+", default=[1.0],
                   help="quantization steps >= 1, one report each (default 1)")
    p.add_argument("-o", "--output", dest="json", metavar="OUT", help="also write the results to this JSON file")
    p.add_argument("--perceptual", action=argparse.BooleanOptionalAction, default=None,
                   help="SSIMULACRA2 (images) and ViSQOL MOS-LQO (audio); default: when wavecodec[metrics] is installed")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    _precision_flags(p)
    _device_flag(p)
    p.set_defaults(func=cmd_eval)


def _print_report(report: dict, audio: bool) -> None:
    if audio:
        cols = [("kbps", "kbps", 7, 1), ("ratio", "compression_ratio", 7, 1), ("SNR", "snr", 7, 2), ("PSNR", "psnr", 7, 2),
                ("SI-SDR", "si_sdr", 7, 2), ("STFT", "stft_distance", 7, 3), ("mel", "mel_distance", 7, 3),
                ("MOS-LQO", "visqol", 8, 2), ("enc xRT", "encode_realtime", 8, 1), ("dec xRT", "decode_realtime", 8, 1)]
    else:
        cols = [("bpp", "bpp", 7, 3), ("ratio", "compression_ratio", 7, 1), ("PSNR", "psnr", 7, 2), ("MS-SSIM", "ms_ssim", 8, 4),
                ("SSIMU2", "ssimulacra2", 7, 2), ("enc MP/s", "encode_mpix_s", 9, 2), ("dec MP/s", "decode_mpix_s", 9, 2)]
    cols = [c for c in cols if any(c[1] in r for r in report["files"])]  # perceptual scores only where computed
    print(f"{'file':40s} " + " ".join(f"{title:>{w}s}" for title, _, w, _ in cols))
    for r in report["files"]:
        print(f"{Path(r['file']).name[:40]:40s} " + " ".join(f"{r.get(k, float('nan')):{w}.{p}f}" for _, k, w, p in cols))
    m = {k: v[0] for k, v in report["results"].items()} | report["median"]
    print(f"{'mean':40s} " + " ".join(f"{m.get(k, float('nan')):{w}.{p}f}" for _, k, w, p in cols) + "  (speeds: medians)")


def cmd_convert(args: argparse.Namespace) -> int:
    """``wavecodec convert``: a dataset into latent shards."""
    from .registry import model_for
    from .convert import convert

    if args.labels and args.labels_from_folders:
        raise InputError("use either --labels or --labels-from-folders, not both")
    if bool(args.dst) == bool(args.output):
        raise InputError("name the output folder once: as the second argument or with -o")
    args.dst = args.dst or args.output
    if args.shard_size < 1:
        raise InputError("--shard-size must be at least 1")
    index = convert(args.src, args.dst, model=args.model or _default(lambda: model_for("image", 3, "latents")), labels=args.labels,
                    labels_from_folders=args.labels_from_folders, shard_size=args.shard_size, engine=args.engine,
                    workers=args.workers, coder=args.coder, progress=_bar(args.quiet, "item"),
                    shuffle_seed=None if args.sorted else args.seed)
    if not args.quiet:
        ratio = index["source_bytes"] / max(1, index["bytes"])
        print(f"{index['count']} items in {len(index['shards'])} shards, {len(index['failed'])} unreadable; "
              f"{index['bytes']:,} bytes of latents vs {index['source_bytes']:,} bytes of sources ({ratio:.1f}x smaller)")
    return 0


def add_convert(sub: argparse._SubParsersAction) -> None:
    """The ``convert`` command's arguments."""
    p = sub.add_parser("convert", help="convert a dataset into WebDataset shards of compressed latents")
    p.add_argument("src", help="folder tree of images or audio, or a manifest file listing paths")
    p.add_argument("dst", nargs="?", help="output folder (re-running it resumes); or -o")
    p.add_argument("-o", "--output", help="output folder, as the second argument")
    p.add_argument("--model", help="shipped model name or checkpoint path (default: the shipped image model)")
    p.add_argument("--labels", help="CSV of path,label (paths relative to SRC)")
    p.add_argument("--labels-from-folders", action="store_true", help="label = first subfolder name under SRC")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="worker processes here, or Ray tasks")
    p.add_argument("--workers", type=int, default=2, help="worker processes (local) or CPUs (local Ray); default 2")
    p.add_argument("--coder", choices=CODERS, default="ans", help="entropy coder (default ans)")
    p.add_argument("--seed", type=int, default=0, help="seed of the order inputs are spread over shards in (default 0)")
    p.add_argument("--sorted", action="store_true", help="keep the inputs in sorted order instead (shards then group classes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_convert)


def _bar(quiet: bool, unit: str) -> Callable[[int, int], None] | None:
    """A progress bar on stderr, or none with ``--quiet``."""
    return None if quiet else bar(unit)


def cmd_train(args: argparse.Namespace) -> int:
    """``wavecodec train``: train a codec from a config."""
    from .training import TrainConfig, train

    overrides = list(args.set or [])
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    cfg = TrainConfig.load(args.config or "", overrides)
    from .training.state import CHECKPOINT

    if not args.resume and (Path(cfg.run_dir) / CHECKPOINT).exists():
        raise InputError(f"{cfg.run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    if args.until is not None and not 0 < args.until <= cfg.steps:
        raise InputError(f"--until must be a step in 1..{cfg.steps}, got {args.until}")
    summary = train(cfg, resume=args.resume, progress=_bar(args.quiet, "step"), until=args.until)
    if summary["world_size"] > 1:  # each rank says what it ended with, so a mismatch shows
        print(f"rank {summary['rank']} weights {summary['weights']}", flush=True)
    if not args.quiet and summary["rank"] == 0:
        print(json.dumps(summary, indent=2))
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    """The ``train`` command's arguments."""
    p = sub.add_parser("train", help="train a codec (rate-distortion) from a TOML/JSON config")
    p.add_argument("--config", help="TOML or JSON training config (default: all defaults)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. steps=500 or codec.latent_dim=48")
    p.add_argument("-o", "--run-dir", help="where checkpoints, logs and plots go (overrides run_dir)")
    p.add_argument("--resume", action="store_true", help="continue the run in run_dir from its checkpoint")
    p.add_argument("--until", type=int, metavar="STEP", help="stop at this step with a checkpoint, as an interruption "
                   "would (--resume later continues to the configured steps, exactly as an uninterrupted run)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_train)


def cmd_learn(args: argparse.Namespace) -> int:
    """``wavecodec learn``: a classifier on latent shards."""
    from .learn.classify import learn

    if not 0 < args.test_fraction < 1:
        raise InputError("--test-fraction must be between 0 and 1")
    metrics = learn(args.train, args.output, test_dir=args.test, test_fraction=args.test_fraction, epochs=args.epochs,
                    batch_size=args.batch_size, width=args.width, depth=args.depth, kind=args.kind, lr=args.lr,
                    seed=args.seed, progress=None if args.quiet else staged_bars("it"))
    if not args.quiet:
        print(f"test accuracy {metrics['final_accuracy']:.4f} on {metrics['test_samples']} samples "
              f"({metrics['train_samples']} trained on); wrote {args.output}/classifier.safetensors, metrics.json, curves.png")
    return 0


def add_learn(sub: argparse._SubParsersAction) -> None:
    """The ``learn`` command's arguments."""
    p = sub.add_parser("learn", help="train a classifier on a converted latent dataset (compressed-domain learning)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("train", help="latent dataset folder made by wavecodec convert, with labels")
    p.add_argument("-o", "--output", default="runs/learn", help="where the classifier, metrics and plot go")
    p.add_argument("--test", help="a second converted dataset to test on (default: hold out --test-fraction)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="share held out for testing without --test")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training latents")
    p.add_argument("--batch-size", type=int, default=128, help="samples per step")
    p.add_argument("--width", type=int, default=64, help="token width of the classifier")
    p.add_argument("--depth", type=int, default=3, help="number of blocks")
    p.add_argument("--kind", choices=["conv", "transformer"], default="conv", help="block type")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, warm-up and cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation, the split and the batches")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_learn)


def cmd_export(args: argparse.Namespace) -> int:
    """``wavecodec export``: a loadable model from a run."""
    from .training import export

    out = Path(args.output)
    _check_output(out, args.force)
    try:
        codec = export(args.run, out, name=args.name, fit_batches=args.fit_batches, use_ema=not args.no_ema)
    except ConfigError as exc:
        raise InputError(f"{str(exc).split(';')[0]}; pass --name") if "shipped model" in str(exc) else exc from None
    if not args.quiet:
        print(f"wrote {out} ({codec.config.name or 'unnamed'}, {codec.num_parameters():,} parameters)")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    """The ``export`` command's arguments."""
    p = sub.add_parser("export", help="write a loadable model from a training run",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run directory")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    p.add_argument("--name", help="model name recorded in the file (default: the config's)")
    p.add_argument("--fit-batches", type=int, default=8, help="training batches to fit the context model on")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights even if an EMA exists")
    _common_flags(p)
    p.set_defaults(func=cmd_export)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on bundled data: the wavelet transform, then a real compression round trip."""
    from . import wpt
    from .files import write_output
    from .images import read_image, to_tensor
    from .compression import read_header
    from .metrics import psnr
    from .registry import load, model_for
    image = read_image(args.image)
    x = to_tensor(image).double() / 255.0
    block = 2**args.levels
    h, w = (x.shape[2] // block) * block, (x.shape[3] // block) * block
    X = wpt.analysis(x[:, :, :h, :w], args.levels)
    err = (wpt.synthesis(X, args.levels) - x[:, :, :h, :w]).abs().max().item()
    print(f"image:            {args.image} ({image.shape[1]}x{image.shape[0]}, {image.shape[2]} channels)")
    print(f"wavelet packets:  J={args.levels} bior4.4 -> {tuple(X.shape)}, max abs reconstruction error {err:.2e} (float64)")
    name = args.model or _default(lambda: model_for("image", 3))
    codec = load(name)
    pixels = to_tensor(image)
    data = codec.compress(pixels)
    decoded = codec.decompress(data)
    quality = psnr(pixels, decoded, 255.0)
    out = Path(args.output_dir)
    stem = Path(args.image).stem
    write_bytes(out / f"{stem}.wvc", data)
    write_output(out / f"{stem}_decoded.png", decoded, {"sample_rate": None})
    latent = codec.latent_shape(pixels.shape[2:])
    kind = f", quality {read_header(data)['quality']:g} of 0-100" if codec.rates is not None else ""
    print(f"model:            {codec.config.name} ({codec.num_parameters():,} parameters, latents {latent} "
          f"{str(codec.bottleneck.int_dtype).removeprefix('torch.')}{kind})")
    print(f"compressed:       {len(data):,} bytes, {8 * len(data) / (h * w):.3f} bpp, "
          f"ratio {image.size / len(data):.1f}:1 against 8-bit pixels")
    print(f"decoded PSNR:     {quality:.2f} dB")
    print(f"wrote:            {out / (stem + '.wvc')} and {out / (stem + '_decoded.png')}")
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` command's arguments."""
    p = sub.add_parser("demo", help="transform and compress a bundled photo; report size and PSNR")
    p.add_argument("image", nargs="?", default=str(BUNDLED_PHOTO), help="image file (default: bundled photo)")
    p.add_argument("--levels", type=int, default=3, help="wavelet packet levels J (default 3)")
    p.add_argument("--model", help="model to compress with (default: the first shipped image model)")
    p.add_argument("-o", "--output-dir", default="out/demo", help="where the .wvc and decoded PNG go (default out/demo)")
    p.set_defaults(func=cmd_demo)


def _device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:1, mps (default cpu)")


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")


def build_parser() -> argparse.ArgumentParser:
    """The ``wavecodec`` argument parser: one ``add_<command>`` per ``cmd_<command>``."""
    parser = argparse.ArgumentParser(prog="wavecodec", description="Learned wavelet compression.")
    parser.add_argument("--version", action="version", version=f"wavecodec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (add_encode, add_decode, add_info, add_models, add_eval, add_convert, add_train, add_learn, add_export, add_demo):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for user errors, one line on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WavecodecError as exc:
        print(f"wavecodec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wavecodec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: stop quietly, as Unix tools do
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a read-only folder, a full disk, a vanished path: one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"wavecodec: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
