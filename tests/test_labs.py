"""Every teaching lab runs end to end in papermill at a small size, with the instructor's expected answers as the
student's predictions: a lab whose teaching claim no longer holds (its self-check fails) turns this test red (marker
`lab`, test-all only). The labs' "Open in Colab" link and install line follow the repository of settings.ini (fast)."""
import configparser, json, re
from pathlib import Path
import papermill as pm
import pytest
from medrepro.teach import instructor_answers

ROOT = Path(__file__).resolve().parents[1]
# lab -> (parameters that make it small, prefix of its answers' key: the instructor file keeps answers per size and data)
LABS = {'segmentation-metric': (dict(max_images=2), ''), 'captioning-metrics': ({}, ''),
        'disease-or-person': (dict(subjects_per_class=8, size=64), 'smoke-'), 'rare-findings': ({}, '')}


@pytest.mark.lab
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


@pytest.mark.lab
def test_a_wrong_prediction_turns_the_check_red(tmp_path):
    lab = 'segmentation-metric'
    wrong = dict(instructor_answers(lab)['synthetic'], wider_1px=0.95)
    with pytest.raises(pm.PapermillExecutionError, match='wider_1px: your prediction 0.95'):
        pm.execute_notebook(str(ROOT/'nbs'/'labs'/f'{lab}.ipynb'), str(tmp_path/'out.ipynb'), kernel_name='python3', cwd=str(ROOT),
                            parameters=dict(max_images=1, data_root=str(tmp_path/'no-data'), predictions=wrong), progress_bar=False)


def test_colab_link_and_install_line_follow_settings_ini():
    """Each lab's "Open in Colab" link opens that lab in the repository of settings.ini (`git_url`, `branch`), its install
    line installs from there, and the lab says that both need that repository to be public."""
    s = configparser.ConfigParser(); s.read(ROOT/'settings.ini'); s = s['DEFAULT']
    repo = s['git_url'].removesuffix('.git').rstrip('/')
    assert repo.startswith('https://github.com/'), repo
    labs = sorted((ROOT/'nbs'/'labs').glob('*.ipynb'))
    assert {p.stem for p in labs} == set(LABS)
    for nb in labs:
        text = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown')
        colab = re.findall(r'https://colab\.research\.google\.com/[^\s)`"]+', text)
        assert colab == [f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/{s['branch']}/nbs/labs/{nb.name}"], (nb.name, colab)
        assert re.findall(r'pip install git\+([^\s`"]+)', text) == [repo], nb.name
        said = re.findall(r'only once the repository \((\S+), the `git_url` of [^)]*\) is public', text)
        assert said == [repo], f'{nb.name} does not say that the link needs {repo} to be public'
