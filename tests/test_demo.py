"""The README's main job as a user runs it (issue 22): `make demo` in a fresh folder, on the embedded synthetic data,
exits 0 and leaves reports/index.html with a card for every paper (its section and a row of the summary grid), each
from a finished `quick` run flagged as synthetic. test-all only: about 10 minutes on 2 idle cores (the `demo` fixture
of conftest.py runs it once per session; other slow tests read its runs)."""
import json, shutil
import pytest
from conftest import REAL_PATH, BROWSERS
from medrepro.core import PAPER_IDS
from test_report_summary import summary_rows

pytestmark = pytest.mark.demo


def test_make_demo_in_a_fresh_folder(demo):
    work, r, seconds = demo
    print(f'make demo: {seconds:.0f} s')
    assert r.returncode == 0, f'make demo exited {r.returncode}:\n{r.stdout[-6000:]}'
    page = work/'reports'/'index.html'
    assert page.exists(), r.stdout[-3000:]
    text, rows = page.read_text(), summary_rows(page)
    for paper in PAPER_IDS:
        (run,) = [p.parent for p in (work/'runs'/paper).glob('*/params.json')]   # one run per paper
        status, params = (json.loads((run/f).read_text()) for f in ('status.json', 'params.json'))
        prov = json.loads((run/'provenance.json').read_text())
        assert status['status'] == 'done' and params['profile'] == 'quick' and prov['synthetic'] is True, (paper, status)
        if any(shutil.which(b, path=REAL_PATH) for b in BROWSERS):   # a Chromium here: plotly figures get a PNG copy
            assert any(f.suffix == '.png' for f in (run/'figures').iterdir()), f'{paper}: no PNG copy of a figure'
        (row,) = [x for x in rows if x['paper'] == paper and x['run'] == run.name]
        assert (row['profile'], row['status'], row['data']) == ('quick', 'done', 'synthetic'), row
        assert f'<h2 id="{paper}">' in text and f'id="run-{paper}-{run.name}"' in text, f'no card for {paper} in {page}'
