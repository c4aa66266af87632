"""As a person would see it, in a real browser: a lab notebook opened in JupyterLab (served on the loopback address)
renders its cells and starts its kernel, and the course book (`medrepro docs`: Sphinx, myst-nb, sphinx-book-theme),
opened from disk with no host name resolving (no network), navigates, searches, draws a paper's figure and marks a
lab's exercises. Headless Chromium reads the rendered page (`--dump-dom`) and keeps a screenshot of each under the
test's folder (the committed copies in benchmarks/screenshots/ were looked at). Skipped, saying why, where no Chromium
is installed. test-all only (marker browser); the last test reads the book built from the runs of `make demo`
(conftest's `demo_site`)."""
import json, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import nbformat
import pytest
from medrepro.report import build_book
from medrepro.runs import start_run
from conftest import REAL_PATH, BROWSERS

ROOT = Path(__file__).resolve().parents[1]
# conftest hides Chromium from the PATH of the runs the tests start (no PNG copies there); the browser is on REAL_PATH
CHROMIUM = next(filter(None, (shutil.which(b, path=REAL_PATH) for b in BROWSERS)), None)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason='no Chromium here (make install brings Debian\'s chromium as root)')]
OFFLINE = ('--host-resolver-rules=MAP * ~NOTFOUND',)   # no host name resolves: a page that needs a CDN shows it


def chromium(url:str, out:Path, wait_ms:int=30000, flags=(), height:int=1000)->str:
    "The DOM of `url` once its scripts ran (virtual time), and a screenshot of it as `out`."
    args = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', f'--virtual-time-budget={wait_ms}', f'--window-size=1400,{height}', *flags]
    subprocess.run([*args, f'--screenshot={out}', url], capture_output=True, timeout=180)
    return subprocess.run([*args, '--dump-dom', url], capture_output=True, text=True, timeout=180).stdout


def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    "A JupyterLab server on 127.0.0.1 over a copy of the labs (so nothing in the repository is touched); its base URL."
    shutil.copytree(ROOT/'nbs'/'labs', tmp_path/'labs', ignore=shutil.ignore_patterns('instructor'))
    port, token = free_port(), 'medrepro-test'
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--allow-root', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp_path}'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2).status == 200: break
            except OSError: time.sleep(0.5)
        else: pytest.fail('JupyterLab did not answer on 127.0.0.1 within 60 s')
        yield base, token
    finally: proc.terminate(); proc.wait(timeout=30)


def test_lab_renders_in_jupyterlab(jupyterlab, tmp_path):
    base, token = jupyterlab
    dom = chromium(f'{base}/lab/tree/labs/segmentation-metric.ipynb?token={token}', tmp_path/'jupyterlab-lab.png')
    cells = json.loads((ROOT/'nbs'/'labs'/'segmentation-metric.ipynb').read_text())['cells']
    assert dom.count('jp-MarkdownCell ') >= 1 and dom.count('jp-CodeCell ') >= 1, 'no rendered cells'
    assert 'Lab: what does the instance-segmentation score reward?' in dom          # the first markdown cell, rendered
    assert 'Kernel Error' not in dom and 'Python 3 (ipykernel)' in dom                # a kernel started for it
    assert (tmp_path/'jupyterlab-lab.png').stat().st_size > 20_000 and len(cells) > 10


@pytest.fixture(scope='module')
def book(tmp_path_factory)->Path:
    "The book over the project's labs (their sources), one library notebook, and a paper's finished run on synthetic data with a plotly figure."
    import plotly.express as px
    tmp = tmp_path_factory.mktemp('book')
    shutil.copytree(ROOT/'nbs'/'labs', tmp/'nbs'/'labs'); shutil.copy(ROOT/'nbs'/'00_core.ipynb', tmp/'nbs')
    run = start_run('iconvnext', 'quick', dict(seeds=[0]), run_dir=tmp/'runs'/'iconvnext'/'q')
    run.record('synthetic', True); (run.dir/'status.json').write_text('{"status": "done"}')
    fig = json.loads(px.bar(x=['ICN-T', 'CN-T'], y=[0.5, 0.6]).to_json())   # as papermill keeps it: the plotly JSON alone
    cell = nbformat.v4.new_code_cell('fig', outputs=[nbformat.v4.new_output('display_data', data={'application/vnd.plotly.v1+json': fig, 'text/plain': 'Figure'})])
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# A paper'), cell]), run.dir/'iconvnext.ipynb')
    return build_book(tmp/'site', tmp/'runs', tmp/'nbs').parent


