"""The command line as a user meets it: exit codes (0 done, 1 failed run, 2 usage error, 130 interrupted), parameters
checked before anything starts, progress on stderr, `list`, `params`, `--version`, help text, and the Java check.
Runs use tiny paper-like notebooks (a kernel start each), never a paper notebook."""
import json, os, signal, subprocess, sys, threading, time
from pathlib import Path
import nbformat
import pytest
from medrepro import cli, core
from medrepro.core import MedreproError, ParamError
from medrepro.registry import DATASETS, paper_profiles

ROOT = Path(__file__).resolve().parents[1]
# `medrepro ARGS` in a fresh process; argv[1], when not empty, replaces every paper's notebook
RUNNER = ("import sys; from pathlib import Path; from medrepro import cli\n"
          "if sys.argv[1]: cli.paper_notebook = lambda paper: Path(sys.argv[1])\n"
          "sys.exit(cli.main(sys.argv[2:]))")


def medrepro(*args, nb='', timeout=180):
    "Run the command line in a subprocess; the CompletedProcess (text stdout and stderr)."
    return subprocess.run([sys.executable, '-c', RUNNER, str(nb), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def tiny_notebook(path, body="print('hello')"):
    "A paper-like notebook: a parameters cell, a PROFILES cell (epochs 1/2/3), then `body`."
    nb = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name='python3', language='python', display_name='Python 3'),
                                                language_info=dict(name='python')))
    nb.cells = [nbformat.v4.new_code_cell("paper = 'iconvnext'\nprofile = 'smoke'  # smoke | quick | paper\nseeds = [0]\n"
                                          "run_dir = None\nlr = 0.001  # learning rate\nepochs = None  # passes over the data",
                                          metadata=dict(tags=['parameters'])),
                nbformat.v4.new_code_cell("PROFILES = {'smoke': dict(epochs=1), 'quick': dict(epochs=2), 'paper': dict(epochs=3)}"),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path)); return Path(path)


def one_line_error(stderr, *names):
    "stderr holds exactly one 'medrepro: error:' line, naming each of `names`."
    errs = [l for l in stderr.splitlines() if 'error:' in l]
    assert len(errs) == 1, stderr
    for n in names: assert n in errs[0], f'{n!r} not in {errs[0]!r}'
    return errs[0]


# ---------------------------------------------------------------- usage errors: exit 2, nothing made

@pytest.mark.parametrize('args, names', [
    (['run', 'gpt'], ["paper='gpt' is not one of", 'iconvnext']),
    (['run', 'iconvnext', '--profile', 'huge'], ["profile='huge' is not one of smoke, quick, decide, paper"]),
    (['run', 'iconvnext', '--device', 'tpu'], ["device='tpu'"]),
    (['run', 'iconvnext', '--synthetic', 'maybe'], ["synthetic='maybe'"]),
    (['batch', '--profiles', 'fast'], ["profiles='fast'"]),
    (['nosuch'], ["command='nosuch'", 'params']),
    (['run', 'iconvnext', '-p', 'epochs'], ["'epochs' is not KEY=VALUE"]),
    (['run', 'iconvnext', '-p', 'nosuch=1'], ["'nosuch'", 'iconvnext.ipynb']),
    (['report', '--runs-dir', 'no/such/folder'], ['no/such/folder']),
])
def test_usage_error_exits_2(tmp_path, args, names, capsys):
    "Usage errors answer 2 with one line naming what was wrong, and make no folder."
    assert cli.main([*args, '--runs-dir', str(tmp_path/'runs')] if args[0] in ('run', 'batch') else args) == 2
    one_line_error(capsys.readouterr().err, *names)
    assert not (tmp_path/'runs').exists()


@pytest.mark.parametrize('paper', core.PAPER_IDS)
def test_bad_param_type_checked_against_profiles(paper):
    "-p epochs=two is caught for every paper: `epochs` defaults to None, so its profile value (an int) is the reference."
    with pytest.raises(ParamError) as e: cli.check_params(cli.paper_notebook(paper), {'epochs': 'two'}, 'quick')
    assert '\n' not in str(e.value) and "epochs='two'" in str(e.value) and 'int' in str(e.value)
    assert cli.check_params(cli.paper_notebook(paper), {'epochs': 2}, 'quick') == {'epochs': 2}


def test_bad_param_type_no_kernel_no_folder(tmp_path):
    "`medrepro run ... -p epochs=two` exits 2 at once, before a kernel starts or a run folder exists."
    r = medrepro('run', 'iconvnext', '-p', 'epochs=two', '--runs-dir', tmp_path/'runs')
    assert r.returncode == 2 and r.stdout == ''
    one_line_error(r.stderr, "epochs='two'", 'int')
    assert not (tmp_path/'runs').exists()   # checked before any run folder or kernel (no timing: the import alone is slow under load)


