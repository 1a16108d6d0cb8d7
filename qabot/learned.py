"""The fitted models: a linear ranker over candidate signals and a logistic confidence model.

Their coefficients are plain JSON shipped in qabot/data/models.json, written by
`python tools/fit_models.py` (which also reports their cross-validated figures).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import ConfigError
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES

FORMAT = 2


@dataclass(frozen=True, slots=True)
class LinearModel:
    """bias + weights . ((x - mean) / scale), over the named features."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float = 0.0

    def score(self, features: np.ndarray) -> np.ndarray:
        """The model's score of each row of features (columns in `names` order)."""
        return (features - self.mean) / self.scale @ self.weights + self.bias


@dataclass(frozen=True, slots=True)
class Labels:
    """The confidences from which an answer is labelled "Likely answer" and "Possible match"."""

    likely: float
    possible: float

    def of(self, confidence: float) -> str:
        """The label a reader sees for a confidence."""
        if confidence >= self.likely:
            return LIKELY
        return POSSIBLE if confidence >= self.possible else WEAK


LIKELY, POSSIBLE, WEAK = "Likely answer", "Possible match", "Weak match"


@dataclass(frozen=True, slots=True)
class Models:
    """The ranker; the confidence model (the chance the first passage answers, shown with it); the
    abstention model (the chance the corpus answers the question at all) and the probability under which
    the answerer abstains; the labels' cut-offs."""

    ranker: LinearModel
    confidence: LinearModel
    abstention: LinearModel
    min_answerable: float
    labels: Labels
    # A lower-case question word the corpus lacks at all is left out of the question when it is at least this
    # common (Zipf frequency) in English or another large language: "keep" 5.7, Spanish "quién" 5.4, "twin" 4.3.
    everyday_zipf: float = 99.0


def logistic(x: float) -> float:
    """The logistic function 1 / (1 + e^-x), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    return math.exp(x) / (1.0 + math.exp(x))


def models_to_json(models: Models, report: dict[str, Any]) -> str:
    """The JSON text of models, with the fitting report (figures, data, settings) kept beside them."""

    def linear(model: LinearModel) -> dict[str, Any]:
        return {
            "bias": model.bias,
            "features": {
                name: {"weight": float(w), "mean": float(m), "scale": float(s)}
                for name, w, m, s in zip(model.names, model.weights, model.mean, model.scale, strict=True)
            },
        }

    data = {
        "format": FORMAT,
        "min_answerable": models.min_answerable,
        "labels": {"likely": models.labels.likely, "possible": models.labels.possible},
        "everyday_zipf": models.everyday_zipf,
        "ranker": linear(models.ranker),
        "confidence": linear(models.confidence),
        "abstention": linear(models.abstention),
        "report": report,
    }
    return json.dumps(data, indent=1) + "\n"


def parse_models(text: str, where: str) -> Models:
    """Models from models_to_json's text; ConfigError says what is wrong and how to mend it."""
    mend = "re-fit with `python tools/fit_models.py`"
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")

        def linear(key: str, names: tuple[str, ...]) -> LinearModel:
            table = data[key]["features"]
            if tuple(table) != names:
                raise ValueError(f"{key} features {list(table)}, expected {list(names)}")
            rows = [(float(f["weight"]), float(f["mean"]), float(f["scale"])) for f in table.values()]
            weights, mean, scale = (np.array(column) for column in zip(*rows, strict=True))
            if not np.all(np.isfinite(weights)) or not np.all(scale > 0):
                raise ValueError(f"{key} has a non-finite weight or a scale that is not positive")
            return LinearModel(names, mean, scale, weights, float(data[key]["bias"]))

        threshold = float(data["min_answerable"])
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"min_answerable {threshold} is outside 0..1")
        likely, possible = float(data["labels"]["likely"]), float(data["labels"]["possible"])
        if not 0.0 <= possible <= likely <= 1.0:
            raise ValueError(f"label cut-offs possible {possible}, likely {likely} are not in order within 0..1")
        labels = Labels(likely, possible)
        question = (linear("confidence", QUESTION_FEATURES), linear("abstention", QUESTION_FEATURES))
        everyday = float(data["everyday_zipf"])
        return Models(linear("ranker", CANDIDATE_FEATURES), *question, threshold, labels, everyday)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"model file {where} is not usable ({exc}); {mend}") from None


@cache
def shipped_models() -> Models:
    """The models shipped with the package (qabot/data/models.json)."""
    resource = files("qabot").joinpath("data/models.json")
    return parse_models(resource.read_text(encoding="utf-8"), str(Path("qabot") / "data" / "models.json"))
