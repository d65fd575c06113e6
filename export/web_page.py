"""The static web page that runs an exported pose model in the browser with onnxruntime-web.

    write_web_folder("model.onnx", "site")      # then: cd site && python -m http.server

The folder is self-contained and works with no network: the page (index.html, style.css,
src/*.js, from web/ in the source tree), onnxruntime-web's WASM build (ort/, from
web/node_modules: `make web` runs `npm ci` there), the model, extents.json (the 3-D box drawn
per category) and serve.py (a server with the headers that enable WASM threads). The page reads
the preprocessing contract from the model's ONNX metadata, like `export.runtime.PoseEstimator`.
"""

from __future__ import annotations

import os
from pathlib import Path

from data_tools.atomic_write import atomic_write_bytes, atomic_write_json
from data_tools.image.draw import DEFAULT_EXTENT, TYPICAL_EXTENT
from export.model_files import external_data_locations

#: The page's sources in a checkout of posenet-mlvae.
WEB_SOURCE = Path(__file__).resolve().parents[1] / "web"

#: Files of the page itself, relative to WEB_SOURCE (plus every src/*.js).
PAGE_FILES = ("index.html", "style.css", "serve.py", "README.md")

#: onnxruntime-web's WASM-only ES module and the WebAssembly runtime it loads.
ORT_DIST = Path("node_modules") / "onnxruntime-web" / "dist"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def page_assets(source: str | os.PathLike = WEB_SOURCE) -> dict[str, Path]:
    """Files of the web folder: name inside the folder -> source file.

    Raises ValueError naming what is missing and the command that installs it.
    """
    source = Path(source)
    scripts = sorted((source / "src").glob("*.js"))
    assets = {name: source / name for name in PAGE_FILES}
    assets.update({f"src/{path.name}": path for path in scripts})
    missing = [name for name, path in assets.items() if not path.is_file()] + ([] if scripts else ["src/*.js"])
    if missing:
        raise ValueError(f"the web page sources are incomplete in {source} (missing {missing}); "
                         "`--web` needs a checkout of posenet-mlvae")
    runtime = {f"ort/{name}": source / ORT_DIST / name for name in ORT_FILES}
    absent = [str(path) for path in runtime.values() if not path.is_file()]
    if absent:
        raise ValueError(f"onnxruntime-web is not installed ({absent[0]} is missing); run `make web` "
                         f"(npm ci in {source}) first")
    return {**assets, **runtime}


def write_web_folder(model_path: str | os.PathLike, out_dir: str | os.PathLike,
                     source: str | os.PathLike = WEB_SOURCE) -> Path:
    """Write the page, onnxruntime-web and a copy of `model_path` (as model.onnx) to `out_dir`.

    Existing files of the same names are replaced; other files in `out_dir` are left alone.
    Returns the folder. Raises ValueError for a missing model, a model with external data (the
    page fetches one file) or missing page sources.
    """
    model_path, out_dir = Path(model_path), Path(out_dir)
    if not model_path.is_file():
        raise ValueError(f"{model_path}: no such model file; export one first")
    model_bytes = model_path.read_bytes()
    if external_data_locations(model_bytes):
        raise ValueError(f"{model_path} keeps weights in external data files; the page loads one "
                         "self-contained .onnx file: export it without external data")
    assets = page_assets(source)
    for name, path in assets.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, path.read_bytes())
    atomic_write_json(out_dir / "extents.json", {
        "about": "typical (x, y, z) extent per category in object units: the 3-D box the page "
                 "draws (data_tools.image.draw.TYPICAL_EXTENT)",
        "categories": {name: list(extent) for name, extent in TYPICAL_EXTENT.items()},
        "default": list(DEFAULT_EXTENT),
    })
    atomic_write_bytes(out_dir / "model.onnx", model_bytes)
    return out_dir
