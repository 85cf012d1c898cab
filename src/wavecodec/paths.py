"""Files that ship inside the package, importable without the library's heavy dependencies."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_PHOTO = PACKAGE_DIR / "assets" / "astronaut.png"
WEIGHTS_DIR = PACKAGE_DIR / "weights"
