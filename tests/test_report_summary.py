"""The report as a reader meets it: the summary grid that opens the page matches the run folders and the batch files,
`--latest N`, the paper-vs-reproduced charts, and `medrepro report --runs-dir results` on the kept runs."""
import json, os
from html.parser import HTMLParser
from pathlib import Path
import pandas as pd
import pytest
from medrepro import cli
from medrepro.report import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


class _Summary(HTMLParser):
    "The rows of the page's `<table class=\"summary\">`: per row, {column: text} plus the run cell's link as 'href'."
    def __init__(self):
        super().__init__(); self.rows, self.inside, self.row, self.cell, self.href = [], False, None, None, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'table' and a.get('class') == 'summary': self.inside = True
        elif self.inside and tag == 'tr': self.row = []
        elif self.inside and tag == 'td': self.cell = ''
        elif self.inside and tag == 'a': self.href = a['href']
    def handle_endtag(self, tag):
        if tag == 'table' and self.inside: self.inside = False
        elif self.inside and tag == 'td': self.row.append(self.cell); self.cell = None
        elif self.inside and tag == 'tr' and self.row:
            self.rows.append(dict(zip(SUMMARY_COLUMNS, self.row), href=self.href)); self.row = self.href = None
    def handle_data(self, data):
        if self.cell is not None: self.cell += data


def summary_rows(page:Path)->list:
    p = _Summary(); p.feed(page.read_text()); return p.rows


def make_run(root, paper, name, status, synthetic, source, verdict, mtime, table=None):
    "A run folder as a paper notebook leaves it."
    d = root/paper/name; (d/'notes').mkdir(parents=True); (d/'tables').mkdir()
    (d/'params.json').write_text(json.dumps(dict(paper=paper, profile='smoke', device='auto', seeds=[0, 1])))
    (d/'provenance.json').write_text(json.dumps(dict(synthetic=synthetic, device=dict(resolved='cpu'), weights=dict(name='m', source=source))))
    (d/'status.json').write_text(json.dumps(dict(status=status, **({'error': 'ValueError: bad slice'} if status == 'failed' else {}))))
    if verdict: (d/'notes'/'verdict.md').write_text(verdict)
    if table is not None: table.to_csv(d/'tables'/'table1.csv'); (d/'tables'/'table1.md').write_text('**Table 1 against the paper**\n')
    os.utime(d, (mtime, mtime)); return d


@pytest.fixture
def runs(tmp_path):
    "Three run folders of two papers (one failed, one on real data), and a batch file with a row that has no folder."
    root = tmp_path/'runs'
    comp = pd.DataFrame({'accuracy paper': [0.891, 0.824], 'accuracy reproduced': ['0.455 ± 0.010', '0.506 ± 0.020'],
                         'accuracy Δ': [-0.436, -0.318]}, index=pd.Index(['ICN-T', 'CN-T'], name='model'))
    made = dict(
        old=make_run(root, 'iconvnext', 'old', 'done', True, 'random', '**Synthetic data: NOT comparable.**\n\n1 of 4 reported numbers are reproduced within ±0.02.', 1e9),
        new=make_run(root, 'iconvnext', 'new', 'done', False, 'file', '**Not a test of the paper:** tiny.\n\n12 of 12 numbers are lower and 0 higher than the paper.', 2e9, comp),
        bad=make_run(root, 'neuron-ensemble', 'bad', 'failed', True, 'hub', '', 1.5e9))
    (root/'batch-20260101-000000.json').write_text(json.dumps([
        dict(paper='neuron-ensemble', device='cpu', profile='smoke', seconds=3.0, status='failed',
             error=f"neuron-ensemble run failed in cell 3 (ValueError: bad slice); partial outputs kept in {made['bad']}"),
        dict(paper='multiscale-resnet', device='cuda', profile='quick', seconds=0.1, status='failed', error="device='cuda' but no CUDA GPU is visible")]))
    return root, made


def test_summary_grid_matches_run_folders(runs, tmp_path):
    root, made = runs
    assert cli.main(['report', '--runs-dir', str(root), '--out', str(tmp_path/'rep'/'index.html'), '--latest', '1']) == 0
    page = tmp_path/'rep'/'index.html'
    rows = summary_rows(page)
    assert page.read_text().index('class="summary"') < page.read_text().index('<section')     # the grid opens the page
    by_run = {r['run']: r for r in rows if r['run']}
    assert set(by_run) == {d.name for d in made.values()}                                        # one row per run folder
    for name, d in made.items():
        st, prov = json.loads((d/'status.json').read_text()), json.loads((d/'provenance.json').read_text())
        r = by_run[name]
        assert (r['paper'], r['profile'], r['device'], r['status']) == (d.parent.name, 'smoke', 'cpu', st['status'])
        assert r['data'] == ('synthetic' if prov['synthetic'] else 'real') and r['weights'] == prov['weights']['source']
    assert by_run['new']['verdict'] == 'not a test of the paper: 12 of 12 numbers are lower and 0 higher than the paper.'
    assert by_run['old']['verdict'] == '1 of 4 reported numbers are reproduced within ±0.02.'
    assert by_run['bad']['verdict'] == 'ValueError: bad slice' and by_run['bad']['batch'] == 'batch-20260101-000000.json'
    lone = [r for r in rows if not r['run']]                                                     # the batch row without a folder
    assert len(lone) == 1 and lone[0]['paper'] == 'multiscale-resnet' and lone[0]['status'] == 'failed' and 'CUDA' in lone[0]['verdict']
    assert [r['paper'] for r in rows] == ['multiscale-resnet', 'neuron-ensemble', 'iconvnext', 'iconvnext']
    assert by_run['new']['href'] == '#run-iconvnext-new' and by_run['old']['href'] == '../runs/iconvnext/old'   # --latest 1


def test_latest_and_charts(runs, tmp_path):
    root, made = runs
    page = tmp_path/'index.html'
    assert cli.main(['report', '--runs-dir', str(root), '--out', str(page), '--latest', '2']) == 0
    text = page.read_text()
    assert 'id="run-iconvnext-old"' in text and 'id="run-iconvnext-new"' in text and 'older run(s)' not in text
    assert text.count('class="chart"') == 1 and (tmp_path/'plotly.min.js').stat().st_size > 100_000   # under the comparison table
    assert '"error_y":{"array":[0.01,0.02]' in text.replace(' ', '')                                    # sd over seeds
    assert cli.main(['report', '--runs-dir', str(root), '--out', str(page), '--latest', '0']) == 2


def test_report_renders_results_folder(tmp_path):
    "`medrepro report --runs-dir results` shows every kept run with its status and verdict."
    kept = [d for d in (ROOT/'results').glob('*/*') if (d/'params.json').exists()]
    if not kept: pytest.skip('no kept runs in results/')
    out = tmp_path/'index.html'
    assert cli.main(['report', '--runs-dir', str(ROOT/'results'), '--out', str(out)]) == 0
    rows = {(r['paper'], r['run']): r for r in summary_rows(out)}   # one run name (quick-standin-real) serves every paper
    assert len(rows) == len(kept)
    for d in kept:
        row = rows[(d.parent.name, d.name)]
        assert row['status'] == json.loads((d/'status.json').read_text())['status']
        verdict = (d/'verdict.md').read_text() if (d/'verdict.md').exists() else ''
        assert row['verdict'] and row['verdict'].split(': ')[-1][:30] in verdict
