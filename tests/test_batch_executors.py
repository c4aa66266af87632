"""`medrepro batch` on an executor: `--executor local --jobs 2` runs two runs at once on this machine, with the same
per-run results as one after another; `--executor slurm` submits one job per run through submitit to a real one-node
SLURM (`.ci/slurm-up` starts slurmctld and slurmd here; skipped with one line where it cannot), collects the rows into
the same batch file, and a job requeued mid-training resumes from its checkpoints. Tiny paper-like notebooks only."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import nbformat
import pytest
from medrepro import cli
from conftest import REAL_PATH

ROOT = Path(__file__).resolve().parents[1]
# `medrepro ARGS` in a fresh process; argv[1] replaces every paper's notebook
RUNNER = ("import sys; from pathlib import Path; from medrepro import cli\n"
          "cli.paper_notebook = lambda paper: Path(sys.argv[1])\n"
          "sys.exit(cli.main(sys.argv[2:]))")
# a seeded linear model trained for `epochs` epochs (2 s of validation each) with resumable checkpoints in the run folder
TRAIN = """import json, time, torch
from medrepro import core, engine
cfg = core.profile_config(PROFILES, profile, epochs=epochs)
torch.manual_seed(0); x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
def slow_eval(m, d, dev): time.sleep(2); return engine.evaluate_classifier(m, d, dev)
res = engine.fit(torch.nn.Linear(4, 2), dl, dl, engine.TrainConfig(epochs=cfg['epochs'], progress=False), evaluate=slow_eval,
                 ckpt_dir=run_dir + '/checkpoints')
