"""Issue 22: four inputs that used to fail late, or write where they should not, are refused by the command line before
anything starts: exit 2, one line naming the value and what would be accepted, no kernel, no run or external folder.
Each test also shows that the check lets the right value through, so it cannot pass by refusing everything."""
import json, shutil
from pathlib import Path
import pytest
import timm, torch
from medrepro import cli
from medrepro.registry import DATASETS

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT/'results'/'iconvnext'/'quick-standin-real'   # a kept result: params, tables, figures, but no checkpoints


@pytest.fixture
def no_kernel(monkeypatch):
    "Any papermill execution (a kernel start) fails the test."
    def started(*a, **k): raise AssertionError('a kernel was started')
    monkeypatch.setattr(cli.pm, 'execute_notebook', started)


def refused(capsys, argv, *names):
    "`medrepro ARGV` exits 2 with exactly one stderr line, 'medrepro: error: ...', naming each of `names`; that line."
    assert cli.main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    lines = [l for l in err.splitlines() if l.strip()]
    assert out == '' and len(lines) == 1 and lines[0].startswith('medrepro: error: '), err
    for n in names: assert n in lines[0], f'{n!r} not in {lines[0]!r}'
    return lines[0]


def run(tmp_path, *extra):
    return ['run', 'iconvnext', '--profile', 'smoke', '--device', 'cpu', '--runs-dir', tmp_path/'runs', *extra]


def test_unknown_backbone(tmp_path, capsys, no_kernel):
    "timm's `RuntimeError: Unknown model` used to come from cell 8, with a run folder left behind."
    refused(capsys, run(tmp_path, '-p', 'backbone=resnet_does_not_exist'),
            "backbone='resnet_does_not_exist' is not a timm model name", 'timm.list_models()', 'resnet18')
    assert not (tmp_path/'runs').exists()
    nb = cli.paper_notebook('iconvnext')
    assert cli.check_params(nb, {'backbone': 'resnet18'}, 'smoke') == {'backbone': 'resnet18'}   # a timm name passes


def test_weights_file_that_is_no_checkpoint(tmp_path, capsys, no_kernel):
    "`-p weights_file=/etc/passwd` used to fail in cell 8 ('unreadable weights file (IndexError ...)') after the kernel started."
    passwd = tmp_path/'passwd'; passwd.write_text('root:x:0:0:root:/root:/bin/bash\n')   # /etc/passwd, on any machine
    refused(capsys, run(tmp_path, '-p', f'weights_file={passwd}'),
            f"weights_file={passwd}: unreadable weights file", "expected a state_dict of timm model 'tf_efficientnet_lite0'")
    other = tmp_path/'resnet10t.pth'; torch.save(timm.create_model('resnet10t', num_classes=0).state_dict(), other)
    refused(capsys, run(tmp_path, '-p', f'weights_file={other}'), f"weights_file={other}: weights do not fit EfficientNet")
    assert not (tmp_path/'runs').exists()
    good = tmp_path/'lite0.pth'; torch.save(timm.create_model('tf_efficientnet_lite0', num_classes=0).state_dict(), good)
    nb = cli.paper_notebook('iconvnext')
    assert cli.check_params(nb, {'weights_file': str(good)}, 'smoke') == {'weights_file': str(good)}   # one that fits passes


def test_evaluate_a_kept_result_writes_nothing(tmp_path, capsys, no_kernel):
    "`medrepro evaluate results/iconvnext/quick-standin-real` used to write external/ into the committed results first."
    if not (KEPT/'params.json').exists(): pytest.skip('no kept iconvnext result')
    kept = shutil.copytree(KEPT, tmp_path/'kept')   # a copy: a regression must not write into the committed folder
    before = sorted(p.relative_to(kept) for p in kept.rglob('*'))
    (tmp_path/'copy2').mkdir()
    refused(capsys, ['evaluate', kept, '--data-root', tmp_path/'copy2'], f'{kept}: no checkpoints/*/best.pt', 'runs/<paper>/<run-id>')
    assert sorted(p.relative_to(kept) for p in kept.rglob('*')) == before and not (kept/'external').exists()
    best = kept/'checkpoints'/'ICN-T-seed0'/'best.pt'; best.parent.mkdir(parents=True); best.touch()
    assert cli.check_eval_from(kept) == kept   # a run folder with its checkpoints passes


def test_renamed_class_folder_is_named(tmp_path, capsys, no_kernel):
    "A class folder renamed `Moderate_Demented` used to give \"class 'ModerateDemented' has no images\" from inside the run."
    classes = tmp_path/'data'/DATASETS['alzheimer-mri-4class']['folder']/'Alzheimer_MRI_4_classes_dataset'
    for c in ('MildDemented', 'Moderate_Demented', 'NonDemented', 'VeryMildDemented'):
        (classes/c).mkdir(parents=True); (classes/c/'1.jpg').touch()   # the check reads no image
    refused(capsys, run(tmp_path, '--data-root', tmp_path/'data'), "'Moderate_Demented' is no class folder",
            'expected the class folders MildDemented, ModerateDemented, NonDemented, VeryMildDemented')
    assert not (tmp_path/'runs').exists()
    (classes/'Moderate_Demented').rename(classes/'ModerateDemented')
    cli.check_data('iconvnext', tmp_path/'data')   # the Kaggle layout passes
