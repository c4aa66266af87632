"""Issue 22: the report never stops on what a run folder holds. Run folders are built by hand with `Run.save_table`,
the writer every paper uses, holding every kind of table the four study modules save (same names, shapes and cell
kinds as in results/*/quick-standin-real), then `medrepro report` renders them: text cells ("not measured") are shown
as text and left out of the charts, and a file that cannot be read is named on its run's card while the rest renders.
No kernel, no papermill: seconds."""
import ast, html, json, re
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from medrepro import cli
from medrepro.runs import start_run
from medrepro.verdict import compare_with_paper

ROOT = Path(__file__).resolve().parents[1]


def T(rows:dict, name=None)->pd.DataFrame:
    "A table from {row: {column: value}}, its index named `name`."
    return pd.DataFrame.from_dict(rows, orient='index').rename_axis(name)


def claims()->pd.DataFrame:
    "paper_claims as study_iconvnext.claims writes it, with a '±' cell and an empty cell besides the 'not measured' ones."
    got = {'ICN-T validation loss, first epoch': 1.329, 'ICN-T validation loss, after six epochs': np.nan,
           'ICN-T training loss, final': 1.343, 'ICN-T F1, lowest class': .5, 'ICN-T AUC, NonDemented': .7}
    t = compare_with_paper(pd.DataFrame({'value': got}), 'iconvnext', 'claims').astype({'value reproduced': object})
    t = t.fillna({'value reproduced': 'not measured'})
    t.loc['ICN-T F1, lowest class', 'value reproduced'] = '0.830 ± 0.010'
    t.loc['ICN-T AUC, NonDemented', 'value reproduced'] = ''
    return t


def compared(paper, table, rows, metrics, sd=False, **extra)->pd.DataFrame:
    "A `compare_with_paper` table for `rows` (made-up numbers; `sd`: mean ± sd cells), with `extra` columns."
    rep = pd.DataFrame(np.linspace(.3, .6, len(rows) * len(metrics)).reshape(len(rows), len(metrics)), index=rows, columns=metrics)
    t = compare_with_paper(rep, paper, table, sd=rep * 0 + .01 if sd else None)
    for k, v in extra.items(): t[k] = v
    return t