def test_batch_checks_params_before_the_first_run(tmp_path, capsys):
    assert cli.main(['batch', '--papers', 'iconvnext', 'neuron-ensemble', '-p', 'epochs=2.5', '--runs-dir', str(tmp_path/'runs')]) == 2
    one_line_error(capsys.readouterr().err, 'epochs=2.5')
    assert not (tmp_path/'runs').exists()


# ---------------------------------------------------------------- runs: progress, failure, interruption

def test_progress_on_stderr_and_quiet(tmp_path):
    "A run prints papermill's cell counter and the kernel's lines (the engine's tqdm bar) on stderr; stdout is the run folder."
    nb = tiny_notebook(tmp_path/'train.ipynb', "import torch\nfrom medrepro import core, engine\nprint('training starts')\n"
                       "x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))\n"
                       "dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)\n"
                       "cfg = core.profile_config(PROFILES, profile, epochs=epochs)   # quick: 2 epochs\n"
                       "engine.fit(torch.nn.Linear(4, 2), dl, dl, engine.TrainConfig(epochs=cfg['epochs'], progress=True))\n"
                       "print('trained')")
    r = medrepro('run', 'iconvnext', '--device', 'cpu', '--profile', 'quick', '--runs-dir', tmp_path/'runs', '--run-id', 'a', nb=nb)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path/'runs'/'iconvnext'/'a')
    lines = [l for l in r.stderr.splitlines() if l.startswith('[iconvnext] ')]
    assert any('cells:' in l and '0/4' in l for l in lines) and any('cells: 100%' in l and '4/4' in l for l in lines)
    assert any('epoch 1/2 train' in l for l in lines), r.stderr
    assert any('epoch 2/2 train' in l and 'loss=' in l for l in lines), r.stderr
    order = [next(i for i, l in enumerate(lines) if s in l) for s in ('training starts', 'epoch 1/2', 'epoch 2/2', 'trained')]
    assert order == sorted(order), lines
    assert json.loads((tmp_path/'runs'/'iconvnext'/'a'/'status.json').read_text())['status'] == 'done'
    q = medrepro('run', 'iconvnext', '--device', 'cpu', '--runs-dir', tmp_path/'runs', '--run-id', 'b', '--quiet', nb=nb)
    assert q.returncode == 0 and '[iconvnext]' not in q.stderr and 'epoch' not in q.stderr


def test_failed_run_exits_1(tmp_path):
    "A notebook that raises: exit 1, one line naming the cell and the error, status.json 'failed', the folder kept."
    nb = tiny_notebook(tmp_path/'bad.ipynb', "raise ValueError('bad slice')")
    r = medrepro('run', 'iconvnext', '--device', 'cpu', '--runs-dir', tmp_path/'runs', '--run-id', 'x', '-q', nb=nb)
    assert r.returncode == 1
    one_line_error(r.stderr, 'run failed in cell', 'ValueError: bad slice', str(tmp_path/'runs'/'iconvnext'/'x'))
    st = json.loads((tmp_path/'runs'/'iconvnext'/'x'/'status.json').read_text())
    assert st['status'] == 'failed' and st['error'] == 'ValueError: bad slice'


