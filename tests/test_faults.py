"""Fault tests: bad input gets one clear error naming the file or parameter, with nothing written half-way;
training survives NaNs, SIGKILL and a crash during a checkpoint write; runs are deterministic; loading is safe."""
import json, os, pickle, signal, subprocess, sys, textwrap, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from medrepro import core, data, engine
from medrepro.core import DataError, MedreproError, ParamError

ROOT = Path(__file__).resolve().parents[1]


def one_line(err, *names):
    "The error message is a single line and names each of `names`."
    msg = str(err.value if hasattr(err, 'value') else err)
    assert '\n' not in msg, f'multi-line error: {msg!r}'
    for n in names: assert str(n) in msg, f'{n!r} not named in {msg!r}'
    return msg


def files_under(p):
    return sorted(str(f.relative_to(p)) for f in Path(p).rglob('*')) if Path(p).exists() else []


# ---------------------------------------------------------------- bad input: data root, images, CSVs, folders, RLE

@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    "A cache folder of this test's own."
    monkeypatch.setenv('MEDREPRO_CACHE', str(tmp_path/'cache')); return tmp_path/'cache'


def test_missing_data_root(tmp_path, own_cache):
    "synthetic='no' and no dataset: the error names the missing folder, and no stand-in is generated."
    root = tmp_path/'nowhere'
    folder = root/data.dataset_info('alzheimer-mri-4class')['folder']
    made = []
    with pytest.raises(DataError) as e:
        data.locate_dataset('alzheimer-mri-4class', root=root, synthetic='no', make=made.append)
    one_line(e, folder)
    assert not made and not root.exists() and not (core.cache_dir()/'synthetic'/'alzheimer-mri-4class').exists()


def test_failed_generator_is_not_marked_complete(tmp_path, own_cache):
    "A synthetic generator that dies half-way leaves no '.complete' marker, so the next call regenerates."
    def broken(out):
        Path(out).mkdir(parents=True); (Path(out)/'half.png').write_bytes(b'\x89PNG'); raise RuntimeError('disk full')
    with pytest.raises(RuntimeError): data.locate_dataset('alzheimer-mri-4class', root=tmp_path, synthetic='yes', make=broken)
    out = core.cache_dir()/'synthetic'/'alzheimer-mri-4class'
    assert not (out/'.complete').exists()
    calls = []
    path, synth = data.locate_dataset('alzheimer-mri-4class', root=tmp_path, synthetic='yes', make=calls.append)
    assert synth and calls == [out] and (out/'.complete').exists()


