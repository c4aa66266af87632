"""Shared fixtures: no network, real data samples when present, a temporary runs folder."""
import os, signal
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
# Every process started by the tests (papermill kernels included) loads tests/netguard/sitecustomize.py.
os.environ['MEDREPRO_NO_NETWORK'] = '1'
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT/'tests'/'netguard'), os.environ.get('PYTHONPATH')]))
# The Ctrl-C tests send SIGINT to the CLI as a terminal would. A test runner started in the background (`nohup ... &`)
# inherits SIGINT ignored and passes that on to every process it starts; give them a terminal's handling instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN: signal.signal(signal.SIGINT, signal.default_int_handler)


def _shared_data():
    "../shared/data beside the clone (or $MEDREPRO_SHARED_DATA), if it exists."
    p = Path(os.environ.get('MEDREPRO_SHARED_DATA') or ROOT.parent/'shared'/'data')
    return p if p.is_dir() else None


@pytest.fixture
def shared_data():
    "The real data samples, or skip."
    p = _shared_data()
    if p is None: pytest.skip('no ../shared/data samples here')
    return p


@pytest.fixture
def shared_data_or_none():
    "The real data samples, or None (for tests that run on either, saying which)."
    return _shared_data()


@pytest.fixture
def tmp_runs(tmp_path):
    "A temporary runs folder."
    return tmp_path/'runs'


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    "Synthetic data and weights are cached per test session, never in the user's home."
    monkeypatch.setenv('MEDREPRO_CACHE', str(tmp_path_factory.getbasetemp()/'cache'))


import importlib.util as _u  # the same guard inside the pytest process
_spec = _u.spec_from_file_location('_netguard', ROOT/'tests'/'netguard'/'sitecustomize.py'); _spec.loader.exec_module(_u.module_from_spec(_spec))
