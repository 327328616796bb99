"""The "Your EEG" tab: handlers on a real N170 recording and on every kind of bad upload, the decode hook, the
Blocks, one end-to-end session through gradio_client and a headless-Chromium screenshot."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

gr = pytest.importorskip("gradio")

from demos.your_eeg_tab import (  # noqa: E402
    EXAMPLE_SETTINGS,
    ImportOptions,
    YourEEGTab,
    YourEEGViews,
    example_recordings,
    parse_event_ids,
)
from toolkit import ToolkitError  # noqa: E402

pytestmark = [
    # Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    # gr.Warning outside a server is a Python warning; the tests that care check it with pytest.warns.
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

MUSE = ["TP9", "AF7", "AF8", "TP10"]
N170_FIRST = "subject0001_session001_data_2017-09-13-15.30.01.csv"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
# The dataset's documented analysis: 1-30 Hz, -0.1-0.6 s, ±100 µV.
N170_FORM = ("native", "house=1, face=2", -0.1, 0.6, 1.0, 30.0, 100.0)


@pytest.fixture(scope="module")
def n170_csv(n170_dir: Path) -> Path:
    path = n170_dir / "recordings" / N170_FIRST
    if not path.is_file():
        pytest.skip(f"the N170 recording {N170_FIRST} is not in {n170_dir}")
    return path


@pytest.fixture(scope="module")
def tab() -> YourEEGTab:
    return YourEEGTab()


@pytest.fixture(scope="module")
def n170_outputs(tab, n170_csv):
    """The import handler's outputs for the first real N170 run (imported once for the module)."""
    return tab.import_files([str(n170_csv)], *N170_FORM, 0, "uV", "", 0.17)


def _gradio_upload(path: Path, root: Path) -> str:
    """Place a file as Gradio does: in a folder of its own under the upload cache."""
    folder = root / hashlib.sha1(str(path).encode()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / path.name)
    return str(folder / path.name)


def _small_recording(ch_names=("Fz", "Cz", "Pz", "O1", "O2"), sfreq=250.0, n_events=16):
    """Continuous data with a 10 µV response 0.2 s after alternating events 1 and 2 (every 1.25 s)."""
    import mne

    n = int((2.0 + 1.25 * n_events) * sfreq)
    t = np.arange(n) / sfreq
    rng = np.random.default_rng(0)
    data = rng.standard_normal((len(ch_names), n)) * 0.5e-6
    onsets = (1.0 + 1.25 * np.arange(n_events)) * sfreq
    for k, onset in enumerate(onsets.astype(int)):
        data += (10e-6 if k % 2 == 0 else -10e-6) * np.exp(-0.5 * ((t - t[onset] - 0.2) / 0.03) ** 2)
    raw = mne.io.RawArray(data, mne.create_info(list(ch_names), sfreq, "eeg"), verbose="error")
    labels = ["Stimulus/S  1" if k % 2 == 0 else "Stimulus/S  2" for k in range(n_events)]
    raw.set_annotations(mne.Annotations(onsets / sfreq, 0.0, labels))
    return raw


# -- inputs -------------------------------------------------------------------------------------------------------
def test_parse_event_ids():
    assert parse_event_ids("house=1, face=2") == {"house": 1, "face": 2}
    assert parse_event_ids(" house : 1 ;face=2\n") == {"house": 1, "face": 2}
    assert parse_event_ids("1, 2") == {"1": 1, "2": 2}
    assert parse_event_ids("") is None and parse_event_ids(None) is None and parse_event_ids("  ") is None
    with pytest.raises(ToolkitError, match="could not read 'house=one'"):
        parse_event_ids("house=one")
    with pytest.raises(ToolkitError, match="no condition name"):
        parse_event_ids("=3")
    with pytest.raises(ToolkitError, match="'face' is given twice"):
        parse_event_ids("face=1, face=2")