PER_CLASS = T({c: dict(precision=.4, recall=.7, f1=.5, support=36, auroc=.75) for c in ('MildDemented', 'ModerateDemented')})
TABLES = {   # paper -> {table name: (table, caption)}; the kinds and names that the study modules save
    'iconvnext': {
        'class_balance': (T({c: {'images (folder)': 761, 'subjects (folder)': 24, 'images (subset)': 182, 'subjects (subset)': 24,
                                 'paper subset': 182} for c in ('MildDemented', 'ModerateDemented')}), 'Images and subjects per class'),
        'splits': (T({'train images': dict(slice=541, subject=516), 'valid images': dict(slice=78, subject=111)}), 'Slice-level vs subject split'),
        'table1': (compared('iconvnext', 'table1', ['ICN-T', 'CN-T'], ['accuracy', 'precision', 'recall', 'f1'], sd=True),
                   'Table 1: test metrics beside the paper'),
        'learning': (T({'ICN-T': dict(accuracy=.5, trivial_accuracy=.45, margin=.05, noise_bound=.08, one_class=False, beats_trivial=False)}),
                     'Test accuracy against the trivial predictor'),
        'icn_t_steps': (pd.DataFrame([dict(acc=.5, ce=1.32, fs=.53, fnorm=1., spread=.53, pred_classes=3.)] * 2).rename_axis('step'), 'ICN-T steps'),
        'fig4_per_class': (pd.concat({'ICN-T, lr 0.001, 3 ep': PER_CLASS, 'CN-T, lr 0.001, 3 ep': PER_CLASS}, names=['model', None]),
                           'Per-class precision, recall, F1, support, AUROC (test)'),
        'paper_claims': (claims(), "The paper's numbers outside Table 1 beside this run's (not measured: the run has no such quantity)"),
        'efficiency': (T({'ICN-T': {'parameters (M)': 4.85, 'CPU latency ms/image @224px': 71.36, 'train time (s, all epochs)': 340.06}}),
                       'Model size and CPU speed (2 threads)'),
        'leakage': (T({f'{s} split': dict(accuracy=.73, f1_macro=.62, trivial_accuracy=.5, test_subjects=172.) for s in ('slice', 'subject')}),
                    'Slice- vs subject-disjoint split'),
        'variants': (T({'Base CNN lr=0.005, 8 epochs': dict(paper_panel='-', accuracy=.51, f1=.41, accuracy_paper_table1=.8364)}),
                     "The paper's learning-rate / epoch variants"),
        'ablation': (T({'ICN-T (GAP+GMP, SE, L_fs)': dict(accuracy=.461, f1=.3646), 'GAP only': dict(accuracy=.4545, f1=.2841)}),
                     'Ablation of ICN-T (3 epochs each, slice split, test)'),
        'head_learning': (T({'ICN-T': dict(accuracy=.6, trivial='majority class', trivial_accuracy=.45, margin=.15, lo=.05, hi=.25,
                                           learns=True, one_answer=False, sentence='ICN-T beats the majority class by 0.15 [0.05, 0.25].')}),
                          'Each head on frozen features against the best trivial predictor'),
        'claims': (T({'icn-t-beats-cn-t': {'claim': 'ICN-T is more accurate than CN-T', 'paper': '0.891 vs 0.824', 'ours': '+0.03 [-0.01, 0.07]',
                                           'decision': 'undecided', 'what would decide it': '≥ 400 subjects', 'sentence': 'Not decided.'}}),
                   "The paper's claims, decided on frozen stand-in features"),
        'collapse': (T({i: dict(setting=s, seed=0, steps=68, ce_start=1.33, ce_end=1.2, lfs_term_start=11.1, lfs_term_end=.05, length_start=19.3,
                                length_end=1.2, balanced_accuracy=.25, top_class_share=1., collapsed=True) for i, s in enumerate(('attended', 'no L_fs'))}),
                     'The collapse table, one fine-tune per row'),
        'collapse_summary': (T({s: dict(seeds=5, collapsed=5, steps=68., ce_start=1.33, lfs_term_start=11.1, balanced_accuracy=.25, top_class_share=1.)
                                for s in ('attended', 'normalised', 'no L_fs')}, 'setting'), 'The collapse table by setting')},
    'multiscale-resnet': {
        'table1': (compared('multiscale-resnet', 'table1', ['VGG', 'ResNet', 'Multi-scale ResNet'], ['accuracy', 'recall', 'precision', 'f1'],
                            sd=True, **{'auroc reproduced': [.49, .66, .57, np.nan, np.nan, np.nan],
                                        'start weights': ['random (no offline weights)', 'package', 'package', '', '', '']}),
                   'Table 1 (multilabel, 1 seed(s)): paper vs reproduced (test split)'),
        'table1_micro_auroc': (T({'VGG': {'mean AUROC': '0.487 ± 0.000', 'exact-match accuracy': '0.000 ± 0.000'}}), 'Micro-averaged scores'),
        'per_label_auroc': (T({'Atelectasis': {'VGG': .521, 'ResNet': .659, 'test positives': 17}}), 'Test AUROC per label'),
        'ablation_scales': (T({'ResNet': {'accuracy': .906, 'input sides (px)': '64'},
                               'Multi-scale ResNet': {'accuracy': .8, 'input sides (px)': '32/64/96 (upsampled)'}}), 'Single- vs multi-scale ResNet'),
        'class_balance': (T({'images': dict(train=613, valid=52, test=135), 'patients': dict(train=138, valid=20, test=40)}), 'Images per split')},
    'crossattn-fusion': {
        'table1': (compared('crossattn-fusion', 'table1', ['LSTM-Attention / COCO', 'Proposed / COCO'], ['BLEU-1', 'BLEU-2', 'CIDEr', 'METEOR']),
                   'Table 1 (captioning, x100) beside the paper'),
        'table1_extra': (T({'Proposed': {'BLEU-3': 13.2, 'BLEU-4': 7.6, 'ROUGE-L': 36.1}}), 'Scores the paper does not report'),
        'greedy_vs_beam': (T({'greedy': {'BLEU-1': 46.2, 'CIDEr': 11.1}, 'beam': {'BLEU-1': 46.3, 'CIDEr': 12.1}}), 'Greedy vs beam-search decoding'),
        'caption_examples': (T({249025: dict(reference='An orange rose, "in a vase", filled with water.', Proposed='a table with a table')}),
                             "First five test images: one reference and each model's caption"),
        'medpix_captioning': (T({'Proposed / MedPix 2.0': {'BLEU-1': 3.2, 'CIDEr': 7.7}}), 'MedPix 2.0 captioning (x100)'),
        'table2': (compared('crossattn-fusion', 'table2', ['LSTM-Attention / COCO', 'Proposed / COCO'], ['Top-1', 'Top-5']),
                   'Table 2 (matching, %) beside the paper'),
        'table2_both_directions': (T({'Proposed': {'i2t_R@1': 6., 't2i_R@1': 8., 'n_images': 50.}}), 'Recall@K (%) in both directions'),
        'learning_check': (T({'accuracy': {'Proposed, text→image top-1': .08}, 'trivial_accuracy': {'Proposed, text→image top-1': .02}}),
                           'Proposed model against the trivial predictor (chance)'),
        'table3': (T({'Full Model': {'CIDEr paper': 145.3, 'CIDEr reproduced': 12.1, 'Δ vs Full Model paper': 0., 'Δ vs Full Model reproduced': 0.},
                      'Remove CBAM Module': {'CIDEr paper': 140., 'CIDEr reproduced': 17.6, 'Δ vs Full Model paper': -5.3,
                                             'Δ vs Full Model reproduced': 5.5}}, 'model'), 'Table 3 (ablation, CIDEr x100)'),
        'table3_loss_control': (T({'Full Model (L_SEQ only)': {'CIDEr': 12.1, 'Δ vs joint loss': 0.}}), 'Control: the full model with L_SEQ alone'),
        'table3_noise': (T({'Remove CBAM Module': {'Δ vs Full Model paper': -5.3, 'Δ vs Full Model reproduced': 5.5, 'noise bound (±)': 5.5,
                                                   'beyond noise': False}}), "Each ablation's difference with its noise bound"),
        'vqa_rad_official_split_leakage': (T({'test images': {'official split': 162}}), 'Images shared by the official VQA-RAD files'),
        'vqa_rad_accuracy': (T({'Majority answer': dict(closed=48.6, open=1.7, n_closed=220.)}), 'VQA-RAD accuracy (%)'),
        'vqa_v2_accuracy': (T({'Proposed': dict(data='VQA v2 (val2014), 40 test questions', overall=31.2, n_questions=40)}, 'model'),
                            'VQA v2 accuracy (%); the paper reports no VQA v2 number')},
    'neuron-ensemble': {
        'splits': (T({'images': dict(train=7, valid=2, test=2), 'shsy5y': dict(train=3, valid=1, test=1)}), 'Images per split and cell type'),
        'history': (T({0: dict(model='yolox', epoch=1, train_loss=9.39), 1: dict(model='yolox', epoch=2, train_loss=8.1)}).set_index('model'),
                    'Training history'),
        'table1': (T({'Mask R-CNN + NMS': {'public paper': .283, 'private paper': .287, 'test reproduced': .001, 'test vs public Δ': -.282}}, 'model'),
                   'Competition score beside the paper'),
        'test_scores': (T({'Mask R-CNN + NMS': dict(score=.0012, AP=.0002, instances_per_image=140.)}), 'All test images'),
        'fusion_ablation': (T({'no fusion: Mask R-CNN + NMS': dict(configuration='Mask R-CNN + NMS', valid_score=np.nan, test_score=.001)}),
                            'Fusion ablation (paper Section 3.4)'),
        'learning': (T({'Mask R-CNN + NMS': dict(score=.0012, trivial_score=0., predicts_nothing=False, beats_trivial=False)}),
                     'Test score against the trivial predictor'),
        'per_cell_type': (T({'cort': {'images': 2, 'Mask R-CNN + NMS': .0012}}, 'type'), 'Competition score per cell type'),
        'ensemble_weights': (T({0: dict(yolox=0., maskrcnn=.25, upernet=.75, score=.0023)}), 'Ensemble weight grid')},
}
for _p in ('multiscale-resnet', 'crossattn-fusion', 'neuron-ensemble'): TABLES[_p]['claims'] = TABLES['iconvnext']['claims']   # one `decide.claims_table` shape
TABLES['iconvnext']['claims_finetuned'] = (TABLES['iconvnext']['claims'][0], "The paper's rankings among Table 1's models, decided on the fine-tuned models")
TABLES['iconvnext']['finetuned_learning'] = (TABLES['iconvnext']['head_learning'][0], 'Each fine-tuned model against the best trivial predictor')
TABLES['neuron-ensemble']['image_scores'] = (T({0: dict(image='synth0001', seed=0, configuration='Mask R-CNN + NMS', score=0., dice=0., instances=17)}),
                                             'Per test image, configuration and seed: competition score, foreground Dice, instances')
