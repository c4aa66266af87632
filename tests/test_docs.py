"""The documentation site builds from run folders and the project's notebooks, and the report links rendered notebooks;
and (test-all, marker demo) the site built from the runs of `make demo` shows each paper notebook with its outputs."""
import json, shutil
from pathlib import Path
import nbformat
import pytest
from medrepro.core import PAPER_IDS
from medrepro.cli import main
from medrepro.report import start_run, render_report

ROOT = Path(__file__).resolve().parents[1]


def _done_run(runs, paper, profile, synthetic, nb_text):
    "A finished run folder holding an executed notebook with one output."
    run = start_run(paper, profile, dict(seeds=[0]), run_dir=runs/paper/f'{profile}-run')
    run.record('synthetic', synthetic); (run.dir/'status.json').write_text(json.dumps(dict(status='done')))
    cell = nbformat.v4.new_code_cell('1 + 1', outputs=[nbformat.v4.new_output('execute_result', data={'text/plain': nb_text}, execution_count=1)])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), run.dir/f'{paper}.ipynb')
    return run.dir


def test_site_builds_with_outputs_and_banners(tmp_path):
    runs = tmp_path/'runs'
    _done_run(runs, 'iconvnext', 'quick', False, 'OUTPUT-OF-THE-REAL-RUN')
    _done_run(runs, 'multiscale-resnet', 'smoke', True, 'OUTPUT-OF-THE-SYNTHETIC-RUN')
    assert main(['docs', '--runs-dir', str(runs), '--out', str(tmp_path/'site')]) == 0
    site = tmp_path/'site'
    index = (site/'index.html').read_text()
    for p in ('iconvnext', 'multiscale-resnet'): assert f'papers/{p}.html' in index
    assert index.count('no finished run') == 2                      # the two papers without a run say so
    real, syn = (site/'papers'/'iconvnext.html').read_text(), (site/'papers'/'multiscale-resnet.html').read_text()
    assert 'OUTPUT-OF-THE-REAL-RUN' in real and 'SYNTHETIC DATA' not in real
    assert 'OUTPUT-OF-THE-SYNTHETIC-RUN' in syn and 'SYNTHETIC DATA: no number on this page' in syn
    libs = sorted(p.stem for p in (site/'library').glob('*.html'))
    assert libs == sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb')) and '00_core' in libs
    assert (site/'report.html').exists() and (site/'plotly.min.js').exists() and not (site/'papers'/'plotly.min.js').exists()


def test_docs_without_runs_is_one_line_error(tmp_path, capsys):
    assert main(['docs', '--runs-dir', str(tmp_path/'nothing'), '--out', str(tmp_path/'site')]) == 2
    assert 'nothing: no such folder' in capsys.readouterr().err


def test_report_links_the_rendered_notebook(tmp_path):
    d = _done_run(tmp_path/'runs', 'iconvnext', 'smoke', True, 'X')
    page = render_report(tmp_path/'runs', tmp_path/'reports'/'index.html').read_text()
    assert 'href="../runs/iconvnext/smoke-run/iconvnext.html">executed notebook</a>' in page and (d/'iconvnext.html').exists()


@pytest.mark.demo
def test_site_from_the_demo_runs(demo, demo_site):
    "After `make demo`, the site (as `medrepro docs` builds it) renders each paper notebook with its quick run's outputs, flagged synthetic."
    (work, _, _), (site, err) = demo, demo_site
    assert err is None, err
    assert 'no finished run' not in (site/'index.html').read_text()
    for paper in PAPER_IDS:
        (run,) = [p.parent for p in (work/'runs'/paper).glob('*/params.json')]
        page = (site/'papers'/f'{paper}.html').read_text()
        assert f'Rendered from run <code>{run.name}</code> (profile <code>quick</code>' in page, paper
        assert 'SYNTHETIC DATA: no number on this page' in page and 'plotly-graph-div' in page, paper
