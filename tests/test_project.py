"""The project's own invariants: notebooks and library in sync, notebooks clean, CLI errors, network guard."""
import json, shutil, socket, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy_tree(dst):
    "The git-visible working tree, copied to `dst`."
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for f in filter(None, files):
        if (ROOT/f).is_file(): (dst/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, dst/f)
    return dst


def test_library_matches_notebooks(tmp_path):
    "nbdev_export of nbs/ reproduces medrepro/ exactly (the library is never edited by hand)."
    work = _copy_tree(tmp_path/'w')
    subprocess.run([BIN/'nbdev_export'], cwd=work, check=True, capture_output=True)
    diff = subprocess.run(['diff', '-rq', '-x', '__pycache__', ROOT/'medrepro', work/'medrepro'], capture_output=True, text=True)
    assert diff.returncode == 0, f'medrepro/ is out of sync with nbs/ (run nbdev_export):\n{diff.stdout}'


def test_notebooks_are_clean(tmp_path):
    "nbdev_clean leaves every notebook unchanged."
    work = _copy_tree(tmp_path/'w')
    subprocess.run([BIN/'nbdev_clean'], cwd=work, check=True, capture_output=True)
    for nb in (ROOT/'nbs').rglob('*.ipynb'):
        if '.ipynb_checkpoints' in nb.parts: continue
        rel = nb.relative_to(ROOT)
        assert json.loads((work/rel).read_text()) == json.loads(nb.read_text()), f'{rel} is not clean (run nbdev_clean)'


@pytest.mark.parametrize('args, message', [
    (['run', 'nosuchpaper'], "paper='nosuchpaper'"),
    (['run', 'iconvnext', '--profile', 'huge'], "profile='huge'"),
    (['run', 'iconvnext', '--device', 'tpu'], "device='tpu'"),
    (['run', 'iconvnext', '-p', 'epochs'], "'epochs' is not KEY=VALUE"),
])
def test_cli_rejects_bad_input(args, message):
    "Each bad argument gets one clear error line naming it, and exit code 2."
    r = subprocess.run([BIN/'medrepro', *args], capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr)
    assert 'Traceback' not in r.stderr


def test_no_network_in_tests():
    "The socket guard blocks connections beyond loopback, here and in child processes."
    with pytest.raises(OSError, match='network access blocked'):
        socket.create_connection(('93.184.216.34', 80), timeout=1)
    r = subprocess.run([sys.executable, '-c', "import socket; socket.create_connection(('93.184.216.34', 80), timeout=1)"],
                       capture_output=True, text=True)
    assert 'network access blocked' in r.stderr


def test_ci_calls_readme_test_command():
    "`.ci/run` runs `make test`, the README's test command."
    assert 'make test' in (ROOT/'.ci'/'run').read_text() and 'make test' in (ROOT/'README.md').read_text()


CARD_SECTIONS = ['provenance', 'license', 'de-identification', 'unit of independence', 'class balance', 'label noise',
                 'shortcut', 'leakage', 'subgroup', 'not for clinical use']


def test_every_dataset_has_a_data_card():
    "Each registry entry points to a data card with the Datasheets-for-Datasets sections."
    from medrepro.registry import DATASETS
    for name, e in DATASETS.items():
        card = ROOT/e['card']
        assert card.exists(), f'{name}: data card {e["card"]} is missing'
        text = card.read_text().lower()
        missing = [s for s in CARD_SECTIONS if s not in text]
        assert not missing, f'{e["card"]} lacks sections {missing}'
