"""Each package has an explicit public face: every name in ``__all__`` resolves, and importing the
package itself stays cheap (no torch) so CLIs can parse ``--help`` before loading anything heavy."""
import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["davis_c", "harness", "models", "leaderboard"])
def test_all_names_resolve(package):
    mod = importlib.import_module(package)
    assert mod.__all__, f"{package} has no public names"
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"


def test_harness_api_names():
    import harness

    assert set(harness.__all__) >= {"evaluate_video", "j_measure", "f_measure", "evaluate_results", "RunRequest",
                                    "plan_run", "execute", "load_method", "score_predictions"}
    assert harness.j_measure.__module__ == "harness.metrics"


@pytest.mark.parametrize("package", ["davis_c", "harness", "leaderboard"])
def test_package_import_does_not_import_torch(package):
    code = f"import sys, {package}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
