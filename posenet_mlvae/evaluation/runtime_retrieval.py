"""Identity retrieval computed through the app's path: the exported ONNX model run by
`export.runtime.PoseEstimator`, each view's content posterior read from the graph and a query's
views multiplied by `data_tools.gaussians.product_of_gaussians`, as `predict_group` does.

It checks what an app gets from group inference on unseen instances, beside the torch figure of
`evaluate --diagnostics` (which the two must match up to float rounding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_tools.dataset import GroupedDataset


def runtime_retrieval(model_path: str | Path, dataset: GroupedDataset, seed: int = 0,
                      batch_size: int = 256) -> dict[str, Any]:
    """`eval.retrieval.retrieval_top1` of the split's images encoded by ONNX Runtime (CPU), with a
    one-view gallery ("by_views") and a gallery enrolled from as many views as the query.

    The dataset's images are already model-input crops (made by the model's crop rule), so they
    go to the graph as they are (`to_model_input`), not cropped a second time.
    """
    from data_tools.image.preprocess import to_model_input
    from eval.retrieval import retrieval_top1
    from export.runtime import PoseEstimator

    estimator = PoseEstimator(model_path, providers=["CPUExecutionProvider"])
    if estimator.image_size != dataset.image_size:
        raise ValueError(f"{model_path} takes {estimator.image_size} px but {dataset.root} holds "
                         f"{dataset.image_size} px images")
    means, logvars = [], []
    for start in range(0, len(dataset), batch_size):
        rows = np.arange(start, min(start + batch_size, len(dataset)))
        mean, logvar = estimator.content_posteriors(to_model_input(dataset.images(rows)))
        means.append(mean)
        logvars.append(logvar)
    mean, logvar, groups = np.concatenate(means), np.concatenate(logvars), dataset.records["group"]
    return {"model": str(model_path), "provider": estimator.provider,
            "by_views": retrieval_top1(mean, groups, logvar=logvar, seed=seed),
            "by_views_enrolled": retrieval_top1(mean, groups, logvar=logvar, seed=seed, gallery="enrolled")}
