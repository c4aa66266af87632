"""crossattn-fusion end to end: the paper notebook at profile `smoke` through `medrepro.cli.run_paper`, on synthetic
shape scenes and on the real ../shared/data samples (COCO captions, VQA-RAD, MedPix 2.0). Each run must write every
table and figure, with the paper's numbers beside values that are in range and consistent."""
import json, time
import pandas as pd
import pytest
from medrepro.cli import run_paper

TABLES = ('table1', 'table1_extra', 'greedy_vs_beam', 'caption_examples', 'table2', 'table2_both_directions', 'table3',
          'vqa_rad_accuracy', 'vqa_rad_official_split_leakage')
FIGURES = ('valid_loss', 'table3_ablation', 'attention_coco', 'attention_vqa_rad')
MODELS = ['LSTM-Attention', 'Dual-Attention', 'M4C', 'Proposed']
ABLATION = ['Full Model', 'Remove Cross-Attention', 'Remove CBAM Module', 'Visual Features Only', 'Text Features Only']


def _read(run, name): return json.loads((run/name).read_text())


def _table(run, name): return pd.read_csv(run/'tables'/f'{name}.csv', index_col=0)


def _check_run(run):
    "Checks that hold for every smoke run, synthetic or real."
    status, metrics, prov, params = (_read(run, n) for n in ('status.json', 'metrics.json', 'provenance.json', 'params.json'))
    assert status['status'] == 'done'
    assert params['profile'] == 'smoke' and params['image_size'] == 64 and params['epochs'] == 1
    for t in TABLES: assert (run/'tables'/f'{t}.csv').exists() and (run/'tables'/f'{t}.md').exists(), t
    for f in FIGURES: assert (run/'figures'/f'{f}.html').stat().st_size > 1000, f
    t1 = _table(run, 'table1')
    assert {f'{m} / COCO' for m in MODELS} <= set(t1.index)
    assert t1.loc['Proposed / COCO', 'CIDEr paper'] == pytest.approx(145.3)
    assert t1.loc['Proposed / COCO', 'BLEU-1 paper'] == pytest.approx(82.4)
    coco = t1.loc[[f'{m} / COCO' for m in MODELS]]
    for m in ('BLEU-1', 'BLEU-2'):
        assert coco[f'{m} reproduced'].between(0, 100).all(), m
        assert (coco[f'{m} Δ'] - (coco[f'{m} reproduced'] - coco[f'{m} paper'])).abs().max() < 0.11
    assert coco['CIDEr reproduced'].ge(0).all()
    assert t1.loc['Proposed / Flickr30k'].filter(like='reproduced').isna().all()   # no Flickr30k here: left empty
    t2 = _table(run, 'table2')
    assert t2.loc['Proposed / COCO', 'Top-1 paper'] == pytest.approx(64.3)
    assert t2.loc[[f'{m} / COCO' for m in MODELS], 'Top-5 reproduced'].between(0, 100).all()
    both = _table(run, 'table2_both_directions')
    assert set(both.index) >= set(MODELS) and (both['n_images'] == both['n_texts']).all()   # 1 caption per image
    assert (both['i2t_R@5'] >= both['i2t_R@1']).all() and (both['t2i_R@5'] >= both['t2i_R@1']).all()
    t3 = _table(run, 'table3')
    assert list(t3.index) == ABLATION
    assert t3['CIDEr paper'].tolist() == [145.3, 136.8, 140.0, 121.4, 118.9]
    assert t3['CIDEr reproduced'].notna().all()
    vqa = _table(run, 'vqa_rad_accuracy')
    assert set(vqa.index) >= {'Majority answer', 'Proposed', 'Text Features Only', 'Dual-Attention', 'M4C'}
    assert vqa[['closed', 'overall']].stack().between(0, 100).all()
    n = vqa['n_closed'] + vqa['n_open']
    assert n.nunique() == 1 and n.iloc[0] > 0
    assert prov['weights']['image']['source'] == 'random'             # offline: no ImageNet weights, and the run says so
    assert prov['weights']['text']['vocab'] == 30522                   # the real MiniLM tokenizer, not a 5-token one
    verdict = (run/'notes'/'verdict.md').read_text()
    assert 'not ALBERT' in verdict and 'Not for clinical use' in verdict
    assert set(metrics['table3']) == set(ABLATION)
    return metrics, prov, verdict


def test_smoke_synthetic(tmp_runs, tmp_path):
    run = run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=tmp_path/'no-data', synthetic='auto', runs_dir=tmp_runs)
    metrics, prov, verdict = _check_run(run)
    assert metrics['synthetic'] is True and prov['synthetic'] is True and prov['data_coco']['synthetic'] is True
    assert 'NOT comparable' in verdict
    assert not (run/'tables'/'medpix_captioning.csv').exists()        # no synthetic MedPix: skipped, said so
    ex = _table(run, 'caption_examples')
    assert ex['reference'].str.contains('circle|square|triangle').all()   # the shape scenes were read back


@pytest.mark.real
def test_smoke_real(tmp_runs, shared_data):
    t0 = time.time()
    run = run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=shared_data, synthetic='no', runs_dir=tmp_runs)
    print(f'crossattn-fusion smoke on the real samples: {time.time() - t0:.0f} s')
    metrics, prov, verdict = _check_run(run)
    assert metrics['synthetic'] is False and prov['synthetic'] is False
    assert 'NOT comparable' not in verdict
    leak = _table(run, 'vqa_rad_official_split_leakage')
    assert leak['official split'].tolist() == [162, 162]               # every official test image is also in training
    mp = _table(run, 'medpix_captioning')
    assert mp.index.tolist() == ['Proposed / MedPix 2.0'] and mp['BLEU-1'].between(0, 100).all()
    assert _table(run, 'table2_both_directions')['n_images'].iloc[0] == 8   # smoke: 8 test images in the gallery
