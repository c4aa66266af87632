"""Several processes per training run (engine.fit with nproc, medrepro run --nproc): 2 gloo processes on the CPU give
the numbers of 1 process, resume, report a child's error, and a paper run records its world size. test-all only
(marker ddp), but for the usage error of --nproc."""
import json
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from medrepro.core import MedreproError
from medrepro.engine import TrainConfig, fit, load_checkpoint
from medrepro.cli import main

TOL = 1e-5   # 2 processes vs 1: the same batches, gradients summed in another order (measured differences ~3e-8)


def _data(n=30):
    g = torch.Generator().manual_seed(0); x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def _fit(nproc, epochs=2, ckpt_dir=None, step=None):
    "An MLP trained with SGD on 30 items in shuffled batches of 8 (the last batch of 6 splits 3 + 3)."
    torch.manual_seed(1); model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    tl, vl = DataLoader(_data(), batch_size=8, shuffle=True), DataLoader(_data(), batch_size=16)
    cfg = TrainConfig(epochs=epochs, lr=0.1, optimizer='sgd', scheduler=None, progress=False)
    res = fit(model, tl, vl, cfg, nproc=nproc, ckpt_dir=ckpt_dir, **({'step': step} if step else {}))
    return res, model


def _same(a, b):
    "Histories and weights of two fits agree within TOL (wall times aside)."
    (ra, ma), (rb, mb) = a, b
    cols = ['train_loss', 'train_acc', 'valid_loss', 'valid_acc']
    assert ra.history.train_items.tolist() == rb.history.train_items.tolist() == [30] * len(ra.history)
    assert (ra.history[cols] - rb.history[cols]).abs().max().max() < TOL
    assert max((x - y).abs().max().item() for x, y in zip(ma.state_dict().values(), mb.state_dict().values())) < TOL


@pytest.mark.ddp
def test_two_processes_train_as_one():
    one, two = _fit(1), _fit(2)
    _same(one, two)
    assert one[0].history.train_loss.iloc[-1] < one[0].history.train_loss.iloc[0]   # it learned: not a no-op compared
    # the model is usable in this process afterwards (no DDP hook left on it)
    two[1](_data().tensors[0]).sum().backward()


@pytest.mark.ddp
def test_resume_under_two_processes(tmp_path):
    _fit(2, epochs=1, ckpt_dir=tmp_path)
    resumed = _fit(2, epochs=2, ckpt_dir=tmp_path)
    assert resumed[0].resumed_epochs == 1 and len(resumed[0].history) == 2
    _same(_fit(1, epochs=2), resumed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['best.pt', 'last.pt']   # rank 0 alone wrote
    assert load_checkpoint(tmp_path/'last.pt')['state']['epoch'] == 2


@pytest.mark.ddp
def test_a_childs_error_names_its_rank():
    def step(model, batch, device):
        if torch.distributed.get_rank() == 1: raise ValueError('bad shard')
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)
    with pytest.raises(MedreproError, match='rank 1: ValueError: bad shard'): _fit(2, epochs=1, step=step)


def test_cli_checks_nproc(tmp_path, capsys):
    assert main(['run', 'iconvnext', '--profile', 'smoke', '--device', 'cpu', '--nproc', '0', '--runs-dir', str(tmp_path)]) == 2
    assert 'nproc=0 must be an integer >= 1' in capsys.readouterr().err


@pytest.mark.ddp
def test_cli_smoke_run_with_two_processes(tmp_runs, tmp_path):
    "medrepro run iconvnext --profile smoke --nproc 2 (synthetic data) completes and records world_size 2."
    rc = main(['run', 'iconvnext', '--profile', 'smoke', '--device', 'cpu', '--nproc', '2', '--runs-dir', str(tmp_runs),
               '--run-id', 'n2', '--data-root', str(tmp_path/'no-data'), '-q',
               '-p', 'ablation_epochs=0', '-p', 'variants=[]'])   # Table 1's trainings only: DDP is what this checks
    run = tmp_runs/'iconvnext'/'n2'
    assert rc == 0, (run/'status.json').read_text()
    assert json.loads((run/'status.json').read_text())['status'] == 'done'
    assert json.loads((run/'provenance.json').read_text())['world_size'] == 2
    assert json.loads((run/'params.json').read_text())['nproc'] == 2
    assert json.loads((run/'metrics.json').read_text())