def test_book_navigation(book, tmp_path):
    "The front page's navigation lists every part; a lab's page is marked current in it and leads on to the next page."
    dom = chromium((book/'index.html').as_uri(), tmp_path/'book-index.png', 8000, OFFLINE)
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', dom, re.S)[0]
    hrefs = set(re.findall(r'href="([^"#]+\.html)"', nav))
    assert {'papers/iconvnext.html', 'labs/segmentation-metric.html', 'report.html', 'library/00_core.html', 'lecturers/segmentation-metric.html'} <= hrefs, hrefs
    lab = chromium((book/'labs'/'segmentation-metric.html').as_uri(), tmp_path/'book-lab-top.png', 8000, OFFLINE)
    assert re.search(r'class="current reference internal" href="#">Lab: what does the instance-segmentation score reward\?', lab)
    nxt = re.search(r'class="right-next"\s+href="([^"]+)"', lab)[1]
    assert (book/'labs'/nxt).resolve().is_file() and 'id="pst-page-toc-nav"' in lab   # the next page, and the page's own contents


def test_book_search_finds_a_lab_offline(book, tmp_path):
    "The built search (Sphinx's index: no server, no network) finds the lab whose text holds a word."
    word = 'neurite'
    assert word in (ROOT/'nbs'/'labs'/'segmentation-metric.ipynb').read_text()
    dom = chromium((book/'search.html').as_uri() + f'?q={word}', tmp_path/'book-search.png', 15000, OFFLINE)
    results = re.search(r'<ul[^>]*class="search"[^>]*>(.*?)</ul>', dom, re.S)
    assert results and 'labs/segmentation-metric.html' in results[1], 'search found no lab'


def test_book_paper_page_draws_its_figure_offline(book, tmp_path):
    "A paper page: its run's plotly figure drawn by the book's own plotly.js, under the synthetic-data banner."
    dom = chromium((book/'papers'/'iconvnext.html').as_uri(), tmp_path/'book-paper.png', 15000, OFFLINE)
    assert 'class="main-svg"' in dom and 'SYNTHETIC DATA: no number on this page' in dom


def test_book_lab_page_shows_its_exercises(book, tmp_path):
    "A lab page: each exercise boxed by sphinx-exercise, its prediction prompt and its self-check inside."
    dom = chromium((book/'labs'/'segmentation-metric.html').as_uri(), tmp_path/'book-lab.png', 8000, OFFLINE, 4200)   # tall: the exercises in the shot
    boxes = re.findall(r'<div class="exercise admonition" id="segmentation-metric-exercise-(\d)">(.*?)</section>\s*</div>', dom, re.S)
    assert [n for n, _ in boxes] == ['1', '2', '3', '4'], [n for n, _ in boxes]
    assert all('check_prediction' in body for _, body in boxes) and 'Exercise (1)' in dom


@pytest.mark.demo
def test_demo_site_paper_page_in_the_browser(demo_site, tmp_path):
    "The book over the runs of `make demo`: a paper page with its quick run's outputs draws its figures, with no network."
    site, err = demo_site
    assert err is None, err
    dom = chromium((site/'papers'/'crossattn-fusion.html').as_uri(), tmp_path/'site-paper-crossattn-fusion.png', flags=OFFLINE)
    assert dom.count('class="main-svg"') >= 2 and 'SYNTHETIC DATA' in dom, 'the figures of the quick run are not drawn'
