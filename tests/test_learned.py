"""The fitted models: the shipped JSON loads, scores as documented, and a damaged file is refused clearly."""

from __future__ import annotations

import json
import math
import re
from importlib.resources import files

import numpy as np
import pytest

from qabot.errors import ConfigError
from qabot.features import CANDIDATE_FEATURES, QUESTION_FEATURES
from qabot.learned import LinearModel, Models, logistic, models_to_json, parse_models, shipped_models

SHIPPED = files("qabot").joinpath("data/models.json").read_text(encoding="utf-8")


def test_shipped_models_name_every_feature_and_carry_their_fitting_report():
    models = shipped_models()
    assert models.ranker.names == CANDIDATE_FEATURES and models.confidence.names == QUESTION_FEATURES
    assert models.abstention.names == QUESTION_FEATURES
    assert 0.0 < models.min_answerable < 1.0
    assert 0.0 < models.labels.possible <= models.labels.likely < 1.0
    report = json.loads(SHIPPED)["report"]
    for name in ("news", "squad-dev", "squad-multi"):
        assert report["fitted"][name]["questions"] > 0, "fitted figures per set"
        assert report["cross_validated"][name]["questions"] > 0, "article-grouped CV figures beside the fit"
        assert len({draw[name]["R@1"] for draw in report["cross_validated_fold_draws"].values()}) >= 1
    kinds = {"spelling", "derivation", "joined", "initials", "apart"}
    assert {f"without {kind}" for kind in kinds} <= set(report["alternatives"]), "each variant kind is measured"


def test_linear_model_standardises_then_weighs():
    model = LinearModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([3.0, -1.0]), 0.5)
    assert model.score(np.array([[5.0, 2.0]]))[0] == pytest.approx(3.0 * 2.0 - 2.0 + 0.5)


def test_logistic_is_stable_at_the_extremes():
    assert logistic(0.0) == 0.5
    assert logistic(800.0) == 1.0 and logistic(-800.0) == 0.0
    assert logistic(2.0) == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_models_survive_a_round_trip_through_json():
    models = shipped_models()
    again = parse_models(models_to_json(models, {"note": "x"}), "round trip")
    assert again.min_answerable == models.min_answerable and again.labels == models.labels
    for name in ("ranker", "confidence", "abstention"):
        mine, theirs = getattr(again, name), getattr(models, name)
        assert np.array_equal(mine.weights, theirs.weights) and mine.bias == theirs.bias


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda d: d.update(format=99), "format 99"),
        (lambda d: d["ranker"]["features"].pop("bm25"), "ranker features"),
        (lambda d: d["confidence"]["features"]["margin"].update(scale=0.0), "scale that is not positive"),
        (lambda d: d.update(min_answerable=1.5), "outside 0..1"),
        (lambda d: d["labels"].update(possible=0.9, likely=0.5), "not in order"),
        (lambda d: d.pop("confidence"), "confidence"),
    ],
)
def test_a_damaged_model_file_is_refused_with_what_is_wrong_and_how_to_mend_it(damage, says):
    data = json.loads(SHIPPED)
    damage(data)
    with pytest.raises(ConfigError, match=re.escape("re-fit with `python tools/fit_models.py`")) as raised:
        parse_models(json.dumps(data), "models.json")
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_not_json_at_all_is_refused():
    with pytest.raises(ConfigError, match="not usable"):
        parse_models("{", "models.json")


def test_models_value_is_frozen():
    models = shipped_models()
    assert isinstance(models, Models)
    with pytest.raises(AttributeError):
        models.min_answerable = 0.0  # type: ignore[misc]