@pytest.mark.parametrize(
    ("widgets", "match"),
    [
        (("nope", "", None, None, 1, 30, 0), "Unknown target montage 'nope'"),
        (("native", "", 0.5, 0.2, 1, 30, 0), r"window start \(0.5 s\) must lie before its end \(0.2 s\)"),
        (("native", "", -1, 20, 1, 30, 0), "longer than 10 s"),
        (("native", "", "soon", 0.5, 1, 30, 0), "The window start must be a number; got 'soon'"),
        (("native", "", float("nan"), 0.5, 1, 30, 0), "The window start must be a finite number"),
        (("native", "", None, None, -1, 30, 0), "The high-pass edge must be positive"),
        (("native", "", None, None, 1, 30, 100e-6), None),  # tiny but valid (checked at import)
        (("native", "", None, None, 1, 30, 50_000), "50000 µV is implausibly large"),
    ],
)
def test_option_problems_name_the_widget(widgets, match):
    if match is None:
        assert ImportOptions.from_widgets(*widgets).reject == pytest.approx(100e-12)
        return
    with pytest.raises(ToolkitError, match=match):
        ImportOptions.from_widgets(*widgets)


def test_options_convert_units_and_empty_values():
    opts = ImportOptions.from_widgets("things-eeg-63", "face=2", None, "", 0, 40, 150, 0, "mV", "  ")
    assert opts.tmin is None and opts.tmax is None and opts.l_freq is None and opts.h_freq == 40.0
    assert opts.reject == pytest.approx(150e-6) and opts.sfreq is None and opts.unit == "mV"
    assert opts.marker_column is None and opts.event_id == {"face": 2}


def test_target_defaults_fill_the_window(tab):
    assert tab.target_defaults("things-eeg-63") == (0.0, 0.996)
    assert tab.target_defaults("things-eeg-17") == (-0.2, 0.79)
    with pytest.raises(gr.Error, match="Unknown target montage"):
        tab.target_defaults("eeg-9000")


# -- the real N170 recording --------------------------------------------------------------------------------------
def test_n170_import_report(n170_outputs, n170_csv):
    trials, summary, channels, events = n170_outputs[:4]
    markers = pd.read_csv(n170_csv, usecols=["Marker0"])["Marker0"].value_counts()
    assert (markers[1], markers[2]) == (108, 89)  # counted straight from the file
    assert trials.ch_names == MUSE and trials.sfreq == 256.0 and trials.concept_names() == ["house", "face"]
    assert trials.n_repetitions == 86 and trials.dataset == "imported"
    assert "2 conditions × 86 repetitions × 4 channels × 181 samples at 256 Hz" in summary
    assert "band-pass 1–30 Hz" in summary and "rejection above 100 µV" in summary
    assert "1 ×108, 2 ×89" in summary and "left out: house 22" in summary
    assert channels.columns.tolist() == ["status", "count", "channels"]
    assert channels.values.tolist()[0] == ["copied", 4, "TP9, AF7, AF8, TP10"]
    assert channels["count"].tolist()[1:] == [0, 0, 0]
    rows = {r[0]: r[1:] for r in events.values.tolist()}
    assert rows["house"] == [1, 108, 108, 86, 22] and rows["face"][:2] == [2, 89]
    assert rows["face"][2] == 86 and rows["face"][3:] == [86, 0]  # 3 face epochs over 100 µV


