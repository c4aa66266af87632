"""The course book (`medrepro docs`: Sphinx, myst-nb, sphinx-book-theme) builds from run folders and the project's
notebooks, in two halves, and the report is one page of the same tooling; and (test-all, marker demo) the book built
from the runs of `make demo` shows each paper notebook with its outputs."""
import json, re
from pathlib import Path
import nbformat
import pytest
from medrepro import report
from medrepro.core import PAPER_IDS
from medrepro.cli import main
from medrepro.runs import start_run
from medrepro.report import render_report

ROOT = Path(__file__).resolve().parents[1]
LABS = sorted((ROOT/'nbs'/'labs').glob('*.ipynb'))


def _done_run(runs, paper, profile, synthetic, nb_text):
    "A finished run folder holding an executed notebook with one output, and a claims table."
    run = start_run(paper, profile, dict(seeds=[0]), run_dir=runs/paper/f'{profile}-run')
    run.record('synthetic', synthetic); (run.dir/'status.json').write_text(json.dumps(dict(status='done')))
    (run.dir/'tables'/'claims.csv').write_text('claim,decision\nA beats B,undecided\n')
    cell = nbformat.v4.new_code_cell('1 + 1', outputs=[nbformat.v4.new_output('execute_result', data={'text/plain': nb_text}, execution_count=1)])
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f'# The {paper} paper'), cell]), run.dir/f'{paper}.ipynb')
    return run.dir


def exercises(nb:Path)->int:
    "How many exercises a lab's source holds ('**Exercise N.**')."
    return sum(len(re.findall(r'\*\*Exercise \d+\.\*\*', c.source)) for c in nbformat.read(str(nb), as_version=4).cells)


def test_book_builds_with_outputs_banners_and_the_lecturers_part(tmp_path):
    "The whole book over the project's notebooks: papers with their run's outputs and banner, every lab with its exercises, the library, the report, the lecturer's part."
    runs = tmp_path/'runs'
    real = _done_run(runs, 'iconvnext', 'quick', False, 'OUTPUT-OF-THE-REAL-RUN')
    _done_run(runs, 'multiscale-resnet', 'smoke', True, 'OUTPUT-OF-THE-SYNTHETIC-RUN')
    assert main(['docs', '--runs-dir', str(runs), '--out', str(tmp_path/'book')]) == 0
    site = tmp_path/'book'
    index = (site/'index.html').read_text()
    for p in ('iconvnext', 'multiscale-resnet'): assert f'papers/{p}.html' in index
    assert index.count('no finished run') == 2                      # the two papers without a run say so
    real_page, syn = (site/'papers'/'iconvnext.html').read_text(), (site/'papers'/'multiscale-resnet.html').read_text()
    assert 'OUTPUT-OF-THE-REAL-RUN' in real_page and 'SYNTHETIC DATA' not in real_page and 'Real data' in real_page
    assert 'OUTPUT-OF-THE-SYNTHETIC-RUN' in syn and 'SYNTHETIC DATA: no number on this page' in syn
    assert f'href="../report.html#run-iconvnext-{real.name}"' in real_page and 'claims.csv' in real_page   # the run's claims and card
    assert sorted(p.stem for p in (site/'library').glob('*.html')) == sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))
    for lab in LABS:
        page = (site/'labs'/f'{lab.stem}.html').read_text()
        assert page.count('class="exercise admonition"') == exercises(lab) >= 3, lab.stem    # every exercise, marked by sphinx-exercise
        assert 'Not executed yet' in page and (site/'_sources'/'labs'/lab.name).exists()     # no executed copy here; downloads as .ipynb
    notes = sorted(p.stem for p in (site/'lecturers').glob('*.html'))
    assert notes == sorted(p.stem for p in (ROOT/'nbs'/'labs'/'instructor').glob('*.md')) and 'For lecturers' in index
    assert 'id="run-iconvnext-quick-run"' in (site/'report.html').read_text() and (site/'searchindex.js').exists()
    assert [p.relative_to(site).as_posix() for p in site.rglob('plotly.min.js')] == ['plotly.min.js']   # one copy, at the root
    assert sorted(p.name for p in tmp_path.iterdir()) == ['book', 'runs']   # built elsewhere: myst-nb's jupyter_execute/ is not left beside it