TABLES['crossattn-fusion'].update(
    claims_learning=(T({0: dict(task='matching', model='Proposed', trivial='the same caption first for every image', trivial_score=1.3, margin=0.,
                                lo=-3.9, hi=3.9, learns=False, one_answer=False, sentence='Proposed does not beat it.')}),
                     'Each matcher and VQA model against its best trivial predictor'),
    image_dependence=(T({'Proposed': dict(distinct=1., changed=0., gain=0., lo=0., hi=0., n_images=77, n_seeds=1, uses_image=False,
                                          sentence='Proposed writes the same captions whatever the image.')}),
                      "Does each captioner's caption change with the image?"))


def make_run(runs:Path, paper:str, name:str, tables:dict)->Path:
    "A finished run folder of `paper` holding `tables`, written by `Run.save_table` as the notebooks write them."
    run = start_run(paper, 'smoke', dict(seeds=[0], device='cpu'), run_dir=runs/paper/name)
    run.record('synthetic', True)
    for k, (t, cap) in tables.items(): run.save_table(t, k, cap)
    run.log_metrics(dict(accuracy=.5)); run.save_note('0 of 4 reported numbers are reproduced within ±0.02.')
    (run.dir/'status.json').write_text(json.dumps(dict(status='done')))
    return run.dir