def test_n170_views_show_the_imported_numbers(n170_outputs):
    trials, _, _, _, erp, difference, topomap, latency, channels = n170_outputs
    # the ERP: per condition and channel one mean trace and one ± SEM band, equal to the data's
    means = [t for t in erp.data if t.mode == "lines"]
    assert [(t.name, t.legendgroup) for t in means[:4]] == [("house", "house")] * 4
    assert len(means) == 2 * 4 and len(erp.data) == 2 * 2 * 4
    face_tp10 = np.asarray(means[7].y, dtype=np.float64)
    expected = trials.data[1, :, 3].mean(axis=0) * 1e6
    np.testing.assert_allclose(face_tp10, expected, rtol=1e-4, atol=1e-4)
    band = np.asarray(erp.data[14].y, dtype=np.float64)  # the face TP10 band: upper, then lower reversed
    sem = trials.data[1, :, 3].std(axis=0, ddof=1) / np.sqrt(86) * 1e6
    np.testing.assert_allclose(band[: trials.n_times] - expected, sem, rtol=1e-3, atol=1e-4)
    # the difference of two conditions, the topomaps (house, face, difference) and the controls
    assert difference["visible"] is True and "face − house" in difference["value"].layout.title.text
    assert topomap.dtype == np.uint8 and topomap.ndim == 3 and topomap.shape[1] > 2.5 * topomap.shape[0]
    assert latency["minimum"] == pytest.approx(-0.1, abs=0.004) and latency["maximum"] == pytest.approx(0.6, abs=0.004)
    assert latency["value"] == pytest.approx(0.17, abs=0.002) and latency["step"] == pytest.approx(1 / 256)
    assert channels["choices"] == MUSE and channels["value"] == MUSE


def test_show_redraws_and_refuses_bad_views(tab, n170_outputs):
    trials = n170_outputs[0]
    erp, difference, topomap = tab.show(trials, ["TP9"], 0.2)
    assert len([t for t in erp.data if t.mode == "lines"]) == 2 and difference["visible"]
    assert not np.array_equal(topomap, n170_outputs[6])  # another latency, another map
    with pytest.raises(gr.Error, match=r"latency 0.9 s is outside the epoch \(-0.102 to 0.602 s\)"):
        tab.show(trials, ["TP9"], 0.9)
    with pytest.raises(gr.Error, match=r"Channels \['Oz'\] are not among the imported channels"):
        tab.show(trials, ["TP9", "Oz"], 0.2)
    with pytest.raises(gr.Error, match="Nothing imported yet"):
        tab.show(None, [], 0.2)


def test_things63_target_zero_fills_and_warns(tab, n170_csv):
    with pytest.warns(UserWarning, match="59 of 63 target channels are zero-filled"):
        out = tab.import_files([str(n170_csv)], "things-eeg-63", "house=1, face=2", None, None, 1, 30, 100, 0,
                               "uV", "", 0.17)
    trials, summary, channels = out[:3]
    assert trials.data.shape[2:] == (63, 250) and trials.sfreq == 250.0
    counts = dict(zip(channels["status"], channels["count"]))
    assert counts == {"copied": 4, "interpolated": 0, "zero-filled (no signal)": 59, "dropped (not in target)": 0}
    assert "resampled from 256 to 250 Hz" in summary and "⚠ 59 of 63" in summary
    assert sorted(out[8]["choices"]) == sorted(MUSE)  # only channels with signal can be plotted


def test_example_button_loads_the_bundled_recording(tab, n170_csv):
    bundled = REPO / "demos" / "examples" / "eegexpy-visual-n170" / N170_FIRST
    assert example_recordings()[0] == bundled and tab.example == bundled
    assert hashlib.sha256(bundled.read_bytes()).digest() == hashlib.sha256(n170_csv.read_bytes()).digest()
    licence = (bundled.parent / "LICENSE-eeg-expy-BSD-3-Clause.txt").read_text()
    assert "Copyright (c) 2017, alexandre barachant" in licence
    out = tab.load_example(0.2)
    assert out[0] == [str(bundled)] and out[1:8] == tuple(EXAMPLE_SETTINGS.values())
    assert "2 conditions × 86 repetitions" in out[9]
    assert YourEEGTab(example=False).example is None


# -- bad uploads: one clear message each --------------------------------------------------------------------------
def _import(tab, files, target="native", event_ids="", **kw):
    form = {"tmin": None, "tmax": None, "l_freq": 1, "h_freq": 30, "reject_uv": 0} | kw
    return tab.import_files(files, target, event_ids, form["tmin"], form["tmax"], form["l_freq"], form["h_freq"],
                            form["reject_uv"], 0, "uV", "", 0.17)