open(run_dir + '/out.json', 'w').write(json.dumps(dict(resumed_epochs=res.resumed_epochs, valid_loss=res.history.valid_loss.tolist())))"""


def train_notebook(path, body=TRAIN):
    "A paper-like notebook: a parameters cell, a PROFILES cell (epochs 3/4/5), then `body`."
    nb = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name='python3', language='python', display_name='Python 3'),
                                                language_info=dict(name='python')))
    nb.cells = [nbformat.v4.new_code_cell("paper = 'iconvnext'\nprofile = 'smoke'  # smoke | quick | paper\nseeds = [0]\n"
                                          "run_dir = None\nepochs = None  # passes over the data", metadata=dict(tags=['parameters'])),
                nbformat.v4.new_code_cell("PROFILES = {'smoke': dict(epochs=3), 'quick': dict(epochs=4), 'paper': dict(epochs=5)}"),
                nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path)); return Path(path)


def batch_cmd(nb, runs, *args):
    "The command line of a batch of two tiny runs (iconvnext, neuron-ensemble) at profile smoke."
    return [sys.executable, '-c', RUNNER, str(nb), 'batch', '--papers', 'iconvnext', 'neuron-ensemble', '--profiles', 'smoke',
            '--runs-dir', str(runs), '-q', *map(str, args)]


def batch_rows(runs)->dict:
    "The rows of the one batch file in `runs`, by paper."
    files = list(Path(runs).glob('batch-*.json'))
    assert len(files) == 1, files
    return {r['paper']: r for r in json.loads(files[0].read_text())}


def out(row): return json.loads((Path(row['run_dir'])/'out.json').read_text())


def overlap(a, b)->bool: return a['started'] < b['ended'] and b['started'] < a['ended']


def test_local_jobs_2_runs_two_at_once_with_the_sequential_results(tmp_path, monkeypatch):
    "--jobs 2: both runs in flight at once (their start-end intervals overlap), each with the output of the sequential batch."
    nb = train_notebook(tmp_path/'nb.ipynb', "import json, random, time\ntime.sleep(4)\n"
                        "open(run_dir + '/out.json', 'w').write(json.dumps([paper, profile, random.Random(paper).random()]))")
    monkeypatch.setattr(cli, 'paper_notebook', lambda paper: nb)   # resolved here, run in the worker processes
    for runs, jobs in ((tmp_path/'two', 2), (tmp_path/'one', 1)):
        assert cli.main(['batch', '--papers', 'iconvnext', 'neuron-ensemble', '--profiles', 'smoke', '--runs-dir', str(runs),
                         '-q', '--executor', 'local', '--jobs', str(jobs)]) == 0
    two, one = batch_rows(tmp_path/'two'), batch_rows(tmp_path/'one')
    assert [r['status'] for r in [*two.values(), *one.values()]] == ['done'] * 4, (two, one)
    assert overlap(*two.values()), two          # two at a time
    assert not overlap(*one.values()), one      # one after another
    for paper in two: assert out(two[paper]) == out(one[paper]) == [paper, 'smoke', out(one[paper])[2]], paper


def test_ctrl_c_stops_a_local_jobs_2_batch(tmp_path):
    "Ctrl-C (SIGINT to the process group) while two of three runs work: exit 130, both rows say interrupted, no third run."
    nb = train_notebook(tmp_path/'slow.ipynb', "import time\nprint('started', flush=True)\ntime.sleep(120)")
    cmd = [c for c in batch_cmd(nb, tmp_path/'runs', '--executor', 'local', '--jobs', 2) if c != '-q']
    cmd.insert(cmd.index('neuron-ensemble') + 1, 'multiscale-resnet')
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        started = 0
        for line in p.stderr:
            started += line.rstrip().endswith('] started')
            if started == 2: os.killpg(p.pid, signal.SIGINT); break
        rest = p.communicate(timeout=300)[1]
    finally: p.kill()
    assert p.returncode == 130, rest
    rows = batch_rows(tmp_path/'runs')
    assert {k: r['status'] for k, r in rows.items()} == {'iconvnext': 'interrupted', 'neuron-ensemble': 'interrupted'}, rows
    assert not (tmp_path/'runs'/'multiscale-resnet').exists()


def test_usage_errors_of_the_executors(tmp_path, monkeypatch, capsys):
    "--jobs 0, and --executor slurm where there is no SLURM: exit 2 with one line naming the option; nothing made."
    assert cli.main(['batch', '--papers', 'iconvnext', '--jobs', '0', '--runs-dir', str(tmp_path/'runs')]) == 2
    monkeypatch.setenv('PATH', str(Path(sys.executable).parent))   # no sbatch on it
    assert cli.main(['batch', '--papers', 'iconvnext', '--executor', 'slurm', '--runs-dir', str(tmp_path/'runs')]) == 2
    errs = [l for l in capsys.readouterr().err.splitlines() if 'error:' in l]
    assert len(errs) == 2 and '--jobs 0' in errs[0] and '--executor slurm: no SLURM' in errs[1], errs
    assert not (tmp_path/'runs').exists()


@pytest.fixture(scope='module')
def slurm():
    """A running one-node SLURM (started by .ci/slurm-up when it can be); else the test is skipped with the reason.
    Where .ci/run already brings it up in the background, the fixture first waits for that (MEDREPRO_SLURM_UP_DONE)."""
    done = os.environ.get('MEDREPRO_SLURM_UP_DONE')
    if done: wait_for(lambda: Path(done).exists(), 660, f'{done} (the background .ci/slurm-up of .ci/run)')
    # the PATH as it is (conftest hides Chromium behind a copy of the PATH made at the start, without SLURM's new programs)
    shimmed, os.environ['PATH'] = os.environ['PATH'], REAL_PATH
    try:
        r = subprocess.run(['bash', str(ROOT/'.ci'/'slurm-up')], capture_output=True, text=True, timeout=900)
        if r.returncode: pytest.skip(f"SLURM cannot start here: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
        yield
    finally: os.environ['PATH'] = shimmed


def wait_for(cond, timeout:float, what:str):
    "Poll `cond` every second until it is true; fail naming `what` after `timeout` seconds."
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f'no {what} after {timeout} s'
        time.sleep(1)


@pytest.mark.slurm
def test_slurm_collects_the_rows_and_a_requeued_run_resumes(tmp_path, slurm):
    """Three SLURM jobs: one requeued (`scontrol requeue`) after its first checkpoint, one left alone, one cancelled while
    pending. The batch file has all three rows; the requeued run restarted once, read its epochs back from last.pt and
    ended with the losses of the unbroken run; the cancelled one is a failed row, so the batch exits 1."""
    nb, runs = train_notebook(tmp_path/'train.ipynb'), tmp_path/'runs'
    cmd = batch_cmd(nb, runs, '--executor', 'slurm', '--time', 10, '-p', 'epochs=10')
    cmd.insert(cmd.index('neuron-ensemble') + 1, 'multiscale-resnet')
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        ids = {}
        for line in p.stderr:   # '[batch] iconvnext cpu smoke: SLURM job 12', one line per run
            if 'SLURM job' in line: ids[line.split()[1]] = line.split()[-1]
            if len(ids) == 3: break
        assert len(ids) == 3, ids
        subprocess.run(['scancel', ids['multiscale-resnet']], check=True)   # two CPUs: the third job is still pending
        wait_for(lambda: list(runs.glob('iconvnext/*/checkpoints/last.pt')), 600, 'first checkpoint of the iconvnext run')
        subprocess.run(['scontrol', 'requeue', ids['iconvnext']], check=True)
        rest = p.communicate(timeout=900)[1]
    finally: p.kill()
    assert p.returncode == 1, rest
    rows = batch_rows(runs)
    assert {k: r['status'] for k, r in rows.items()} == {'iconvnext': 'done', 'neuron-ensemble': 'done', 'multiscale-resnet': 'failed'}, rest
    assert f"SLURM job {ids['multiscale-resnet']} ended without a result" in rows['multiscale-resnet']['error']
    assert 'FAILED multiscale-resnet cpu smoke' in rest
    requeued, alone = rows['iconvnext'], rows['neuron-ensemble']
    assert (requeued['slurm_job'], requeued['restarts'], alone['restarts']) == (ids['iconvnext'], 1, 0), rows
    assert 1 <= out(requeued)['resumed_epochs'] < 10, out(requeued)          # cut mid-training, resumed from last.pt
    assert out(requeued)['valid_loss'] == out(alone)['valid_loss'] and len(out(alone)['valid_loss']) == 10
