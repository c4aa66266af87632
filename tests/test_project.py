"""The project's own invariants: notebooks and library in sync, notebooks clean, CLI errors, network guard."""
import ast, json, shutil, socket, subprocess, sys
from pathlib import Path
import pytest
from medrepro.core import PAPER_IDS, PROFILES
from medrepro.registry import paper_profiles
from conftest import copy_worktree as _copy_tree   # the git-visible working tree, copied

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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


def test_console_script_rejects_bad_input():
    """The installed `medrepro` command answers a bad argument with exit code 2 and one error line naming it, without a
    traceback (each usage error is checked in-process by test_cli.py::test_usage_error_exits_2; this is the entry point)."""
    r = subprocess.run([BIN/'medrepro', 'run', 'nosuchpaper'], capture_output=True, text=True)
    assert r.returncode == 2 and "paper='nosuchpaper'" in r.stderr, (r.returncode, r.stderr)
    assert 'Traceback' not in r.stderr


def test_no_network_in_tests():
    "The socket guard blocks connections beyond loopback, here and in child processes."
    with pytest.raises(OSError, match='network access blocked'):
        socket.create_connection(('93.184.216.34', 80), timeout=1)
    r = subprocess.run([sys.executable, '-c', "import socket; socket.create_connection(('93.184.216.34', 80), timeout=1)"],
                       capture_output=True, text=True)
    assert 'network access blocked' in r.stderr


def test_ci_calls_readme_test_commands():
    "`.ci/run` runs `make test-all`; the README gives `make test` and `make test-all`, and the Makefile has both targets."
    import re
    assert re.search(r'^make test-all$', (ROOT/'.ci'/'run').read_text(), re.M)
    readme, make = (ROOT/'README.md').read_text(), (ROOT/'Makefile').read_text()
    assert re.search(r'^make test +#', readme, re.M) and re.search(r'^make test-all +#', readme, re.M)
    assert re.search(r'^test:', make, re.M) and re.search(r'^test-all:', make, re.M) and '-m "not slow"' in make


# a run's own parameters, which a paper notebook may declare beside the knobs of its registry profile table
RUN_PARAMS = {'paper', 'profile', 'device', 'seeds', 'data_root', 'run_dir', 'synthetic', 'eval_from', 'on_bad_image',
              'weights_file', 'image_weights', 'text_model'}


def parameters(nb:Path)->dict:
    "Name -> default of the papermill `parameters` cell of `nb`, read with `ast` (one literal assignment a line)."
    cell = next(c for c in json.loads(nb.read_text())['cells'] if 'parameters' in c['metadata'].get('tags', []))
    return {st.targets[0].id: ast.literal_eval(st.value) for st in ast.parse(''.join(cell['source'])).body}


@pytest.mark.parametrize('paper', PAPER_IDS)
def test_parameters_cell_matches_the_registry(paper):
    """The parameters cell declares every knob of the paper's registry profile table, each with default None (the
    profile's value), and besides them only run parameters; `paper` names the paper and `profile` is a profile."""
    declared, knobs = parameters(ROOT/'nbs'/'papers'/f'{paper}.ipynb'), set(paper_profiles(paper)['quick'])
    assert not knobs - set(declared), f'{paper}: knobs the parameters cell lacks: {sorted(knobs - set(declared))}'
    assert not set(declared) - knobs - RUN_PARAMS, f'{paper}: neither knob nor run parameter: {sorted(set(declared) - knobs - RUN_PARAMS)}'
    assert {k: v for k, v in declared.items() if k in knobs and v is not None} == {}, f'{paper}: a knob with a default of its own'
    assert declared['paper'] == paper and declared['profile'] in PROFILES, (declared['paper'], declared['profile'])


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
