"""export: ONNX export of any tensor-in/tensor-out module with metadata and a parity check
(`export.onnx_export`, needs torch), the torch-free ONNX Runtime predictor for apps
(`export.runtime`). Pose overlays are drawn by `data_tools.image.draw`.

`export.PoseEstimator` and `export.PosePrediction` resolve lazily to `export.runtime`, so importing
the package itself loads nothing heavy.
"""

_RUNTIME_NAMES = ("PoseEstimator", "PosePrediction")


def __getattr__(name: str):
    if name in _RUNTIME_NAMES:
        from export import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
