"""Shared fixtures: no network, real data samples when present, a temporary runs folder, the tiers (`make test` and
`make test-all`), runs shared by the tests that only read them, and the README's `make demo` in a fresh folder."""
import atexit, os, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
# Every process started by the tests (papermill kernels included) loads tests/netguard/sitecustomize.py.
os.environ['MEDREPRO_NO_NETWORK'] = '1'
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(ROOT/'tests'/'netguard'), os.environ.get('PYTHONPATH')]))
# The Ctrl-C tests send SIGINT to the CLI as a terminal would. A test runner started in the background (`nohup ... &`)
# inherits SIGINT ignored and passes that on to every process it starts; give them a terminal's handling instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN: signal.signal(signal.SIGINT, signal.default_int_handler)


# ---------------------------------------------------------------- PNG copies of figures: off in the tests' runs
# `runs.save_figure` writes a PNG beside each plotly figure when a Chromium is on PATH (`runs.has_png_export`). Each
# PNG starts a headless browser through kaleido: about 2-3 s a figure, 5-10 figures a paper run, a third of a smoke run.
# No test reads those PNGs, so the runs the tests start see a PATH whose folders hide the Chromium binaries. The
# browser tests take Chromium from REAL_PATH, and `make demo` (tests/test_demo.py) runs with REAL_PATH, so PNG export is
# still exercised, as a user meets it. MEDREPRO_TEST_PNG=1 keeps PNG export on everywhere.
REAL_PATH = os.environ.get('PATH', '')
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'chrome')


def _path_without_browsers(path:str, shims:Path)->str:
    "`path` with each folder that holds a Chromium replaced by a folder of links to everything else in it."
    out = []
    for i, d in enumerate(filter(None, path.split(os.pathsep))):
        if not any((Path(d)/b).exists() for b in BROWSERS): out.append(d); continue
        shim = shims/str(i); shim.mkdir(parents=True, exist_ok=True)
        for f in Path(d).iterdir():
            if f.name not in BROWSERS and not (shim/f.name).exists(): (shim/f.name).symlink_to(f)
        out.append(str(shim))
    return os.pathsep.join(out)


if os.environ.get('MEDREPRO_TEST_PNG') != '1':
    _shims = Path(tempfile.mkdtemp(prefix='medrepro-test-path-'))
    atexit.register(shutil.rmtree, _shims, True)
    os.environ['PATH'] = _path_without_browsers(REAL_PATH, _shims)   # programs installed later (SLURM): REAL_PATH


# ---------------------------------------------------------------- the tiers
# `make test` runs `pytest -m "not slow"` (<= 10 min on 2 idle cores); `make test-all` runs every test. A test carrying
# one of these markers (pyproject.toml says what each means) is slow, so `make test` leaves it out.
SLOW_KINDS = ('e2e', 'learning', 'lab', 'browser', 'slurm', 'ddp', 'demo')


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(k) for k in SLOW_KINDS): item.add_marker(pytest.mark.slow)


# ---------------------------------------------------------------- data, folders, cache

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


@pytest.fixture(scope='session', autouse=True)
def isolated_cache(tmp_path_factory):
    """Synthetic data and weights are cached once per test session (session fixtures included), never in the user's
    home. A test that needs a cache of its own sets MEDREPRO_CACHE with monkeypatch."""
    old, os.environ['MEDREPRO_CACHE'] = os.environ.get('MEDREPRO_CACHE'), str(tmp_path_factory.getbasetemp()/'cache')
    yield
    if old is None: os.environ.pop('MEDREPRO_CACHE', None)
    else: os.environ['MEDREPRO_CACHE'] = old


@pytest.fixture
def one_thread(monkeypatch):
    """Learning tests train with one CPU thread (torch in this process, and every kernel it starts), so their result
    does not depend on the machine's load: two threads on two cores that another process also uses wait on each other at
    every operation (test_icn_t_learns took 166 s on idle cores and over 20 min beside one other process), and the
    float sums, hence the trained model, change with the thread count. Yields the count."""
    import torch
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): monkeypatch.setenv(k, '1')
    before = torch.get_num_threads(); torch.set_num_threads(1)
    yield 1
    torch.set_num_threads(before)


# ---------------------------------------------------------------- runs shared by the tests that only read them

