"""Feature networks: layers, transforms, weights loading (random, local files, the hub cache), injection, errors."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.metrics import FEATURE_METRICS, FeatureNetwork, load_images, load_network, tiny_stand_in

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def batch(images):
    return load_images(images[:3], size=64)


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ("alexnet", {"features.4": 192 * 7 * 7, "features.11": 256 * 3 * 3}),  # at the 64 input of the test nets
        ("inception", {"avgpool": 2048 // 16}),
        ("effnet", {"avgpool": 4 * 80}),
        ("swav", {"avgpool": 512}),
        ("clip", {"embedding": 64}),
    ],
)
def test_tiny_stand_ins_give_the_metric_layers(tiny_networks, batch, network, expected):
    net = tiny_networks[network]
    assert net.random_weights is True
    feats = net.extract(batch, list(expected), batch_size=2)
    assert {k: v.shape for k, v in feats.items()} == {k: (3, d) for k, d in expected.items()}
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in feats.values())


def test_default_input_sides_are_the_reference_ones(batch):
    sides = {name: tiny_stand_in(name).resize for name in ("alexnet", "inception", "clip", "effnet", "swav")}
    assert sides == {"alexnet": 256, "inception": 342, "clip": 224, "effnet": 255, "swav": 224}
    feats = tiny_stand_in("alexnet").extract(batch[:1], ["features.4", "features.11"])
    assert feats["features.4"].shape == (1, 192 * 31 * 31) and feats["features.11"].shape == (1, 256 * 15 * 15)
    with pytest.raises(ToolkitError, match="resize must be 224"):
        FeatureNetwork("clip", tiny_stand_in("clip").module, random_weights=True, weights="x", resize=64)


def test_metric_table_is_consistent():
    assert [s.metric for s in FEATURE_METRICS.values()] == list(FEATURE_METRICS)
    assert {s.network for s in FEATURE_METRICS.values()} == {"alexnet", "inception", "clip", "effnet", "swav"}
    assert FEATURE_METRICS["alexnet2"].layer == "features.4" and FEATURE_METRICS["alexnet5"].layer == "features.11"
    assert not FEATURE_METRICS["swav"].higher_is_better and FEATURE_METRICS["clip"].higher_is_better


def test_extraction_resizes_normalises_and_is_batch_invariant(batch):
    seen = {}

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)
            self.avgpool = torch.nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.avgpool(self.conv(x))

    def record(_module, args):
        if isinstance(args[0], torch.Tensor):  # not while torch.fx traces the module
            seen["shape"] = tuple(args[0].shape)
            seen["mean"] = args[0].mean(dim=(0, 2, 3))

    probe = Probe()
    probe.conv.register_forward_pre_hook(record)
    net = FeatureNetwork("swav", probe, random_weights=True, weights="probe")
    a = net.extract(batch, ["avgpool"], batch_size=1)["avgpool"]
    b = net.extract(batch, ["avgpool"], batch_size=3)["avgpool"]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert seen["shape"][-2:] == (224, 224)  # SwAV's resize
    # ImageNet normalisation: a mid-grey input comes out as (0.5 - mean) / std.
    grey = torch.full((1, 3, 64, 64), 0.5)
    net.extract(grey, ["avgpool"])
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(seen["mean"], expected, atol=1e-5, rtol=0)


def test_random_reference_architecture_is_flagged_and_seeded(batch):
    a = load_network("alexnet", None)
    b = load_network("alexnet", None)
    assert a.random_weights and a.weights == "random"
    fa = a.extract(batch[:1], ["features.11"])["features.11"]
    fb = b.extract(batch[:1], ["features.11"])["features.11"]
    np.testing.assert_array_equal(fa, fb)
    assert fa.shape == (1, 256 * 15 * 15)


def test_pretrained_weights_missing_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ToolkitError, match=r"alexnet-owt-7be5be79\.pth.*download\.pytorch\.org.*checkpoints"):
        load_network("alexnet", "pretrained")
    with pytest.raises(ToolkitError, match=r"swav_800ep_pretrain\.pth\.tar"):
        load_network("swav", "imagenet")


def test_pretrained_weights_from_the_cache_swav_layout(monkeypatch, tmp_path):
    # The SwAV release: a flat state dict with a "module." prefix, projection head and prototypes, no fc.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(1)
    ref = torchvision.models.resnet50(weights=None)
    state = {f"module.{k}": v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    state["module.projection_head.0.weight"] = torch.zeros(2, 2)
    state["module.prototypes.weight"] = torch.zeros(3, 2)
    torch.save(state, folder / "swav_800ep_pretrain.pth.tar")
    net = load_network("swav", "pretrained")
    assert net.random_weights is False and net.weights == "swav:swav_800ep_pretrain"
    torch.testing.assert_close(net.module.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)


def test_corrupt_cached_torchvision_file_fails_the_hash_check(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.efficientnet_b1(weights=None).state_dict(), folder / "efficientnet_b1-c27df63c.pth")
    with pytest.raises(ToolkitError, match=r"does not match the checksum in its name.*delete it"):
        load_network("effnet", "pretrained")


@pytest.mark.parametrize("layout", ["plain", "module_prefix", "wrapped", "safetensors"])
def test_local_state_dict_file(tmp_path, layout, batch):
    torch.manual_seed(2)
    ref = torchvision.models.efficientnet_b1(weights=None).eval()
    state = ref.state_dict()
    path = tmp_path / "effnet.pth"
    if layout == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    if layout == "wrapped":
        state = {"state_dict": state, "epoch": 3}
    if layout == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "effnet.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    net = load_network("effnet", path)
    assert net.random_weights is False and net.weights.startswith("file:effnet.")
    torch.testing.assert_close(net.module.features[0][0].weight, ref.features[0][0].weight)


def test_bad_weight_files(tmp_path):
    mismatched = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(2)}, mismatched)
    with pytest.raises(ToolkitError, match=r"does not fit the torchvision EfficientNet-B1.*missing key"):
        load_network("effnet", mismatched)
    wrong_shape = tmp_path / "shape.pth"
    sd = torchvision.models.efficientnet_b1(weights=None).state_dict()
    sd["features.0.0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(sd, wrong_shape)
    with pytest.raises(ToolkitError, match="does not fit"):
        load_network("effnet", wrong_shape)
    pickled = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a pickled module, refused by weights_only loading
    with pytest.raises(ToolkitError, match="could not be read as a state dict"):
        load_network("effnet", pickled)
    with pytest.raises(ToolkitError, match="neither 'pretrained' nor an existing file"):
        load_network("effnet", tmp_path / "missing.pth")


def test_injection_and_bad_arguments(tiny_networks):
    assert load_network("swav", tiny_networks["swav"]) is tiny_networks["swav"]
    with pytest.raises(ToolkitError, match="FeatureNetwork for 'effnet'"):
        load_network("swav", tiny_networks["effnet"])
    with pytest.raises(ToolkitError, match="bare ResNet; wrap it"):
        load_network("swav", torchvision.models.resnet18())
    with pytest.raises(ToolkitError, match=r"Unknown feature network 'vgg'.*alexnet, inception"):
        load_network("vgg", None)
    with pytest.raises(ToolkitError, match="must be 'pretrained'"):
        load_network("swav", 3)
    with pytest.raises(ToolkitError, match="random_weights must be True or False"):
        FeatureNetwork("swav", torchvision.models.resnet18(), random_weights="yes", weights="x")
    with pytest.raises(ToolkitError, match="Unknown device"):
        load_network("swav", "tiny", device="nonsense")


def test_unknown_layer(tiny_networks, batch):
    with pytest.raises(ToolkitError, match=r"features\.99.*cannot be taken"):
        tiny_networks["alexnet"].extract(batch, ["features.99"])
    with pytest.raises(ToolkitError, match="only layer is 'embedding'"):
        tiny_networks["clip"].extract(batch, ["avgpool"])


def test_clip_network_from_open_clip(tiny_clip_name, tmp_path, batch):
    import open_clip
    from safetensors.torch import save_file

    net = load_network("clip", None, clip_model=tiny_clip_name)
    assert net.random_weights and net.resize == 32  # the model's own image size
    assert net.extract(batch, ["embedding"])["embedding"].shape == (3, 16)
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_file(open_clip.create_model(tiny_clip_name).state_dict(), str(path))
    loaded = load_network("clip", path, clip_model=tiny_clip_name)
    assert loaded.random_weights is False and "sha256:" in loaded.weights
    with pytest.raises(ToolkitError, match="Unknown open_clip model"):
        load_network("clip", None, clip_model="No-Such-Model")


def test_clip_embedder_injection(batch):
    from toolkit.metrics import tiny_clip_embedder

    embedder = tiny_clip_embedder()
    net = load_network("clip", embedder)
    assert net.network == "clip" and net.resize == 224
    assert net.random_weights is True  # its identity says "random-seed-0"
    feats = net.extract(batch, ["embedding"])["embedding"]
    assert feats.shape == (3, 64)


def test_tiny_stand_ins_are_seeded():
    a = tiny_stand_in("swav", seed=3).module.conv1.weight
    b = tiny_stand_in("swav", seed=3).module.conv1.weight
    c = tiny_stand_in("swav", seed=4).module.conv1.weight
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
