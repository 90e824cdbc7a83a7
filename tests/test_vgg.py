"""VGG feature extractor: layer naming, truncation, freezing, weight loading and weight discovery."""

from __future__ import annotations

import functools
import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastnst import vgg as vgg_mod
from fastnst.errors import FastNSTError
from fastnst.vgg import IMAGENET_MEAN, IMAGENET_STD, VGGFeatures, layer_indices, load_vgg, resolve_weights

pytestmark = pytest.mark.usefixtures("seeded")

# The conv layers of torchvision's vgg19().features, by index; the shared partial file covers these.
VGG19_CONV_UP_TO_3_4 = (0, 2, 5, 7, 10, 12, 14, 16)


@functools.lru_cache(maxsize=None)
def _full_state(arch: str) -> dict[str, torch.Tensor]:
    deepest = "relu5_4" if arch == "vgg19" else "relu5_3"
    return dict(VGGFeatures([deepest], arch=arch).state_dict())  # random init is slow: build once


def torchvision_style_state(arch: str = "vgg19", with_classifier: bool = True) -> dict[str, torch.Tensor]:
    """A full random state dict in torchvision's layout: features.N.* for every conv, plus classifier.*."""
    state = dict(_full_state(arch))
    if with_classifier:
        state["classifier.0.weight"] = torch.randn(8, 4)
        state["classifier.0.bias"] = torch.randn(8)
        state["classifier.6.weight"] = torch.randn(3, 8)
    return state