def medrepro_cli(*args, timeout=1800, **kw)->subprocess.CompletedProcess:
    "`.venv/bin/medrepro ARGS` as a user types it; the CompletedProcess (text stdout and stderr)."
    return subprocess.run([str(BIN/'medrepro'), *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope='session')
def smoke_run(tmp_path_factory):
    """`smoke_run(paper)`: the folder of `medrepro run PAPER --profile smoke --device cpu` on the embedded synthetic
    data, made the first time a test asks for it and shared by every test of the session that asks again. Tests only
    read it, or add an external evaluation (`external/`); a test that deletes or edits files works on a copy."""
    made = {}
    def get(paper:str)->Path:
        if paper not in made:
            runs = tmp_path_factory.mktemp(f'smoke-{paper}')
            r = medrepro_cli('run', paper, '--profile', 'smoke', '--device', 'cpu', '--data-root', runs/'no-data',
                             '--runs-dir', runs, '--run-id', 'shared', '-q')
            made[paper] = (runs/paper/'shared', r)
        run, r = made[paper]
        if r.returncode: pytest.fail(f'medrepro run {paper} --profile smoke: exit {r.returncode}\n{r.stderr[-3000:]}')
        assert r.stdout.strip() == str(run), r.stdout
        return run
    return get


# ---------------------------------------------------------------- the README's main job: `make demo` in a fresh folder

def copy_worktree(dst:Path)->Path:
    "The git-visible working tree (tracked files and untracked ones that git does not ignore), copied to `dst`."
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for f in filter(None, files):
        if (ROOT/f).is_file(): (dst/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, dst/f)
    return dst


@pytest.fixture(scope='session')
def demo(tmp_path_factory):
    """`make demo` as a new user runs it: in a fresh copy of the working tree (what a clone holds, with the uncommitted
    changes), no MEDREPRO_DATA (the embedded synthetic data), an empty home (no cached data or weights), the PATH as it is.
    `make install` is CI's own step: the copy uses this checkout's installed .venv (linked), and its own code first on
    PYTHONPATH. Made once per session; returns (folder, CompletedProcess with the log in stdout, seconds).
    MEDREPRO_TEST_DEMO=<folder> reuses the folder of an earlier `make demo` instead (to work on the tests that read it)."""
    if os.environ.get('MEDREPRO_TEST_DEMO'):
        work = Path(os.environ['MEDREPRO_TEST_DEMO'])
        return work, subprocess.CompletedProcess(['make', 'demo'], 0, f'reused {work}', ''), 0.0
    work = copy_worktree(tmp_path_factory.mktemp('demo')/'medrepro')
    (work/'.venv').symlink_to(ROOT/'.venv')
    home = work.parent/'home'; home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith('MEDREPRO_')}
    env.update(HOME=str(home), PATH=REAL_PATH, MEDREPRO_NO_NETWORK='1',
               PYTHONPATH=os.pathsep.join([str(work), str(ROOT/'tests'/'netguard')]))
    t0 = time.time()
    # -o: the install stamp counts as made (the linked .venv is installed); everything else is `make demo` itself
    cmd = ['make', '-o', '.venv/.installed', 'demo']
    p = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try: out = p.communicate(timeout=3600)[0]
    except subprocess.TimeoutExpired:   # stop the batch and its kernels too, not only make
        os.killpg(p.pid, signal.SIGKILL); out = p.communicate()[0] + '\n[make demo stopped after 3600 s]'
    return work, subprocess.CompletedProcess(cmd, p.returncode, out, ''), time.time() - t0


@pytest.fixture(scope='session')
def demo_site(demo, tmp_path_factory):
    """The documentation site over the runs of `make demo` (`report.build_book`, as `medrepro docs` builds it): every
    paper notebook with its quick run's outputs, and the report. Library notebooks and labs are left out here (the fast
    tier's test_docs renders them): (site folder, error or None). Built once per session for the docs and browser tests."""
    from medrepro.report import build_book
    work, _, _ = demo
    out = tmp_path_factory.mktemp('demo-site')
    try: return build_book(out/'book', work/'runs', out/'no-notebooks').parent, None
    except Exception as e: return out/'book', e


import importlib.util as _u  # the same network guard inside the pytest process
_spec = _u.spec_from_file_location('_netguard', ROOT/'tests'/'netguard'/'sitecustomize.py'); _spec.loader.exec_module(_u.module_from_spec(_spec))