def section(page:str, run_dir:Path)->str:
    "The HTML section of one run."
    start = page.index(f'<section id="run-{run_dir.parent.name}-{run_dir.name}">')
    return page[start:page.index('</section>', start)]


def block(sec:str, caption:str)->str:
    "The part of a run's section under the table titled `caption` (its table and its chart)."
    start = sec.index(f'<h4>{html.escape(caption)}</h4>')
    end = sec.find('<h4>', start + 4)
    return sec[start:end if end > 0 else len(sec)]


def chart_labels(part:str)->list:
    "The x labels of the chart in `part` (plotly writes '/' as \\u002f: read them as JSON)."
    return [json.loads(m) for m in re.findall(r'"x":(\[[^\]]*\])', part)]


@pytest.fixture
def report(tmp_path):
    "Every paper's run with every table kind, one iconvnext run with broken files, and `medrepro report` over them."
    runs = tmp_path/'runs'
    good = {p: make_run(runs, p, 'all-tables', t) for p, t in TABLES.items()}
    bad = make_run(runs, 'iconvnext', 'broken', {'table1': TABLES['iconvnext']['table1']})
    (bad/'tables'/'malformed.csv').write_text('model,a,b\nICN-T,1,2,3,4\n')   # more fields than the header
    (bad/'tables'/'empty.csv').write_text(''); (bad/'tables'/'binary.csv').write_bytes(b'\xff\xfe\x00\x81,\x00')
    (bad/'metrics.json').write_text('{"accuracy": 0.5'); (bad/'status.json').write_text('[1, 2]')
    (bad/'notes'/'verdict.md').write_bytes(b'3 of 4 reported numbers \xff')
    page = tmp_path/'report'/'index.html'
    assert cli.main(['report', '--runs-dir', str(runs), '--out', str(page)]) == 0
    return page.read_text(), good, bad


def test_every_table_kind_renders(report):
    "Each table of each paper is on its run's card, under its caption, and no card names an unreadable file."
    page, good, _ = report
    for paper, tables in TABLES.items():
        sec = section(page, good[paper])
        assert 'class="problem"' not in sec
        for name, (t, cap) in tables.items(): assert f'<h4>{html.escape(cap)}</h4><table' in sec, (paper, name)
    assert 'a table with a table' in section(page, good['crossattn-fusion'])   # a text table is a table like any other