def partial_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Only conv1_1..conv3_4, like the shared VGG19 file."""
    keep = {f"features.{i}.{p}" for i in VGG19_CONV_UP_TO_3_4 for p in ("weight", "bias")}
    return {k: v for k, v in state.items() if k in keep}


# ---------------------------------------------------------------------------------------------
# layer names and truncation


@pytest.mark.parametrize(
    "name, index",
    [("conv1_1", 0), ("relu1_1", 1), ("relu1_2", 3), ("pool1", 4), ("relu2_1", 6), ("relu2_2", 8),
     ("pool2", 9), ("relu3_1", 11), ("conv3_4", 16), ("relu3_4", 17), ("pool3", 18), ("relu4_1", 20),
     ("relu4_4", 26), ("relu5_1", 29), ("relu5_4", 35), ("pool5", 36)],
)
def test_vgg19_layer_indices_match_torchvision(name, index):
    assert layer_indices("vgg19")[name] == index


@pytest.mark.parametrize(
    "name, index",
    [("relu1_1", 1), ("pool2", 9), ("relu3_3", 15), ("pool3", 16), ("relu4_1", 18), ("relu4_3", 22),
     ("relu5_3", 29), ("pool5", 30)],
)
def test_vgg16_layer_indices_match_torchvision(name, index):
    assert layer_indices("vgg16")[name] == index


def test_vgg16_has_no_fourth_conv_per_block():
    assert "relu3_4" not in layer_indices("vgg16")
    assert "relu3_4" in layer_indices("vgg19")


def test_unknown_arch_and_layer_are_user_errors():
    with pytest.raises(FastNSTError, match="vgg11"):
        layer_indices("vgg11")
    with pytest.raises(FastNSTError, match="relu9_9"):
        VGGFeatures(["relu1_1", "relu9_9"])
    with pytest.raises(FastNSTError):
        VGGFeatures([])
    with pytest.raises(FastNSTError):
        VGGFeatures(["relu3_4"], arch="vgg16")


@pytest.mark.parametrize("layers, depth", [(["relu3_4"], 18), (["relu1_1"], 2), (["relu1_1", "relu3_1"], 12),
                                           (["relu3_1", "relu1_1"], 12), (["pool1"], 5), (["relu5_4"], 36)])
def test_features_truncated_at_deepest_requested_layer(layers, depth):
    assert len(VGGFeatures(layers).features) == depth


def test_truncated_modules_have_torchvision_types_and_channels():
    feats = VGGFeatures(["relu3_4"]).features
    convs = [i for i, m in enumerate(feats) if isinstance(m, nn.Conv2d)]
    assert convs == list(VGG19_CONV_UP_TO_3_4)
    assert [feats[i].out_channels for i in convs] == [64, 64, 128, 128, 256, 256, 256, 256]
    assert all(isinstance(feats[i + 1], nn.ReLU) for i in convs)
    assert isinstance(feats[4], nn.MaxPool2d) and isinstance(feats[9], nn.MaxPool2d)


def test_forward_returns_requested_layers_with_shapes():
    layers = ["relu1_1", "pool1", "relu2_2", "relu3_1", "relu3_4"]
    net = VGGFeatures(layers)
    out = net(torch.rand(2, 3, 32, 24))
    assert set(out) == set(layers)
    assert out["relu1_1"].shape == (2, 64, 32, 24)
    assert out["pool1"].shape == (2, 64, 16, 12)
    assert out["relu2_2"].shape == (2, 128, 16, 12)
    assert out["relu3_1"].shape == (2, 256, 8, 6)
    assert out["relu3_4"].shape == (2, 256, 8, 6)
    for name in ("relu1_1", "relu2_2", "relu3_4"):
        assert out[name].min() >= 0


def test_forward_normalizes_with_imagenet_stats_inside():
    net = VGGFeatures(["conv1_1", "relu1_1"])
    x = torch.rand(1, 3, 8, 8)
    conv = net.features[0]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = F.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1)
    out = net(x)
    torch.testing.assert_close(out["conv1_1"], expected)
    # The conv output must not be clobbered by an in-place ReLU after it.
    assert (out["conv1_1"] < 0).any()
    torch.testing.assert_close(out["relu1_1"], expected.clamp(min=0))


def test_forward_layers_argument_stops_early():
    net = VGGFeatures(["relu1_1", "relu2_2", "relu3_4"])
    calls = []
    net.features[10].register_forward_hook(lambda m, i, o: calls.append("conv3_1"))
    x = torch.rand(1, 3, 16, 16)
    full = net(x)
    assert calls == ["conv3_1"]
    calls.clear()
    part = net(x, layers=["relu1_1"])
    assert set(part) == {"relu1_1"}
    assert calls == []
    torch.testing.assert_close(part["relu1_1"], full["relu1_1"])
    part = net(x, ["relu2_2"])
    assert set(part) == {"relu2_2"} and calls == []
    torch.testing.assert_close(part["relu2_2"], full["relu2_2"])


# ---------------------------------------------------------------------------------------------
# frozen


def test_vgg_is_frozen_but_passes_gradient_to_input():
    net = VGGFeatures(["relu1_1", "relu2_2"])
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    out = net(x)
    (out["relu1_1"].mean() + out["relu2_2"].pow(2).mean()).backward()
    params = list(net.parameters())
    assert params
    assert all(not p.requires_grad for p in params)
    assert all(p.grad is None for p in params)
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_train_keeps_eval_mode():
    net = VGGFeatures(["relu2_2"])
    assert not net.training
    assert net.train() is net
    assert not net.training
    assert not any(m.training for m in net.modules())
    net.train(True)
    assert not any(m.training for m in net.modules())
    # Wrapped in a parent whose .train() recurses into children.
    parent = nn.Sequential(nn.Linear(2, 2), net)
    parent.train()
    assert parent[0].training and not net.training


def test_mean_std_are_not_saved_in_state_dict():
    keys = set(VGGFeatures(["relu1_2"]).state_dict())
    assert keys == {"features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias"}


# ---------------------------------------------------------------------------------------------
# weight loading


def test_torchvision_layout_loads_and_reproduces_outputs():
    layers = ["relu1_1", "relu2_2", "relu3_4"]
    source = VGGFeatures(layers + ["relu5_4"])  # the module whose weights the file holds
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.randn(8, 4)  # as in torchvision's full file
    state["classifier.0.bias"] = torch.randn(8)
    target = VGGFeatures(layers)  # a different random init
    x = torch.rand(1, 3, 16, 16)
    expected = source(x, layers)
    assert not torch.allclose(target(x)["relu2_2"], expected["relu2_2"])
    target.load_state_dict(state)  # extra deeper features.* and classifier.* keys are ignored
    out = target(x)
    for name in layers:
        torch.testing.assert_close(out[name], expected[name])


@pytest.mark.parametrize("transform", ["module_prefix", "bare_sequential"])
def test_state_dict_variants_load(transform):
    state = partial_state(torchvision_style_state(with_classifier=False))
    if transform == "module_prefix":  # saved from a DataParallel/DDP wrapper
        variant = {f"module.{k}": v for k, v in state.items()}
    else:  # saved from the features Sequential itself
        variant = {k.removeprefix("features."): v for k, v in state.items()}
    a, b = VGGFeatures(["relu3_1"]), VGGFeatures(["relu3_1"])
    a.load_state_dict(state)
    b.load_state_dict(variant)
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(a(x)["relu3_1"], b(x)["relu3_1"])


def test_partial_weights_cover_up_to_relu3_4():
    state = partial_state(torchvision_style_state())
    assert len(state) == 16
    net = VGGFeatures(["relu1_1", "relu3_4"])
    net.load_state_dict(state)
    torch.testing.assert_close(net.features[16].weight, state["features.16.weight"])


@pytest.mark.parametrize("layers", [["relu4_1"], ["relu1_1", "relu4_1"], ["relu5_4"], ["conv4_1"]])
def test_partial_weights_for_deeper_layer_raise_clear_error(layers):
    net = VGGFeatures(layers)
    with pytest.raises(FastNSTError) as err:
        net.load_state_dict(partial_state(torchvision_style_state()))
    message = str(err.value)
    assert "conv4_1" in message
    assert "conv3_4" in message
    assert "features." not in message  # names layers, not torch's key list


def test_missing_middle_layer_is_named():
    state = partial_state(torchvision_style_state())
    del state["features.7.weight"], state["features.7.bias"]  # conv2_2
    with pytest.raises(FastNSTError, match="conv2_2"):
        VGGFeatures(["relu3_1"]).load_state_dict(state)


def test_wrong_shape_is_a_user_error():
    state = partial_state(torchvision_style_state())
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    with pytest.raises(FastNSTError, match=r"features\.0\.weight"):
        VGGFeatures(["relu1_1"]).load_state_dict(state)


# ---------------------------------------------------------------------------------------------
# resolve_weights / load_vgg


@pytest.fixture
def weights_file(tmp_path):
    state = dict(VGGFeatures(["relu2_2"]).state_dict())  # conv1_1..conv2_2: small and quick
    path = tmp_path / "vgg partial.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(vgg_mod.WEIGHTS_ENV, raising=False)


def _same_state(a, b):
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_resolve_weights_explicit_path(weights_file, no_env):
    path, state = weights_file
    _same_state(resolve_weights("vgg19", path), state)
    _same_state(resolve_weights("vgg19", str(path)), state)


def test_resolve_weights_from_env(weights_file, monkeypatch):
    path, state = weights_file
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(path))
    _same_state(resolve_weights("vgg19"), state)


def test_explicit_path_wins_over_env(weights_file, monkeypatch, tmp_path):
    path, state = weights_file
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(tmp_path / "does-not-exist.pth"))
    _same_state(resolve_weights("vgg19", path), state)


def test_resolve_weights_unwraps_state_dict_key(weights_file, tmp_path, no_env):
    _, state = weights_file
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state, "epoch": 3}, wrapped)
    _same_state(resolve_weights("vgg19", wrapped), state)


def test_resolve_weights_missing_file(tmp_path, no_env):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FastNSTError, match="not found") as err:
        resolve_weights("vgg19", missing)
    assert str(missing) in str(err.value)


def test_resolve_weights_missing_file_from_env(tmp_path, monkeypatch):
    missing = tmp_path / "env-nope.pth"
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(missing))
    with pytest.raises(FastNSTError) as err:
        resolve_weights("vgg19")
    assert str(missing) in str(err.value)


@pytest.mark.parametrize("content", [b"", b"definitely not a torch file\n" * 10, b"PK\x03\x04" + bytes(200)])
def test_resolve_weights_corrupt_file(tmp_path, content, no_env):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(content)
    with pytest.raises(FastNSTError) as err:
        resolve_weights("vgg19", bad)
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)


def test_resolve_weights_not_a_state_dict(tmp_path, no_env):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(FastNSTError, match="not a state dict"):
        resolve_weights("vgg19", path)


def test_resolve_weights_download_failure_explains_alternatives(monkeypatch, no_env):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(FastNSTError) as err:
        resolve_weights("vgg19")
    assert calls == [vgg_mod.WEIGHT_URLS["vgg19"]]
    message = str(err.value)
    assert "--vgg-weights" in message
    assert "FASTNST_VGG_WEIGHTS" in message
    with pytest.raises(FastNSTError, match="--vgg-weights"):
        load_vgg(["relu1_1"])


def test_resolve_weights_uses_hub_when_nothing_given(monkeypatch, no_env):
    state = partial_state(torchvision_style_state())
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, *a, **k: state)
    net = load_vgg(["relu2_2"])
    torch.testing.assert_close(net.features[7].weight, state["features.7.weight"])


def test_load_vgg_from_file(weights_file, no_env):
    path, state = weights_file
    net = load_vgg(["relu2_2"], weights=path)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    torch.testing.assert_close(net.features[7].bias, state["features.7.bias"])
    with pytest.raises(FastNSTError) as err:
        load_vgg(["relu3_1"], weights=path)
    assert "conv3_1" in str(err.value) and "conv2_2" in str(err.value)


# ---------------------------------------------------------------------------------------------
# real weights (skipped without $FASTNST_VGG_WEIGHTS)


@pytest.mark.weights
def test_real_weights_load_up_to_relu3_4(real_vgg_weights):
    net = load_vgg(["relu1_1", "relu3_4"], weights=real_vgg_weights)
    x = torch.rand(1, 3, 32, 32)
    out = net(x)
    assert out["relu3_4"].shape == (1, 256, 8, 8)
    assert torch.isfinite(out["relu3_4"]).all()
    assert out["relu3_4"].abs().sum() > 0
    # Real filters respond to structure: a flat gray image gives weaker relu1_1 edges than noise.
    flat = net(torch.full((1, 3, 32, 32), 0.5))["relu1_1"][..., 2:-2, 2:-2]
    assert flat.std() < out["relu1_1"][..., 2:-2, 2:-2].std()


@pytest.mark.weights
def test_real_weights_refuse_relu4_1_clearly(real_vgg_weights):
    with pytest.raises(FastNSTError) as err:
        load_vgg(["relu4_1"], weights=real_vgg_weights)
    assert "conv4_1" in str(err.value) and "conv3_4" in str(err.value)
