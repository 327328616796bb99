"""Image loading, PixCorr and SSIM."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.metrics import load_images, load_pairs, pixcorr, ssim, to_pil_images

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("skimage")


def test_identical_images_score_one(images):
    assert pixcorr(images, images) == pytest.approx(1.0, abs=1e-9)
    assert ssim(images, images) == pytest.approx(1.0, abs=1e-9)


def test_shuffled_pairs_score_below_one(images):
    shuffled = images[1:] + images[:1]
    assert pixcorr(shuffled, images) < 0.9
    assert ssim(shuffled, images) < 0.9
    per_pair = pixcorr(shuffled, images, per_pair=True)
    assert per_pair.shape == (len(images),)
    assert np.all(per_pair < 1.0)


def test_pixcorr_known_cases(images):
    gt = [img.astype(np.float32) / 255.0 for img in images]
    inverted = [1.0 - g for g in gt]
    affine = [0.5 * g + 0.25 for g in gt]
    # Bilinear resizing is linear with weights summing to 1, so affine maps survive it exactly.
    np.testing.assert_allclose(pixcorr(inverted, gt, per_pair=True), -1.0, atol=1e-6)
    np.testing.assert_allclose(pixcorr(affine, gt, per_pair=True), 1.0, atol=1e-6)


def test_pixcorr_is_pearson_over_all_pixels_and_channels(images):
    # With no resampling (image_size = resize = the native size) PixCorr is np.corrcoef of the flattened pixels.
    rec, gt = images[0], images[1]
    expected = np.corrcoef(rec.astype(float).transpose(2, 0, 1).ravel(), gt.astype(float).transpose(2, 0, 1).ravel())
    assert pixcorr([rec], [gt], image_size=32, resize=32) == pytest.approx(expected[0, 1], abs=1e-6)


def test_ssim_uses_the_mindeye_settings(images):
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    rec, gt = images[0], images[2]
    grey = [rgb2gray(x.astype(np.float64) / 255.0) for x in (rec, gt)]
    expected = structural_similarity(
        grey[0], grey[1], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    with_sample_cov = structural_similarity(
        grey[0], grey[1], gaussian_weights=True, sigma=1.5, use_sample_covariance=True, data_range=1.0
    )
    got = ssim([rec], [gt], image_size=32, resize=32)
    assert got == pytest.approx(expected, abs=1e-6)
    assert abs(got - with_sample_cov) > 1e-6  # the settings matter, so the test above can fail


def test_constant_image_gives_nan_pair_left_out_of_mean(images, caplog):
    flat = np.full_like(images[0], 128)
    values = pixcorr([flat, images[1]], [images[0], images[1]], per_pair=True)
    assert np.isnan(values[0]) and values[1] == pytest.approx(1.0)
    assert pixcorr([flat, images[1]], [images[0], images[1]]) == pytest.approx(1.0)
    assert "constant image" in caplog.text


def test_uint8_array_float_tensor_pil_and_path_agree(images, tmp_path):
    from PIL import Image

    img = images[0]
    path = tmp_path / "img.png"
    Image.fromarray(img).save(path)
    tensor = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
    batch = load_images([img, tensor, Image.fromarray(img), path, str(path)], size=None)
    assert batch.shape == (5, 3, 32, 32) and batch.dtype == torch.float32
    for i in range(1, 5):
        torch.testing.assert_close(batch[i], batch[0], atol=1e-6, rtol=0)
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0


def test_batch_inputs_are_split(images):
    arr = np.stack(images)  # (N, H, W, C)
    t = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # uint8 (N, C, H, W)
    a = load_images(arr, size=16)
    b = load_images(t, size=16)
    assert a.shape == (len(images), 3, 16, 16)
    torch.testing.assert_close(a, b)


def test_mixed_sizes_are_resized(images):
    from PIL import Image

    big = np.array(Image.fromarray(images[0]).resize((60, 40)))
    batch = load_images([big, images[1]], size=48)
    assert batch.shape == (2, 3, 48, 48)
    # The same content at another size still correlates strongly after the common resize.
    assert pixcorr([big], [images[0]]) > 0.9


def test_mixed_modes_are_converted_to_rgb(images, tmp_path):
    from PIL import Image

    rgb = images[0]
    grey = Image.fromarray(rgb).convert("L")
    rgba = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]), mode="RGBA")
    cmyk = Image.fromarray(rgb).convert("CMYK")
    palette = Image.fromarray(rgb).convert("P")
    grey16 = Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257).astype(np.uint16))  # 16-bit grey
    grey16_path = tmp_path / "grey16.png"
    grey16.save(grey16_path)
    batch = load_images([grey, rgba, cmyk, palette, grey16_path, rgb[:, :, :1], rgb[:, :, 0]], size=None)
    assert batch.shape == (7, 3, 32, 32)
    ref = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    torch.testing.assert_close(batch[1], ref)  # RGBA: alpha dropped
    for i in (0, 4, 5, 6):  # grey inputs: three equal channels
        torch.testing.assert_close(batch[i][0], batch[i][1])
        torch.testing.assert_close(batch[i][1], batch[i][2])
    torch.testing.assert_close(batch[4], batch[0], atol=1e-4, rtol=0)  # 16-bit scaled like 8-bit
    assert float((batch[2] - ref).abs().mean()) < 0.05  # CMYK round trip
    assert float((batch[3] - ref).abs().mean()) < 0.1  # palette quantisation
    pil = to_pil_images([rgba, rgb])
    assert [p.mode for p in pil] == ["RGB", "RGB"]


@pytest.mark.parametrize(
    ("recons", "gts", "match"),
    [
        ([], [], "empty"),
        (None, [np.zeros((4, 4, 3), np.uint8)], "None"),
        ([np.zeros((4, 4, 3), np.uint8)] * 2, [np.zeros((4, 4, 3), np.uint8)] * 3, "2 reconstructions but 3"),
        ("some/folder", ["x"], "single path"),
        ([np.zeros((4, 4, 5), np.uint8)], [np.zeros((4, 4, 3), np.uint8)], r"reconstructions\[0\] has 5 channels"),
        ([np.full((4, 4, 3), 2.0)], [np.zeros((4, 4, 3))], r"reconstructions\[0\] is a float image with values"),
        ([np.full((4, 4, 3), np.nan)], [np.zeros((4, 4, 3))], "NaN"),
        ([np.zeros(4)], [np.zeros((4, 4, 3))], r"reconstructions\[0\] is an array of shape"),
        ([np.zeros((4, 4, 3), np.int64)], [np.zeros((4, 4, 3))], "dtype int64"),
        ([3], [np.zeros((4, 4, 3))], r"reconstructions\[0\] is a int"),
        ([np.zeros((4, 4, 3))], [torch.zeros(2, 3, 4, 4, 1)], "ground_truths"),
    ],
)
def test_bad_inputs_name_the_item(recons, gts, match):
    with pytest.raises(ToolkitError, match=match):
        pixcorr(recons, gts)


def test_unreadable_and_missing_files_are_named(tmp_path, images):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ToolkitError, match=r"ground_truths\[1\] \('.*broken.png'\) cannot be read"):
        load_pairs(images[:2], [images[0], bad])
    with pytest.raises(ToolkitError, match=r"missing.png'\) does not exist"):
        load_images([tmp_path / "missing.png"], what="ground_truths")


def test_bad_sizes_are_rejected(images):
    with pytest.raises(ToolkitError, match="size must be a positive integer"):
        load_images(images, size=0)
    with pytest.raises(ToolkitError, match="at least 7"):
        ssim(images, images, resize=5)
    with pytest.raises(ToolkitError, match="different sizes"):
        load_images([images[0], np.zeros((8, 8, 3), np.uint8)], size=None)
