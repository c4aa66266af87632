"""Every teaching lab runs end to end in papermill at a small size, with the instructor's expected answers as the
student's predictions: a lab whose teaching claim no longer holds (its self-check fails) turns this test red."""
import json
from pathlib import Path
import papermill as pm
import pytest
from medrepro.teach import instructor_answers

ROOT = Path(__file__).resolve().parents[1]
# lab -> (parameters that make it small, prefix of its answers' key: the instructor file keeps answers per size and data)
LABS = {'segmentation-metric': (dict(max_images=2), ''), 'captioning-metrics': ({}, ''),
        'disease-or-person': (dict(subjects_per_class=8, size=64), 'smoke-'), 'rare-findings': ({}, '')}


@pytest.mark.parametrize('lab', sorted(LABS))
def test_lab_runs_with_the_instructor_answers(lab, tmp_path, shared_data_or_none):
    small, prefix = LABS[lab]
    kind = 'real' if shared_data_or_none else 'synthetic'
    params = dict(small, data_root=str(shared_data_or_none or tmp_path/'no-data'), predictions=instructor_answers(lab)[prefix + kind])
    pm.execute_notebook(str(ROOT/'nbs'/'labs'/f'{lab}.ipynb'), str(tmp_path/f'{lab}.ipynb'), parameters=params,
                        kernel_name='python3', cwd=str(ROOT), progress_bar=False)
    out = json.loads((tmp_path/f'{lab}.ipynb').read_text())
    text = json.dumps([o for c in out['cells'] for o in c.get('outputs', [])])
    assert text.count('\\u2705') == len(params['predictions'])   # one passed self-check per exercise
    assert ('SYNTHETIC' in text) == (kind == 'synthetic')


def test_a_wrong_prediction_turns_the_check_red(tmp_path):
    lab = 'segmentation-metric'
    wrong = dict(instructor_answers(lab)['synthetic'], wider_1px=0.95)
    with pytest.raises(pm.PapermillExecutionError, match='wider_1px: your prediction 0.95'):
        pm.execute_notebook(str(ROOT/'nbs'/'labs'/f'{lab}.ipynb'), str(tmp_path/'out.ipynb'), kernel_name='python3', cwd=str(ROOT),
                            parameters=dict(max_images=1, data_root=str(tmp_path/'no-data'), predictions=wrong), progress_bar=False)