def test_ctrl_c_exits_130_and_says_interrupted(tmp_path):
    "SIGINT during a run (Ctrl-C): exit 130, status.json 'interrupted', and stderr says how to resume."
    nb = tiny_notebook(tmp_path/'slow.ipynb', "import time\nprint('started', flush=True)\ntime.sleep(120)")
    p = subprocess.Popen([sys.executable, '-c', RUNNER, str(nb), 'run', 'iconvnext', '--device', 'cpu', '--runs-dir',
                          str(tmp_path/'runs'), '--run-id', 'i'], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    killer = threading.Timer(150, p.kill); killer.start()
    try:
        seen = []
        for line in p.stderr:
            seen.append(line)
            if '[iconvnext] started' in line: p.send_signal(signal.SIGINT); break
        rest = p.communicate(timeout=60)[1]
    finally: killer.cancel()
    assert p.returncode == 130, ''.join(seen) + rest
    assert 'interrupted' in rest and '--run-id i' in rest
    assert json.loads((tmp_path/'runs'/'iconvnext'/'i'/'status.json').read_text())['status'] == 'interrupted'


def test_ctrl_c_stops_a_batch_and_keeps_its_rows(tmp_path, monkeypatch):
    "Ctrl-C during the second run of a batch: exit 130, the batch file has the done row and the interrupted one, no third run."
    calls = []
    def fake_run(paper, *a, **kw):
        calls.append(paper)
        if len(calls) == 2: raise KeyboardInterrupt
        return tmp_path/'runs'/paper/'r'
    monkeypatch.setattr(cli, 'run_paper', fake_run)
    assert cli.main(['batch', '--papers', 'iconvnext', 'neuron-ensemble', 'multiscale-resnet', '--runs-dir', str(tmp_path/'runs'), '-q']) == 130
    rows = json.loads(next((tmp_path/'runs').glob('batch-*.json')).read_text())
    assert calls == ['iconvnext', 'neuron-ensemble'] and [r['status'] for r in rows] == ['done', 'interrupted']


# ---------------------------------------------------------------- list, params, version, help

def test_list_shows_real_synthetic_missing(tmp_path, monkeypatch, capsys):
    "list: each paper's profiles and datasets, real (under the data root), synthetic (a cached stand-in) or missing."
    monkeypatch.setenv('MEDREPRO_CACHE', str(tmp_path/'cache'))
    (tmp_path/'data'/DATASETS['vqa-rad']['folder']).mkdir(parents=True)
    (tmp_path/'cache'/'synthetic'/'alzheimer-mri-4class').mkdir(parents=True)
    (tmp_path/'cache'/'synthetic'/'alzheimer-mri-4class'/'.complete').touch()
    assert cli.main(['list', '--data-root', str(tmp_path/'data')]) == 0
    out = capsys.readouterr().out
    rows = {t[-3]: (t[0], ' '.join(t[1:-3]), t[-2]) for t in (l.split() for l in out.splitlines()[2:])}  # dataset: paper, profiles, data
    profiles = ', '.join(core.PROFILES)   # the registry's profiles, in core.PROFILES order, for every paper
    assert rows['vqa-rad'] == ('crossattn-fusion', profiles, 'real')
    assert rows['alzheimer-mri-4class'][2] == 'synthetic' and rows['sartorius-cell-instance'][2] == 'missing'
    assert set(rows) == {n for n, d in DATASETS.items() if not d.get('synthetic')}
    assert not (tmp_path/'cache'/'synthetic'/'sartorius-cell-instance').exists()   # nothing generated


def test_params_shows_defaults_profiles_comments(tmp_path, monkeypatch, capsys):
    nb = tiny_notebook(tmp_path/'nb.ipynb')
    monkeypatch.setattr(cli, 'paper_notebook', lambda paper: nb)
    assert cli.main(['params', 'iconvnext']) == 0
    rows = {c[0]: c for c in ([x.strip() for x in l.strip('|').split('|')] for l in capsys.readouterr().out.splitlines()[3:])}
    table = paper_profiles('iconvnext')   # the notebook runs iconvnext: its profiles are the registry's, not the notebook's cells
    assert rows['epochs'] == ['epochs', 'None', *(repr(table[p]['epochs']) for p in core.PROFILES), 'passes over the data']
    assert rows['run_dir'] == ['run_dir', 'None', '', '', '', '', '']   # a run parameter: no profile sets it


def test_params_of_a_paper_lists_every_parameter(capsys):
    import papermill as pm
    assert cli.main(['params', 'iconvnext']) == 0
    out = capsys.readouterr().out
    for name in pm.inspect_notebook(str(cli.paper_notebook('iconvnext'))): assert f'| {name} ' in out


def test_version(capsys):
    from medrepro import __version__
    assert cli.main(['--version']) == 0 and capsys.readouterr().out.strip() == f'medrepro {__version__}'


def test_every_option_has_help_and_run_defaults_to_quick(capsys):
    ap = cli._parser()
    subs = next(a for a in ap._actions if a.dest == 'cmd').choices
    assert set(subs) == {'run', 'batch', 'evaluate', 'report', 'list', 'params', 'docs', 'lab'}
    for name, p in subs.items():
        for a in p._actions: assert a.help, f'{name} {a.option_strings or a.dest} has no help'
    assert subs['run'].parse_args(['iconvnext']).profile == 'quick'
    assert cli.main(['run', '--help']) == 0
    out = capsys.readouterr().out
    assert '{' + ','.join(core.PROFILES) + '}' in out and 'examples:' in out and '130' in out and 'usage error' in out


# ---------------------------------------------------------------- Java

def test_java_missing_is_one_line(tmp_path, monkeypatch, capsys):
    "With no `java` on PATH: caption metrics and `run crossattn-fusion` stop with one line saying how to install it."
    from medrepro.metrics_vl import require_java, caption_table
    monkeypatch.setenv('PATH', str(tmp_path))   # a folder without java
    for f in (require_java, lambda: caption_table({1: ['a cat']}, {'s': {1: 'a cat'}})):
        with pytest.raises(MedreproError) as e: f()
        msg = str(e.value)
        assert '\n' not in msg and 'java' in msg and 'default-jre-headless' in msg and 'openjdk' in msg
    assert cli.main(['run', 'crossattn-fusion', '--profile', 'smoke', '--runs-dir', str(tmp_path/'runs')]) == 2
    one_line_error(capsys.readouterr().err, 'java not found', 'default-jre-headless')
    assert not (tmp_path/'runs').exists()