def test_students_half_alone(tmp_path, monkeypatch):
    "`medrepro docs --audience student` (make docs-student) builds the book without the instructor notes and answers."
    nbs = tmp_path/'nbs'; (nbs/'labs'/'instructor').mkdir(parents=True)
    nbformat.write(nbformat.read(str(LABS[0]), as_version=4), nbs/'labs'/LABS[0].name)
    (nbs/'labs'/'instructor'/f'{LABS[0].stem}.md').write_text('# Instructor notes\n\nEXPECTED-ANSWER-42')
    monkeypatch.setattr(report, 'project_root', lambda: tmp_path)
    (tmp_path/'runs').mkdir()
    for audience, seen in (('student', False), ('lecturer', True)):
        assert main(['docs', '--runs-dir', str(tmp_path/'runs'), '--audience', audience, '--out', str(tmp_path/audience)]) == 0
        site = tmp_path/audience
        built = ' '.join(p.read_text() for p in site.rglob('*.html')) + (site/'searchindex.js').read_text()
        assert ('EXPECTED-ANSWER-42' in built) is seen and (site/'lecturers').exists() is seen, audience
        assert (site/'labs'/LABS[0].with_suffix('.html').name).exists()
    assert main(['docs', '--runs-dir', str(tmp_path/'runs'), '--audience', 'student', '--out', str(tmp_path/'lecturer')]) == 0
    assert not (tmp_path/'lecturer'/'lecturers').exists()   # a student build over a lecturer's folder drops the answers
    assert main(['docs', '--runs-dir', str(tmp_path/'runs'), '--audience', 'teacher']) == 2


def test_docs_without_runs_is_one_line_error(tmp_path, capsys):
    assert main(['docs', '--runs-dir', str(tmp_path/'nothing'), '--out', str(tmp_path/'site')]) == 2
    assert 'nothing: no such folder' in capsys.readouterr().err


def test_report_is_one_page_of_the_book_tooling(tmp_path):
    "`medrepro report`: the same tooling's page (search, download as .ipynb), linking each run's executed notebook; nothing else beside its folder."
    _done_run(tmp_path/'runs', 'iconvnext', 'smoke', True, 'X')
    page = render_report(tmp_path/'runs', tmp_path/'reports'/'index.html').read_text()
    assert 'href="../runs/iconvnext/smoke-run/iconvnext.ipynb">executed notebook (.ipynb)</a>' in page
    assert 'sphinx-book-theme' in page and 'SYNTHETIC DATA: not comparable with the paper' in page
    assert (tmp_path/'reports'/'_sources'/'index.ipynb').exists() and (tmp_path/'reports'/'search.html').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['reports', 'runs']   # myst-nb's jupyter_execute/ stays in the build's temporary folder


@pytest.mark.demo
def test_site_from_the_demo_runs(demo, demo_site):
    "After `make demo`, the book (as `medrepro docs` builds it) renders each paper notebook with its quick run's outputs, flagged synthetic."
    (work, _, _), (site, err) = demo, demo_site
    assert err is None, err
    assert 'no finished run' not in (site/'index.html').read_text()
    for paper in PAPER_IDS:
        (run,) = [p.parent for p in (work/'runs'/paper).glob('*/params.json')]
        page = (site/'papers'/f'{paper}.html').read_text()
        assert f'Rendered from run <code class="docutils literal notranslate"><span class="pre">{run.name}</span></code>' in page, paper
        assert 'SYNTHETIC DATA: no number on this page' in page and 'plotly-graph-div' in page, paper