def _no_upload_folder(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "your-eeg-" not in message and "/tmp" not in message  # names the file, not the server's folder
    return message


def test_wrong_channel_set(tab, n170_csv):
    with pytest.raises(gr.Error, match=r"None of the channels of 'subject0001_session001_.*\.csv' match") as err:
        _import(tab, [str(n170_csv)], target="things-eeg-17")
    assert "use the 'native' target" in _no_upload_folder(err)


def test_wrong_and_disguised_formats(tab, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not EEG")
    with pytest.raises(gr.Error, match=r"'notes\.txt' is not a recording this app reads; upload \.csv"):
        _import(tab, [str(notes)])
    fake = tmp_path / "rec.edf"
    fake.write_text("this is text, not EDF\n" * 20)
    with pytest.raises(gr.Error, match=r"Could not read 'rec\.edf' as EDF") as err:
        _import(tab, [str(fake)])
    _no_upload_folder(err)


def test_empty_missing_and_duplicate_uploads(tab, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.touch()
    with pytest.raises(gr.Error, match=r"'empty.csv' is empty \(0 bytes\)"):
        _import(tab, [str(empty)])
    for nothing in (None, [], [""]):
        with pytest.raises(gr.Error, match="No file uploaded"):
            _import(tab, nothing)
    with pytest.raises(gr.Error, match=r"'gone\.csv' is no longer on the server"):
        _import(tab, [str(tmp_path / "gone.csv")])
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "run.csv").write_text("timestamps,Cz,Marker0\n0,1,0\n0.004,2,1\n")
    with pytest.raises(gr.Error, match=r"Two uploaded files are named 'run\.csv'"):
        _import(tab, [str(a / "run.csv"), str(b / "run.csv")])
    with pytest.raises(gr.Error, match="import at most 12 at once"):
        _import(tab, [str(a / "run.csv")] * 13)


def test_huge_file_is_refused_with_the_limit(n170_csv):
    small = YourEEGTab(max_file_mb=0.5, example=False)
    with pytest.raises(gr.Error, match=r"is 1.5 MB; this app accepts files up to 0.5 MB .*python -m toolkit data"):
        _import(small, [str(n170_csv)])
    with pytest.raises(ToolkitError, match="max_file_mb must be positive"):
        YourEEGTab(max_file_mb=0)


def test_nan_filled_data(tab, tmp_path):
    rows = ["timestamps,TP9,AF7,Marker0"] + [f"{i / 256:.5f},{'nan' if i > 50 else i},{i},0" for i in range(300)]
    path = tmp_path / "nan.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(gr.Error, match=r"CSV 'nan.csv' has a missing, NaN or infinite value in column 'TP9'") as err:
        _import(tab, [str(path)])
    _no_upload_folder(err)


def test_import_problems_name_the_widgets(tab, n170_csv):
    with pytest.raises(gr.Error, match=r"Event code\(s\) \{'cat': 7\} not found .* Fix the event ids\."):
        _import(tab, [str(n170_csv)], event_ids="cat=7")
    with pytest.raises(gr.Error, match=r"Every epoch of .* was rejected .*; loosen the rejection threshold"):
        _import(tab, [str(n170_csv)], event_ids="house=1", reject_uv=0.01)
    with pytest.raises(gr.Error, match="must lie between 0 and the Nyquist frequency"):
        _import(tab, [str(n170_csv)], h_freq=200)


def test_unforeseen_reader_failure_is_one_message(tab, n170_csv, monkeypatch):
    import toolkit.data

    def broken(*args, **kwargs):
        raise RuntimeError("reader exploded")

    monkeypatch.setattr(toolkit.data, "import_recordings", broken, raising=False)
    with pytest.raises(gr.Error, match=r"The import failed unexpectedly \(RuntimeError: reader exploded\)"):
        _import(tab, [str(n170_csv)])


def test_brainvision_needs_its_companions(tab, tmp_path):
    pytest.importorskip("pybv")  # BrainVision writer (test extra)
    import mne

    src = tmp_path / "src"
    src.mkdir()
    mne.export.export_raw(src / "rec.vhdr", _small_recording(), verbose="error")
    uploads = [_gradio_upload(src / f"rec.{ext}", tmp_path / "gradio") for ext in ("vhdr", "eeg", "vmrk")]
    out = _import(tab, uploads, event_ids="up=1, down=2", l_freq=0)  # each file in its own folder, as uploaded
    trials = out[0]
    assert trials.ch_names == ["Fz", "Cz", "Pz", "O1", "O2"] and trials.n_repetitions == 8
    assert "`rec.vhdr` — BRAINVISION, 250 Hz" in out[1]
    cz = trials.ch_names.index("Cz")
    peak = trials.times[np.argmax(trials.data[0, :, cz].mean(axis=0))]
    assert peak == pytest.approx(0.2, abs=0.01)
    with pytest.raises(gr.Error, match=r"'rec.vhdr' needs 'rec.eeg' and 'rec.vmrk' uploaded with it"):
        _import(tab, uploads[:1])
    with pytest.raises(gr.Error, match=r"needs 'rec.vmrk' uploaded with it"):
        _import(tab, uploads[:2])
    with pytest.raises(gr.Error, match=r"Only companion files were uploaded \(rec.eeg, rec.vmrk\); add the .vhdr"):
        _import(tab, uploads[1:])


# -- the decode hook ----------------------------------------------------------------------------------------------
def test_decode_is_the_one_entry_point(tab):
    from toolkit.data import TrialSet

    rng = np.random.default_rng(3)
    names = ["Fz", "Cz", "Pz", "Oz", "EEG 009"]
    data = rng.standard_normal((3, 6, len(names), 50)).astype(np.float32) * 1e-6
    trials = TrialSet(
        data=data, ch_names=names, sfreq=100.0, times=np.arange(50) / 100.0 - 0.1, subject="you", split="import",
        dataset="imported", extra={"channel_mask": np.array([True, True, True, False, True])},
    )
    views = tab.decode(trials, latency=0.2)
    assert isinstance(views, YourEEGViews) and views.extra == {}
    assert views.channels == ["Fz", "Cz", "Pz", "EEG 009"]  # Oz is zero-filled: left out
    assert views.difference is None  # three conditions: no single difference
    assert views.latency_s == pytest.approx(0.2) and views.topomap.dtype == np.uint8
    assert any("without a standard position: EEG 009" in n for n in views.notes)
    assert len([t for t in views.erp.data if t.mode == "lines"]) == 3 * 4
    with pytest.raises(ToolkitError, match=r"latency 2\.0 s is outside the epoch"):
        tab.decode(trials, latency=2.0)
    two = TrialSet(data=data[:2, :, :2], ch_names=names[:2], sfreq=100.0, times=trials.times, subject="you",
                   split="import", dataset="imported")
    views = tab.decode(two, latency=0.0)
    assert views.difference is not None and views.topomap.shape[0] < 150  # a one-line "no topomap" message


def test_decode_caps_the_erp_plot_and_starts_posterior(tab):
    from toolkit.data import TrialSet
    from toolkit.data.channels import THINGS_EEG_17

    data = np.random.default_rng(4).standard_normal((2, 3, 17, 20)).astype(np.float32) * 1e-6
    trials = TrialSet(data=data, ch_names=list(THINGS_EEG_17), sfreq=100.0, times=np.arange(20) / 100.0,
                      subject="you", split="import", dataset="imported")
    views = tab.decode(trials, latency=0.1)
    assert views.channels == ["P7", "P8", "PO7", "PO8", "O1", "O2"]  # posterior sites first
    views = tab.decode(trials, latency=0.1, channels=THINGS_EEG_17)
    assert len(views.channels) == 12 and any("first 12 of the 17 channels" in n for n in views.notes)
    assert len([t for t in views.erp.data if t.mode == "lines"]) == 2 * 12


# -- the app ------------------------------------------------------------------------------------------------------
def test_build_app_has_the_tab_and_its_endpoints(small_store):
    from demos.app import build_app

    store, root = small_store
    app = build_app("demo", store=store, images_root=root)
    api_names = {dep.get("api_name") for dep in app.config["dependencies"]}
    assert {"your_eeg_import", "your_eeg_view", "your_eeg_example", "your_eeg_target"} <= api_names
    labels = [c["props"].get("label") for c in app.config["components"]]
    assert "Your EEG" in labels and "Target montage" in labels
    assert app.toolkit_max_file_size == 200_000_000
    assert any(p.name == "eegexpy-visual-n170" for p in app.toolkit_allowed_paths)
    with gr.Blocks() as bare:
        YourEEGTab(example=False).build()
    button = next(c for c in bare.config["components"] if c["props"].get("value") == "Load the example (real N170 "
                  "recording)")
    assert button["props"]["visible"] is False


def test_import_through_gradio_client(served_app, n170_csv):
    """One session on a live server: import the real CSV, redraw, then bad input that leaves the server serving."""
    import json
    import urllib.request

    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    out = client.predict(
        [handle_file(str(n170_csv))], *N170_FORM, 0, "uV", "", 0.17, api_name="/your_eeg_import"
    )
    summary, channels, events, erp, difference, topomap, latency, choices = out
    assert "2 conditions × 86 repetitions × 4 channels" in summary and choices["value"] == MUSE
    assert channels["data"][0] == ["copied", 4, "TP9, AF7, AF8, TP10"]
    assert [r[:3] for r in events["data"]] == [["house", 1, 108], ["face", 2, 89]]
    assert erp["type"] == "plotly" and difference["visible"] is True
    assert Path(topomap).is_file() and latency["maximum"] == pytest.approx(0.602, abs=0.001)
    # the session keeps the imported trials: another latency and channel need no new upload
    erp2, _, topomap2 = client.predict(["TP10"], 0.25, api_name="/your_eeg_view")
    assert json.loads(erp2["plot"])["layout"]["annotations"][0]["text"] == "TP10"
    assert Path(topomap2).read_bytes() != Path(topomap).read_bytes()
    # bad input: one message each, from our handler or Gradio's own checks
    with pytest.raises(Exception, match="None of the channels of 'subject0001"):
        client.predict([handle_file(str(n170_csv))], "things-eeg-17", "", None, None, 1, 30, 0, 0, "uV", "", 0.2,
                       api_name="/your_eeg_import")
    with pytest.raises(Exception, match=r"greater than maximum value 0\.6"):
        client.predict(["TP10"], 5.0, api_name="/your_eeg_view")
    with pytest.raises(Exception, match="Nothing imported yet"):
        Client(served_app, verbose=False).predict(["TP9"], 0.2, api_name="/your_eeg_view")
    # ... and the server still serves, with the upload limit announced to the page
    assert client.predict("things-eeg-17", api_name="/your_eeg_target") == (-0.2, 0.79)
    config = json.loads(urllib.request.urlopen(served_app + "config").read())
    assert config["max_file_size"] == 200_000_000


@pytest.mark.browser
def test_tab_renders_in_headless_chromium(served_app, chromium):
    """Open the tab, load the example, wait for the ERP, the tables and the topomaps; save a screenshot."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    external = []
    page.on("request", lambda req: external.append(req.url) if "127.0.0.1" not in req.url else None)
    page.goto(served_app, wait_until="load")  # not "networkidle": gr.State keeps a heartbeat open
    page.get_by_role("tab", name="Your EEG").click()
    page.get_by_role("button", name="Load the example (real N170 recording)").click()
    page.get_by_text("2 conditions × 86 repetitions").first.wait_for(timeout=30_000)
    page.wait_for_selector("#your-eeg-topomap img", timeout=20_000)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length >= 16", timeout=20_000
    )
    assert page.get_by_text("TP9, AF7, AF8, TP10").count() >= 1
    page.wait_for_timeout(500)  # let plotly finish its transitions before the picture
    page.screenshot(path=str(ARTIFACTS / "your_eeg_tab.png"), full_page=True)
    assert not [u for u in external if not u.startswith(("data:", "blob:"))], external
