"""multiscale-resnet paper notebook: smoke runs through `medrepro.cli.run_paper` on synthetic data and on the real sample."""
import json
from pathlib import Path
import pandas as pd
import pytest
from medrepro.cli import run_paper
from medrepro.core import MedreproError

PAPER = 'multiscale-resnet'
ROWS = ['VGG', 'Inception', 'DenseNet', 'EfficientNet', 'ResNet', 'ResNet (single-scale)']
METRICS = ['accuracy', 'recall', 'precision', 'f1', 'auroc']


def _json(run, name): return json.loads((run/name).read_text())


def _check_run(run:Path, synthetic:bool):
    "What every smoke run must leave behind, with numbers that make sense."
    assert _json(run, 'status.json')['status'] == 'done'
    prov = _json(run, 'provenance.json')
    assert prov['data']['synthetic'] is synthetic
    split = prov['split']
    assert split['train'] > 0 and split['valid'] > 0 and split['test'] > 0
    assert split['train'] + split['valid'] + split['test'] == prov['data']['images']
    assert set(prov['weights']) >= set(ROWS) and all(w['source'] in ('random', 'cache', 'file', 'hub') for w in prov['weights'].values())
    t1 = pd.read_csv(run/'tables'/'table1.csv', index_col=0)
    assert set(ROWS) <= set(t1.index)
    assert t1.loc['ResNet', 'f1 paper'] == pytest.approx(0.86) and t1.loc['VGG', 'accuracy paper'] == pytest.approx(0.78)
    m = _json(run, 'metrics.json')
    for row in ROWS:
        for k in METRICS[:4]: assert 0 <= m['table1'][row][k] <= 1, (row, k, m['table1'][row][k])
    bal = pd.read_csv(run/'tables'/'class_balance.csv', index_col=0)
    assert bal.loc['images'].sum() == prov['data']['images']
    for fig in ('fig2_accuracy_per_epoch', 'roc_multiscale_resnet', 'gradcam_multiscale_resnet'):
        assert (run/'figures'/f'{fig}.html').exists(), fig
    assert (run/'tables'/'ablation_scales.csv').exists() and (run/'tables'/'per_label_auroc.csv').exists()
    assert (run/'checkpoints'/'ResNet-seed0'/'best.pt').exists()
    return (run/'notes'/'verdict.md').read_text()


def test_smoke_synthetic(tmp_runs, tmp_path):
    "With no data root, the notebook trains all six models on the generated stand-in and says so loudly."
    run = run_paper(PAPER, 'smoke', 'cpu', data_root=tmp_path/'nodata', synthetic='auto', runs_dir=tmp_runs)
    verdict = _check_run(run, synthetic=True)
    assert 'NOT comparable' in verdict and 'Synthetic' in verdict
    # the generated copy has several films per patient, so the patient-wise split is not a trivial item split
    prov = _json(run, 'provenance.json')
    assert prov['data']['patients'] < prov['data']['images']


@pytest.mark.real
def test_smoke_real_sample(shared_data, tmp_runs):
    "On the real 64 px NIH sample: real data, patient-wise split, and the report says it is not comparable."
    run = run_paper(PAPER, 'smoke', 'cpu', data_root=shared_data, synthetic='no', runs_dir=tmp_runs)
    verdict = _check_run(run, synthetic=False)
    prov = _json(run, 'provenance.json')
    assert prov['data']['image_side'] == 64 and prov['split']['how'].startswith('patient-wise')
    assert '64px' in verdict and 'not comparable' in verdict


def test_single_label_framing(tmp_runs, tmp_path):
    "The single-label framing (15 classes, rarest finding wins) runs end to end with class-weighted cross-entropy."
    run = run_paper(PAPER, 'smoke', 'cpu', data_root=tmp_path/'nodata', runs_dir=tmp_runs,
                    params=dict(framing='single-label', models=['ResNet (single-scale)', 'ResNet']))
    per_class = pd.read_csv(run/'tables'/'per_label_auroc.csv', index_col=0)
    assert per_class.index[0] == 'No Finding' and len(per_class) == 15
    assert 'Framing `single-label`' in (run/'notes'/'verdict.md').read_text()


def test_bad_framing_is_named(tmp_runs, tmp_path):
    "An unknown framing fails the run with one message naming the parameter."
    with pytest.raises(MedreproError, match='framing'):
        run_paper(PAPER, 'smoke', 'cpu', data_root=tmp_path/'nodata', runs_dir=tmp_runs, params=dict(framing='binary'))
