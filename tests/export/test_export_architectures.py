"""Our modules against the published state_dict layout, key by key and shape by shape."""

from __future__ import annotations

import pytest
import torch
from synthetic import FAMILIES, train_config

from btsbot_stream.export.architectures import build_model
from btsbot_stream.export.checkpoints import parse_train_config

pytestmark = pytest.mark.export


def _model(key: str, state: dict) -> torch.nn.Module:
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    return build_model(parse_train_config(train_config(FAMILIES[key]), shapes))


@pytest.mark.parametrize("key", list(FAMILIES))
def test_state_dict_layout_matches_the_published_one(key, states):
    published = {k: tuple(v.shape) for k, v in states[key].items()}
    ours = {k: tuple(v.shape) for k, v in _model(key, states[key]).state_dict().items()}
    assert ours == published


def test_head_positions_follow_btsbot():
    # Spot checks written out from BTSbot's architectures.py, independent of both builders.
    keys = {
        "convnext": ["convnext.head.1.weight", "convnext.head.3.weight", "convnext.head.8.bias"],
        "maxvit": ["maxvit.norm.weight", "maxvit.head.1.weight", "maxvit.head.6.bias"],
        "convnext-fusion": [
            "image_branch.convnext.head.1.weight", "meta_branch.network.0.running_var",
            "meta_branch.network.4.weight", "combined_head.0.weight", "combined_head.5.bias",
        ],
        "maxvit-fusion": ["image_branch.maxvit.norm.bias", "combined_head.2.weight"],
    }  # fmt: skip
    for key, names in keys.items():
        assert set(names) <= set(_model(key, {}).state_dict()), key


def test_convnext_ignores_the_last_three_rows_and_columns(states):
    # Its stride-4 stem covers 60 of 63 pixels: so it was trained, so it stays.
    model = _model("convnext", states["convnext"])
    image = torch.rand(1, 3, 63, 63)
    changed = image.clone()
    changed[..., 60:, :] = 5.0
    changed[..., :, 60:] = 5.0
    with torch.inference_mode():
        assert torch.equal(model(image), model(changed))
        changed[..., 30, 30] = 5.0
        assert not torch.equal(model(image), model(changed))