def _bad_images(tmp_path):
    "A good JPEG and PNG, each also corrupt (garbage header) and truncated (first half only)."
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8))
    out = {}
    for ext in ('jpg', 'png'):
        good = tmp_path/f'good.{ext}'; im.save(good)
        raw = good.read_bytes()
        (tmp_path/f'corrupt.{ext}').write_bytes(b'\x00' * 16 + raw[16:])
        (tmp_path/f'truncated.{ext}').write_bytes(raw[:len(raw) // 2])
        out[ext] = good
    return out


@pytest.mark.parametrize('ext', ['jpg', 'png'])
@pytest.mark.parametrize('kind', ['corrupt', 'truncated', 'missing'])
def test_read_image_bad_file(tmp_path, ext, kind):
    "read_image: a clear DataError naming the file; the good file reads."
    _bad_images(tmp_path)
    assert data.read_image(tmp_path/f'good.{ext}').size == (64, 64)
    path = tmp_path/f'{kind}.{ext}'
    with pytest.raises(DataError) as e: data.read_image(path)
    one_line(e, path)


@pytest.mark.parametrize('kind', ['corrupt', 'truncated'])
def test_mri_loader_bad_jpeg(tmp_path, kind):
    "A corrupt slice in a class folder fails loudly when served, naming the file (never a silent wrong label)."
    from medrepro.data_mri import read_mri_folder, MRISlices, MRI_DIR
    _bad_images(tmp_path)
    root = tmp_path/'mri'
    for label in data.dataset_info('alzheimer-mri-4class')['labels']:
        (root/MRI_DIR/label).mkdir(parents=True)
        (root/MRI_DIR/label/'1 (1).jpg').write_bytes((tmp_path/'good.jpg').read_bytes())
    bad = root/MRI_DIR/'MildDemented'/'2 (1).jpg'; bad.write_bytes((tmp_path/f'{kind}.jpg').read_bytes())
    df = read_mri_folder(root)
    ds = MRISlices(df, size=32)
    i = df.index[df.path == str(bad)][0]
    with pytest.raises(DataError) as e: ds[i]
    one_line(e, bad)
    with pytest.raises(DataError) as e: data.readable_images(df)           # checked before training: on_bad='fail'
    one_line(e, bad)
    with pytest.warns(UserWarning, match='skipped 1 unreadable'): good, skipped = data.readable_images(df, on_bad='skip')
    assert list(skipped) == [str(bad)] and len(good) == len(df) - 1
    assert good.set_index('path').label.to_dict() == df[df.path != str(bad)].set_index('path').label.to_dict()


def test_mri_loader_empty_class_folder(tmp_path):
    "An empty class folder is an error naming the folder and the class."
    from medrepro.data_mri import read_mri_folder, MRI_DIR
    _bad_images(tmp_path)
    labels = data.dataset_info('alzheimer-mri-4class')['labels']
    for label in labels:
        (root := tmp_path/'mri'/MRI_DIR/label).mkdir(parents=True)
        if label != labels[1]: (root/'1 (1).jpg').write_bytes((tmp_path/'good.jpg').read_bytes())
    with pytest.raises(DataError) as e: read_mri_folder(tmp_path/'mri')
    one_line(e, tmp_path/'mri'/MRI_DIR/labels[1], labels[1])


def _cxr_copy(tmp_path, n=6, bad=None):
    "A tiny ChestX-ray14-format copy; `bad` = (kind, index) spoils one image."
    from medrepro.data_cxr import CXR_CSV, CXR_COLUMNS
    root = tmp_path/'cxr'; (root/'images').mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f'{i:08d}_000.png'
        Image.fromarray(np.full((32, 32), 40 * i % 255, np.uint8)).save(root/'images'/name)
        rows.append([name, 'Effusion' if i % 2 else 'No Finding', 0, i, 50, 'M', 'PA', 32, 32, 0.14, 0.14])
    pd.DataFrame(rows, columns=CXR_COLUMNS).to_csv(root/CXR_CSV, index=False)
    if bad:
        p = root/'images'/rows[bad[1]][0]; raw = p.read_bytes()
        p.write_bytes(b'\x00' * 16 + raw[16:] if bad[0] == 'corrupt' else raw[:len(raw) // 2])
    return root, root/CXR_CSV


@pytest.mark.parametrize('kind', ['corrupt', 'truncated'])
def test_cxr_loader_bad_png(tmp_path, kind):
    "A corrupt film fails loudly when the dataset serves it, naming the file."
    from medrepro.data_cxr import read_cxr14, CXRDataset, cxr_labels
    root, _ = _cxr_copy(tmp_path, bad=(kind, 3))
    df = read_cxr14(root)
    ds = CXRDataset(df.path, df[cxr_labels()].to_numpy(), size=32)
    ds[2]
    with pytest.raises(DataError) as e: ds[3]
    one_line(e, df.path[3])


def test_csv_missing_columns(tmp_path):
    p = tmp_path/'labels.csv'; p.write_text('Image Index,Finding Labels\na.png,Mass\n')
    with pytest.raises(DataError) as e: data.read_csv_checked(p, ['Image Index', 'Finding Labels', 'Patient ID'])
    one_line(e, p, 'Patient ID')


def test_csv_truncated_last_line(tmp_path):
    p = tmp_path/'labels.csv'; p.write_text('id,label,patient\na.png,Mass,1\nb.png,No Finding,2\nc.png,Ef')
    with pytest.raises(DataError) as e: data.read_csv_checked(p, ['id', 'label', 'patient'])
    one_line(e, p, 'truncated')


def test_csv_missing_file(tmp_path):
    with pytest.raises(DataError) as e: data.read_csv_checked(tmp_path/'none.csv', ['id'])
    one_line(e, tmp_path/'none.csv')


@pytest.mark.parametrize('fault', ['missing column', 'truncated'])
def test_cxr_loader_bad_csv(tmp_path, fault):
    "read_cxr14 on a Data_Entry_2017.csv without 'Patient ID', or cut in its last line."
    from medrepro.data_cxr import read_cxr14
    root, csv = _cxr_copy(tmp_path)
    if fault == 'missing column': pd.read_csv(csv).drop(columns=['Patient ID']).to_csv(csv, index=False)
    else: csv.write_text(csv.read_text().rstrip('\n')[:-40])
    with pytest.raises(DataError) as e: read_cxr14(root)
    one_line(e, csv, 'Patient ID' if fault == 'missing column' else 'truncated')


@pytest.mark.parametrize('rle', ['1 5 95 10', '0 3', '101 1', '5 -2'])
def test_rle_out_of_bounds(rle):
    from medrepro.data_cells import rle_decode
    with pytest.raises(DataError) as e: rle_decode(rle, (10, 10), where='train.csv, row 7')
    one_line(e, 'train.csv, row 7')


def test_sartorius_loader_rle_out_of_bounds(tmp_path):
    "An out-of-bounds RLE in train.csv names the file and the row when the image is loaded."
    from medrepro.data_cells import SartoriusCells, rle_encode
    (tmp_path/'train').mkdir()
    Image.fromarray(np.zeros((8, 10), np.uint8)).save(tmp_path/'train'/'img1.png')
    m = np.zeros((8, 10), bool); m[2:4, 3:6] = True
    rows = [dict(id='img1', annotation=rle_encode(m), width=10, height=8, cell_type='cort'),
            dict(id='img1', annotation='75 10', width=10, height=8, cell_type='cort')]
    pd.DataFrame(rows).to_csv(tmp_path/'train.csv', index=False)
    cells = SartoriusCells(tmp_path)
    with pytest.raises(DataError) as e: cells[0]
    one_line(e, tmp_path/'train.csv', 'row 2')


# ---------------------------------------------------------------- bad parameters

def _notebook(path):
    "A minimal paper-like notebook with a papermill parameters cell."
    import nbformat
    nb = nbformat.v4.new_notebook(metadata=dict(kernelspec=dict(name='python3', language='python', display_name='Python 3'),
                                                language_info=dict(name='python')))
    nb.cells = [nbformat.v4.new_code_cell("paper = 'iconvnext'\nprofile = 'smoke'\nseeds = [0]\nepochs = 3\nlr = 0.001\n"
                                          "augment = None\nbf16 = False\nrun_dir = None", metadata=dict(tags=['parameters'])),
                nbformat.v4.new_code_cell("print(epochs)")]
    nbformat.write(nb, str(path)); return path


@pytest.mark.parametrize('name, value, ok', [
    ('epochs', 'three', False), ('epochs', 2.5, False), ('lr', 'fast', False), ('bf16', 1, False), ('seeds', 0, False),
    ('epochs', 5, True), ('lr', 1, True), ('bf16', True, True), ('augment', ['flip'], True),
])
def test_check_params_types(tmp_path, name, value, ok):
    "cli.check_params compares each -p value with the type of the notebook's default and names the parameter."
    from medrepro.cli import check_params
    nb = _notebook(tmp_path/'paper.ipynb')
    if ok: assert check_params(nb, {name: value}) == {name: value}
    else:
        with pytest.raises(ParamError) as e: check_params(nb, {name: value})
        one_line(e, name)


def test_check_params_unknown_name(tmp_path):
    from medrepro.cli import check_params
    with pytest.raises(ParamError) as e: check_params(_notebook(tmp_path/'paper.ipynb'), {'epoch': 3})
    one_line(e, "'epoch'", 'paper.ipynb')


def test_run_paper_bad_param_writes_nothing(tmp_path, monkeypatch):
    "A wrong-type parameter stops run_paper before any run folder is created."
    from medrepro import cli
    nb = _notebook(tmp_path/'iconvnext.ipynb')
    monkeypatch.setattr(cli, 'paper_notebook', lambda paper: nb)
    with pytest.raises(ParamError) as e: cli.run_paper('iconvnext', params={'epochs': 'three'}, runs_dir=tmp_path/'runs')
    one_line(e, 'epochs')
    assert not (tmp_path/'runs').exists()



def test_batch_goes_on_past_failures(tmp_path, monkeypatch):
    "A batch keeps going past a failing cell and a dead kernel; each run's status says what happened, the grid is saved."
    import nbformat
    from medrepro import cli
    body = {'iconvnext': "raise ValueError('bad slice')", 'multiscale-resnet': 'import os; os._exit(3)',
            'neuron-ensemble': "open(run_dir + '/out.txt', 'w').write('ok')"}
    def nb_of(paper):
        nb = nbformat.read(str(_notebook(tmp_path/f'{paper}.ipynb')), 4)
        nb.cells[1].source = body[paper]; nbformat.write(nb, str(tmp_path/f'{paper}.ipynb'))
        return tmp_path/f'{paper}.ipynb'
    monkeypatch.setattr(cli, 'paper_notebook', nb_of)
    rows = cli.batch(list(body), profiles=('smoke',), runs_dir=tmp_path/'runs')
    assert [r['status'] for r in rows] == ['failed', 'failed', 'done']
    assert 'ValueError: bad slice' in rows[0]['error'] and 'DeadKernelError' in rows[1]['error']
    status = lambda p: json.loads(next((tmp_path/'runs'/p).glob('*/status.json')).read_text())['status']
    assert [status(p) for p in body] == ['failed', 'failed', 'done']
    assert (next((tmp_path/'runs'/'neuron-ensemble').glob('*'))/'out.txt').read_text() == 'ok'
    assert json.loads(next((tmp_path/'runs').glob('batch-*.json')).read_text()) == rows

@pytest.mark.parametrize('kw, names', [
    (dict(epochs='3'), ['epochs', 'int']), (dict(lr=[0.1]), ['lr']), (dict(size=True), ['size']), (dict(epoch=3), ["'epoch'"]),
])
def test_profile_config_bad_override(kw, names):
    profiles = dict(smoke=dict(epochs=1, lr=1e-3, size=32), quick=dict(epochs=3, lr=1e-3, size=64))
    with pytest.raises(ParamError) as e: core.profile_config(profiles, 'smoke', **kw)
    one_line(e, *names)
    assert profiles['smoke'] == dict(epochs=1, lr=1e-3, size=32)  # the profile table itself is untouched


def test_profile_config_unknown_profile():
    with pytest.raises(ParamError) as e: core.profile_config(dict(smoke={}), 'huge')
    one_line(e, "profile='huge'")


# ---------------------------------------------------------------- training: NaN, SIGKILL, crash during a checkpoint write

def _tiny(seed=0):
    "A tiny CNN with dropout, and shuffled train / fixed valid loaders (8 steps of 8 per epoch)."
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Dropout(0.2), torch.nn.Linear(4, 3))
    g = torch.Generator().manual_seed(123)
    x, y = torch.randn(80, 1, 8, 8, generator=g), torch.randint(0, 3, (80,), generator=g)
    ds = lambda a, b: torch.utils.data.TensorDataset(x[a:b], y[a:b])
    return (model, torch.utils.data.DataLoader(ds(0, 64), batch_size=8, shuffle=True),
            torch.utils.data.DataLoader(ds(64, 80), batch_size=8))

CFG = dict(epochs=3, lr=1e-2, scheduler='plateau', plateau_patience=0, progress=False, seed=7)
TIMING = ['train_seconds', 'train_items_per_s']


def test_non_finite_loss_keeps_last_good_checkpoint(tmp_path):
    "A NaN loss in epoch 2, step 3 stops training, names epoch, step and batch, and keeps epoch 1's loadable checkpoint."
    model, tr, va = _tiny()
    calls = []
    def step(m, batch, device):
        calls.append(1)
        loss, logs = engine.classification_step(m, batch, device)
        return (loss * float('nan') if len(calls) == 8 + 3 else loss), logs
    with pytest.raises(engine.NonFiniteLossError) as e:
        engine.fit(model, tr, va, engine.TrainConfig(**CFG), step=step, ckpt_dir=tmp_path)
    one_line(e, 'epoch 2', 'step 3', 'batch index 2')
    fresh = _tiny(seed=1)[0]
    ck = engine.load_checkpoint(tmp_path/'last.pt', fresh)
    assert ck['state']['epoch'] == 1 and len(ck['state']['history']) == 1
    assert all(torch.isfinite(p).all() for p in fresh.parameters())
    assert sorted(os.listdir(tmp_path)) == ['best.pt', 'last.pt']


CHILD = textwrap.dedent('''
    import hashlib, json, os, sys, time, torch
    sys.path.insert(0, {tests!r}); torch.set_num_threads(1)
    from test_faults import _tiny, CFG, TIMING
    from medrepro import engine
    pause_at, marker = int(os.environ.get('PAUSE_AT', 0)), os.environ.get('MARKER')
    calls = []
    def step(m, batch, device):
        calls.append(1)
        if len(calls) == pause_at:
            open(marker, 'w').write('in epoch'); time.sleep(120)
        return engine.classification_step(m, batch, device)
    model, tr, va = _tiny()
    res = engine.fit(model, tr, va, engine.TrainConfig(**CFG), step=step, ckpt_dir=sys.argv[1])
    h = hashlib.sha256(b''.join(v.numpy().tobytes() for v in model.state_dict().values())).hexdigest()
    json.dump(dict(history=res.history.drop(columns=TIMING).to_dict('list'), weights=h), open(sys.argv[2], 'w'))
''')


def _child(tmp_path, ckpt, out, **env):
    script = tmp_path/'child.py'; script.write_text(CHILD.format(tests=str(ROOT/'tests')))
    return subprocess.Popen([sys.executable, str(script), str(ckpt), str(out)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    "SIGKILL in epoch 2 (step 3 of 8); the resumed run ends with the same history and weights as an uninterrupted one."
    full = _child(tmp_path, tmp_path/'ck_full', tmp_path/'full.json')
    marker = tmp_path/'marker'
    victim = _child(tmp_path, tmp_path/'ck_kill', tmp_path/'killed.json', PAUSE_AT=str(8 + 3), MARKER=str(marker))
    t0 = time.time()
    while not marker.exists():
        assert victim.poll() is None, victim.communicate()[1]
        assert time.time() - t0 < 300, 'child never reached epoch 2 in 5 minutes'
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL); victim.wait()
    assert victim.returncode == -signal.SIGKILL and not (tmp_path/'killed.json').exists()
    assert engine.load_checkpoint(tmp_path/'ck_kill'/'last.pt')['state']['epoch'] == 1
    resumed = _child(tmp_path, tmp_path/'ck_kill', tmp_path/'resumed.json')
    for p in (full, resumed): assert p.wait(timeout=90) == 0, p.communicate()[1]
    a, b = (json.loads((tmp_path/f).read_text()) for f in ('full.json', 'resumed.json'))
    assert len(a['history']['epoch']) == 3
    assert a == b


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    "torch.save dying half-way through leaves last.pt as the previous good checkpoint; training resumes from it."
    model, tr, va = _tiny()
    engine.fit(model, tr, va, engine.TrainConfig(**{**CFG, 'epochs': 1}), ckpt_dir=tmp_path)
    before = (tmp_path/'last.pt').read_bytes()
    real_save = torch.save
    def dying_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k); p = Path(f); p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])
        raise KeyboardInterrupt('crash during torch.save')
    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(KeyboardInterrupt):
        engine.fit(model, tr, va, engine.TrainConfig(**{**CFG, 'epochs': 2}), ckpt_dir=tmp_path)
    monkeypatch.setattr(torch, 'save', real_save)
    assert (tmp_path/'last.pt').read_bytes() == before
    assert engine.load_checkpoint(tmp_path/'last.pt')['state']['epoch'] == 1
    with pytest.raises(MedreproError): engine.load_checkpoint(tmp_path/'last.pt.tmp')  # the half-written file is refused
    res = engine.fit(_tiny()[0], tr, va, engine.TrainConfig(**{**CFG, 'epochs': 2}), ckpt_dir=tmp_path)
    assert list(res.history.epoch) == [1, 2]


def test_same_seed_same_history():
    "Two runs with the same seed on CPU give identical histories and weights; another seed differs."
    def run(seed):
        model, tr, va = _tiny()
        h = engine.fit(model, tr, va, engine.TrainConfig(**{**CFG, 'seed': seed})).history.drop(columns=TIMING)
        return h, torch.cat([p.detach().flatten() for p in model.parameters()])
    (h1, w1), (h2, w2), (h3, _) = run(7), run(7), run(8)
    pd.testing.assert_frame_equal(h1, h2, check_exact=True)
    assert torch.equal(w1, w2) and not h1.equals(h3)


# ---------------------------------------------------------------- safety: pickles, paths

class Payload:
    "Unpickling this would touch a file: proof that code ran."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (Path.touch, (Path(self.marker),))


def _evil_checkpoint(tmp_path):
    marker, ck = tmp_path/'pwned', tmp_path/'evil.pt'
    torch.save(dict(model={}, extra=Payload(marker)), ck)
    return marker, ck


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    "engine.load_checkpoint refuses a checkpoint holding a pickled object, naming the file; no code runs."
    marker, ck = _evil_checkpoint(tmp_path)
    with pytest.raises(MedreproError, match='unreadable checkpoint') as e: engine.load_checkpoint(ck)
    assert str(e.value).startswith(str(ck)) and not marker.exists()


def test_refused_checkpoint_error_is_one_line(tmp_path):
    with pytest.raises(MedreproError) as e: engine.load_checkpoint(_evil_checkpoint(tmp_path)[1])
    one_line(e, tmp_path/'evil.pt')


def test_pretrained_file_with_pickled_object_is_refused(tmp_path):
    "core.load_pretrained also loads with weights_only=True: no code runs."
    marker, w = tmp_path/'pwned', tmp_path/'evil.pth'
    torch.save(dict(weight=torch.zeros(1), extra=Payload(marker)), w)
    with pytest.raises(MedreproError) as e: core.load_pretrained(torch.nn.Linear(1, 1), 'x', weights_file=w)
    one_line(e, w)
    assert not marker.exists()


@pytest.mark.parametrize('rel', ['../secret.png', '/etc/passwd', 'images/../../secret.png', 'link/secret.png'])
def test_safe_join_refuses_escape(tmp_path, rel):
    root = tmp_path/'data'; (root/'images').mkdir(parents=True); (tmp_path/'outside').mkdir()
    (root/'link').symlink_to(tmp_path/'outside')
    with pytest.raises(DataError) as e: data.safe_join(root, rel)
    one_line(e, repr(rel))
    assert data.safe_join(root, 'images/a.png') == (root/'images'/'a.png').resolve()


def test_cxr_annotation_path_cannot_escape(tmp_path):
    "An 'Image Index' pointing outside images/ is refused, naming it."
    from medrepro.data_cxr import read_cxr14
    root, csv = _cxr_copy(tmp_path)
    (tmp_path/'secret.png').write_bytes((root/'images'/'00000000_000.png').read_bytes())
    df = pd.read_csv(csv); df.loc[2, 'Image Index'] = '../../secret.png'; df.to_csv(csv, index=False)
    with pytest.raises(DataError) as e: read_cxr14(root)
    one_line(e, '../../secret.png')


def test_sartorius_annotation_path_cannot_escape(tmp_path):
    "An id in train.csv that climbs out of the dataset folder is refused when loaded."
    from medrepro.data_cells import SartoriusCells
    root = tmp_path/'sart'; (root/'train').mkdir(parents=True)
    Image.fromarray(np.zeros((8, 10), np.uint8)).save(tmp_path/'evil.png')
    pd.DataFrame([dict(id='../../evil', annotation='1 3', width=10, height=8, cell_type='cort')]).to_csv(root/'train.csv', index=False)
    with pytest.raises(DataError) as e: SartoriusCells(root)[0]
    one_line(e, '../../evil')
