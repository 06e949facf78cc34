"""The model families rtml trains and exports: the classifier at the end of the pipeline.

- ``hgb``: scikit-learn HistGradientBoostingClassifier (skl2onnx converts it natively);
- ``lightgbm``: LightGBM's LGBMClassifier;
- ``xgboost``: XGBoost's XGBClassifier;
- ``mlp``: scikit-learn MLPClassifier (numeric inputs imputed and standardized first). Its
  matrix products are what ONNX Runtime's dynamic int8 quantization can shrink
  (``rtml export --quantize``); tree ensembles have no integer kernels.

The last two are converted by onnxmltools' converters, registered with skl2onnx so that a
whole pipeline (column transformer, one-hot encoder, classifier) becomes one ONNX graph.
"""

from __future__ import annotations

from typing import Any

from rtml.core.config import ESTIMATORS
from rtml.core.errors import ModelError

# estimators that need numeric inputs without gaps and on one scale
SCALED = ("mlp",)


def make_classifier(kind: str, seed: int) -> Any:
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.1, max_leaf_nodes=31, random_state=seed
        )
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(
            n_estimators=150, learning_rate=0.1, num_leaves=31, random_state=seed, verbose=-1
        )
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            n_estimators=150, learning_rate=0.1, max_depth=6, random_state=seed, n_jobs=1
        )
    if kind == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(
            hidden_layer_sizes=(64, 32), max_iter=300, early_stopping=True, random_state=seed
        )
    raise ModelError(f"unknown estimator {kind!r}", hint=f"use one of {', '.join(ESTIMATORS)}")


def register_onnx_converter(clf: Any) -> None:
    """Teach skl2onnx the classifier at the end of a pipeline, if it is not scikit-learn's."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    name = type(clf).__name__
    if name == "LGBMClassifier":
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=options,
        )
    elif name == "XGBClassifier":
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=options,
        )