def test_text_cells_are_text_and_out_of_the_chart(report):
    "paper_claims: 'not measured' is shown as text and has no bar; the '±' cell is a bar with its error; the empty cell is blank."
    page, good, _ = report
    part = block(section(page, good['iconvnext']), TABLES['iconvnext']['paper_claims'][1])
    assert part.count('<td>not measured</td>') == len(TABLES['iconvnext']['paper_claims'][0]) - 4   # every claim the run lacks
    assert '<td>0.830 ± 0.010</td>' in part and '<td></td>' in part
    labels = chart_labels(part)
    assert len(labels) == 2 and labels[0] == labels[1]   # paper and reproduced bars over the same pairs
    assert 'value / ICN-T validation loss, first epoch' in labels[0] and 'value / ICN-T F1, lowest class' in labels[0]
    assert 'value / ICN-T AUC, NonDemented' in labels[0]   # empty reproduced cell: the paper's bar stands alone
    assert not [x for x in labels[0] if 'after six epochs' in x or 'validation accuracy' in x]   # the 'not measured' rows
    i = labels[0].index('value / ICN-T F1, lowest class')
    errors = json.loads(re.search(r'"error_y":\{"array":(\[[^\]]*\])', part)[1])
    assert errors[i] == pytest.approx(.01)


def test_unreadable_files_named_on_their_card(report):
    "A malformed, empty or undecodable CSV and unreadable JSON are named on their run's card; the rest of it, and the other runs, render."
    page, good, bad = report
    sec = section(page, bad)
    problems = re.search(r'<div class="problem">(.*?)</div>', sec, re.S)[1]
    for name in ('tables/malformed.csv: ParserError', 'tables/empty.csv: EmptyDataError', 'tables/binary.csv: UnicodeDecodeError',
                 'metrics.json: JSONDecodeError', 'status.json: not a JSON object'):
        assert f'<li>{name}' in problems, name
    assert f'<h4>{html.escape(TABLES["iconvnext"]["table1"][1])}</h4><table' in sec and 'status unknown' in sec   # the good table still shows
    assert '3 of 4 reported numbers \ufffd' in sec
    assert all(f'id="run-{p}-all-tables"' in page for p in TABLES)
    row = re.search(r'<tr><td>iconvnext</td>.*?broken</a>', page)[0]   # the summary row says which files it could not read
    got = re.search(r'unreadable: ([^;<]*); 3 of 4 reported numbers', row)[1]
    assert set(got.split(', ')) == {'metrics.json', 'status.json'}


def test_docs_builds_over_the_same_runs(report, tmp_path, monkeypatch):
    "`medrepro docs` reads run folders the same way: the broken run does not stop the site (no notebooks: a tiny nbs/)."
    import medrepro.report as rep
    (tmp_path/'nbs'/'labs').mkdir(parents=True)
    monkeypatch.setattr(rep, 'project_root', lambda: tmp_path)
    assert cli.main(['docs', '--runs-dir', str(tmp_path/'runs'), '--out', str(tmp_path/'site')]) == 0
    assert '<li>tables/malformed.csv: ParserError' in (tmp_path/'site'/'report.html').read_text()


def test_fixture_holds_every_table_the_studies_save():
    "A table kind a study module starts to save must join TABLES, so that this test keeps feeding the report every kind."
    modules = {'iconvnext': ['study_iconvnext'], 'multiscale-resnet': ['study_multiscale'], 'crossattn-fusion': ['study_fusion', 'fusion_results'],
               'neuron-ensemble': ['study_cells']}
    for paper, mods in modules.items():
        trees = [ast.parse((ROOT/'medrepro'/f'{mod}.py').read_text()) for mod in mods]
        saved = {n.args[1].value for tree in trees for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'attr', '') == 'save_table'
                 and len(n.args) > 1 and isinstance(n.args[1], ast.Constant)}
        assert saved and saved <= set(TABLES[paper]), (paper, saved - set(TABLES[paper]))
