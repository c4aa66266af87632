"""neuron-ensemble: the paper notebook at profile smoke, through papermill, on synthetic and on the real samples."""
import json
import numpy as np
import pandas as pd
import pytest
from medrepro.cli import run_paper
from medrepro.core import DataError
from medrepro.data_cells import SartoriusCells, DSB2018Cells, make_synthetic_sartorius, rle_encode

PAPER = 'neuron-ensemble'
ROWS = ['Mask R-CNN + NMS', 'NMS + ResNeSt + Ensemble', 'YOLOX + Mask R-CNN + UPerNet']


def _check_run(run, synthetic, cell_types):
    "What every smoke run must leave behind, whatever the data."
    assert json.loads((run/'status.json').read_text())['status'] == 'done'
    m = json.loads((run/'metrics.json').read_text())
    assert m['synthetic'] is synthetic
    assert json.loads((run/'provenance.json').read_text())['synthetic'] is synthetic
    for row in ROWS:
        for k in ('public', 'private', 'test', 'coco_AP'): assert 0.0 <= m['scores'][row][k] <= 1.0
    w = m['ensemble_weights']
    assert set(w) == {'yolox', 'maskrcnn', 'upernet'} and abs(sum(w.values()) - 1) < 1e-6
    t1 = pd.read_csv(run/'tables'/'table1.csv', index_col=0)
    assert t1.loc['YOLOX + Mask R-CNN + UPerNet', 'public paper'] == pytest.approx(0.356)
    assert t1.loc['Mask R-CNN + NMS', 'private paper'] == pytest.approx(0.287)
    per_type = pd.read_csv(run/'tables'/'per_cell_type.csv', index_col=0)
    assert set(per_type.columns) - {'all'} <= set(cell_types) and 'all' in per_type.columns
    hist = pd.read_csv(run/'tables'/'history.csv')
    assert set(hist.model) == {'yolox', 'maskrcnn', 'maskrcnn_resnest', 'upernet'}   # every model trained
    assert np.isfinite(hist.train_loss).all()
    for f in ('overlays', 'ensemble_weights', 'training_loss'): assert (run/'figures'/f'{f}.html').exists()
    verdict = (run/'notes'/'verdict.md').read_text()
    assert ('NOT comparable' in verdict) == synthetic
    return m


def test_smoke_synthetic(tmp_runs):
    run = run_paper(PAPER, 'smoke', synthetic='yes', runs_dir=tmp_runs, run_id='syn')
    m = _check_run(run, True, ['shsy5y', 'astro', 'cort'])
    assert m['dataset'] == 'synthetic-sartorius'


def test_smoke_sartorius_real(shared_data, tmp_runs):
    run = run_paper(PAPER, 'smoke', data_root=shared_data, synthetic='no', runs_dir=tmp_runs, run_id='real')
    m = _check_run(run, False, ['shsy5y', 'astro', 'cort'])
    assert m['dataset'] == 'sartorius-cell-instance'


def test_smoke_dsb2018_real(shared_data, tmp_runs):
    run = run_paper(PAPER, 'smoke', data_root=shared_data, synthetic='no', runs_dir=tmp_runs, run_id='dsb',
                    params=dict(dataset='dsb2018'))
    m = _check_run(run, False, ['nucleus'])
    assert m['dataset'] == 'dsb2018-stage1'
    assert 'not comparable' in (run/'notes'/'verdict.md').read_text()


def test_synthetic_roundtrip_and_bad_rle(tmp_path):
    "The generator's CSV reads back; a corrupted run names the file and row."
    root = make_synthetic_sartorius(tmp_path/'s', n_images=3)
    cells = SartoriusCells(root)
    s = cells[0]
    df = pd.read_csv(root/'train.csv', dtype=str, keep_default_na=False)
    assert [rle_encode(m) for m in s.masks] == df[df.id == s.id].annotation.tolist()
    df.loc[1, 'annotation'] = '999999 5'
    df.to_csv(root/'train.csv', index=False)
    with pytest.raises(DataError, match=r'train.csv, row 2'): SartoriusCells(root)[0]


def test_real_readers_agree_with_provenance(shared_data):
    "Counts stated in the samples' PROVENANCE.md."
    sart = SartoriusCells(shared_data/'sartorius_cell_instance')
    assert len(sart) == 11 and len(sart.rows) == 1989
    assert pd.Series(sart.cell_types).value_counts().to_dict() == {'shsy5y': 5, 'cort': 5, 'astro': 1}
    dsb = DSB2018Cells(shared_data/'dsb2018_stage1_train', masks_from='csv')
    assert len(dsb) == 191 and len(dsb.rows) == 7206
