"""The restricted unpickler: numpy 1.x/2.x pickles of protocols 2-5 load; nothing else runs."""

from __future__ import annotations

import pickle
import subprocess
import warnings

import numpy as np
import pytest

from toolkit import ToolkitError
from toolkit.data._unpickle import restricted_load, restricted_loads

from ._official import EvalCall, SystemCall, dumps_numpy1_style, touch_command, touch_expression, write_npy_object

CONTENT = {
    "preprocessed_eeg_data": np.arange(24, dtype=np.float64).reshape(2, 1, 3, 4),
    "f32": np.ones((2, 3), dtype=np.float32),
    "big_endian": np.arange(5, dtype=">f8"),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "ch_names": ["Fp1", "Oz"],
    "names_array": np.array(["Fp1", "Oz"]),
    "objects": np.array(["x", 1, None], dtype=object),
    "scalar": np.float64(0.25),
    "int_scalar": np.int64(7),
    "dtype": np.dtype("<f4"),
    "nested": {"tuple": (1, 2.5, "a"), "set": {1, 2}, "complex": 1 + 2j, "bytes": b"\x00\x01", "empty": b""},
    "bytearray": bytearray(b"ab"),
}


def _same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            # numpy itself may return big-endian data in native order, so compare dtypes without byte order.
            assert a[key].dtype.newbyteorder("=") == b[key].dtype.newbyteorder("="), key
            assert a[key].shape == b[key].shape, key
            assert np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("style", ["numpy2", "numpy1"])
def test_numpy_pickles_load(tmp_path, protocol, style):
    data = dumps_numpy1_style(CONTENT, protocol) if style == "numpy1" else pickle.dumps(CONTENT, protocol=protocol)
    assert (b"numpy.core" in data) == (style == "numpy1")
    path = tmp_path / "file.npy"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning from the numpy.core alias
        loaded = restricted_load(path)
    _same(loaded, CONTENT)
    assert isinstance(loaded["scalar"], np.float64)


def test_npy_object_container(tmp_path):
    """np.save(dict, allow_pickle=True) files (the OSF container) are unwrapped like .item()."""
    path = write_npy_object(tmp_path / "osf.npy", {"a": np.arange(3.0), "ch_names": ["Oz"]})
    loaded = restricted_load(path)
    assert loaded["ch_names"] == ["Oz"] and np.array_equal(loaded["a"], np.arange(3.0))


def test_plain_npy_array(tmp_path):
    np.save(tmp_path / "plain.npy", np.arange(4.0))
    assert np.array_equal(restricted_load(tmp_path / "plain.npy"), np.arange(4.0))


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    path.write_bytes(pickle.dumps({"preprocessed_eeg_data": SystemCall(touch_command(marker))}, protocol=4))
    # Control: the payload really creates the marker when something runs it.
    subprocess.run(touch_command(tmp_path / "control"), shell=True, check=True)
    assert (tmp_path / "control").exists()
    with pytest.raises(ToolkitError, match=r"evil\.npy.*(posix|os|nt)\.system"):
        restricted_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_builtins_eval_is_refused_and_not_run(tmp_path, protocol):
    marker = tmp_path / "pwned-eval"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([EvalCall(touch_expression(marker))], protocol=protocol))
    with pytest.raises(ToolkitError, match=r"evil\.pkl.*builtins\.eval"):
        restricted_load(path)
    assert not marker.exists()


def test_subprocess_popen_is_refused(tmp_path):
    class Popen:
        def __reduce__(self):
            return subprocess.Popen, (["true"],)

    with pytest.raises(ToolkitError, match=r"subprocess\.Popen"):
        restricted_loads(pickle.dumps(Popen(), protocol=4), label="popen.pkl")


def test_evil_inside_npy_object_container(tmp_path):
    marker = tmp_path / "pwned-npy"
    path = write_npy_object(tmp_path / "evil_osf.npy", {"x": SystemCall(touch_command(marker))})
    with pytest.raises(ToolkitError, match=r"evil_osf\.npy.*system"):
        restricted_load(path)
    assert not marker.exists()


def test_codecs_encode_only_latin1():
    """Protocol-2 bytes go through _codecs.encode(..., 'latin1'); any other codec call is refused."""
    payload = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01X\x06\x00\x00\x00base64q\x02\x86q\x03Rq\x04."
    with pytest.raises(ToolkitError, match=r"_codecs\.encode"):
        restricted_loads(payload, label="codec.pkl")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npy"
    path.write_bytes(b"")
    with pytest.raises(ToolkitError, match=r"empty\.npy.*empty"):
        restricted_load(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_truncated_file(tmp_path, protocol):
    data = pickle.dumps(CONTENT, protocol=protocol)
    path = tmp_path / "cut.npy"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ToolkitError, match=r"cut\.npy.*truncated"):
        restricted_load(path)


def test_truncated_npy_container(tmp_path):
    path = write_npy_object(tmp_path / "osf.npy", {"a": np.arange(1000.0)})
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ToolkitError, match=r"osf\.npy"):
        restricted_load(path)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "text.npy"
    path.write_text("this is not a pickle\n")
    with pytest.raises(ToolkitError, match=r"text\.npy.*not a pickle"):
        restricted_load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ToolkitError, match="does not exist"):
        restricted_load(tmp_path / "nope.npy")
