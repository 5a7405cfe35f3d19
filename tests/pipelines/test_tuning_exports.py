"""The hpo public surface: keel and keel.hpo re-export it lazily; importing stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import keel
import keel.hpo as kh


def test_keel_hpo_all_is_sorted_and_every_name_resolves() -> None:
    assert kh.__all__ == sorted(kh.__all__)
    assert set(kh.__all__) == set(kh._EXPORTS)
    for name in kh.__all__:
        assert getattr(kh, name) is not None, name


def test_keel_re_exports_the_search_sdk() -> None:
    assert keel.tune is kh.tune
    assert keel.create_study is kh.create_study
    assert keel.load_study is kh.load_study
    assert keel.tuning_step is kh.tuning_step
    assert keel.TuneResult is kh.TuneResult


def test_importing_keel_hpo_does_not_import_optuna() -> None:
    code = "import sys, json, keel, keel.hpo\nprint(json.dumps('optuna' in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False
