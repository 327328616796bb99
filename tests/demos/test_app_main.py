"""The Spaces entry point builds the whole demo bundle (data and models) before it serves."""

from __future__ import annotations

import toolkit.bundles
from demos import app as app_module


def test_main_builds_the_demo_bundle_before_serving(monkeypatch):
    calls = []
    monkeypatch.setattr(toolkit.bundles, "build_demo_bundle", lambda: calls.append("build"))
    monkeypatch.setattr(
        app_module, "build_app", lambda bundle, **kw: calls.append(f"app:{bundle}:{kw['cache_examples']}") or "APP"
    )
    monkeypatch.setattr(app_module, "launch", lambda app, **kw: calls.append(f"launch:{app}:{kw['host']}"))
    assert app_module.main(["--host", "0.0.0.0"]) == 0
    # The examples' storing is left to build_app: at start-up on a Space, off elsewhere.
    assert calls == ["build", "app:demo:None", "launch:APP:0.0.0.0"]
    calls.clear()
    assert app_module.main(["--cache-examples", "lazy"]) == 0
    assert calls == ["build", "app:demo:lazy", "launch:APP:127.0.0.1"]


def test_main_reports_a_bad_bundle_in_one_line(capsys):
    assert app_module.main(["--bundle", "nope"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("error: Unknown bundle 'nope'")
