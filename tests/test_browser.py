"""As a person would see it, in a real browser: a lab notebook opened in JupyterLab (served on the loopback address)
renders its cells and starts its kernel, and a paper page of the documentation site shows its figures. Headless
Chromium reads the rendered page (`--dump-dom`) and keeps a screenshot of each under the test's folder (the committed
copies in benchmarks/screenshots/ were looked at). Skipped, saying why, where no Chromium is installed. test-all only
(marker browser); the last test reads the site built from the runs of `make demo` (conftest's `demo_site`)."""
import json, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from medrepro.report import build_site, start_run
from conftest import REAL_PATH, BROWSERS

ROOT = Path(__file__).resolve().parents[1]
# conftest hides Chromium from the PATH of the runs the tests start (no PNG copies there); the browser is on REAL_PATH
CHROMIUM = next(filter(None, (shutil.which(b, path=REAL_PATH) for b in BROWSERS)), None)
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason='no Chromium here (make install brings Debian\'s chromium as root)')]


def chromium(url:str, out:Path, wait_ms:int=30000)->str:
    "The DOM of `url` once its scripts ran (virtual time), and a screenshot of it as `out`."
    args = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', f'--virtual-time-budget={wait_ms}', '--window-size=1400,1000']
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


def test_site_paper_page_shows_its_figures(tmp_path):
    import nbformat, plotly.express as px
    run = start_run('iconvnext', 'quick', dict(seeds=[0]), run_dir=tmp_path/'runs'/'iconvnext'/'q')
    run.record('synthetic', True); (run.dir/'status.json').write_text('{"status": "done"}')
    fig = json.loads(px.bar(x=['ICN-T', 'CN-T'], y=[0.5, 0.6]).to_json())
    cell = nbformat.v4.new_code_cell('fig', outputs=[nbformat.v4.new_output('display_data', data={'application/vnd.plotly.v1+json': fig, 'text/plain': 'Figure'})])
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# A paper'), cell]), run.dir/'iconvnext.ipynb')
    build_site(tmp_path/'site', tmp_path/'runs', tmp_path/'no-nbs')
    dom = chromium((tmp_path/'site'/'papers'/'iconvnext.html').as_uri(), tmp_path/'site-paper.png', 8000)
    assert 'class="main-svg"' in dom and 'SYNTHETIC DATA' in dom        # plotly drew the figure offline; the banner is there


@pytest.mark.demo
def test_demo_site_paper_page_in_the_browser(demo_site, tmp_path):
    "The documentation site over the runs of `make demo`: a paper page with its quick run's outputs draws its figures."
    site, err = demo_site
    assert err is None, err
    dom = chromium((site/'papers'/'crossattn-fusion.html').as_uri(), tmp_path/'site-paper-crossattn-fusion.png')
    assert dom.count('class="main-svg"') >= 2 and 'SYNTHETIC DATA' in dom, 'the figures of the quick run are not drawn'
