"""Streaming loaders (issue 17 item 4): the image cache stays within its bound, and a broken film met while streaming
either stops the run naming the file ('fail') or is replaced and reported at the end ('skip'), DataLoader workers
included. The memory / img/s figures are benchmarks/streaming.py's."""
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from medrepro import data
from medrepro.core import DataError
from medrepro.data_cxr import CXRDataset


@pytest.fixture
def films(tmp_path):
    "12 grey 64 px films; film 5 is cut inside its pixel data (its header still reads)."
    paths = []
    for i in range(12):
        p = tmp_path/f'{i:08d}_000.png'; paths.append(p)
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64), np.uint8)).save(p)
    paths[5].write_bytes(paths[5].read_bytes()[:1500])
    return pd.DataFrame(dict(path=paths, y=np.arange(12, dtype=np.float32)))


def loader(ds, workers):
    return torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers)


def test_cache_holds_at_most_its_bound(films):
    good = films.drop(5).reset_index(drop=True)
    bounded = CXRDataset(good.path, good.y.to_numpy(), size=32, cache=3)
    for i in range(len(good)):
        bounded[i]; assert len(bounded._cache) <= 3
    assert sorted(bounded._cache) == [8, 9, 10]                  # the three most recently used
    whole = CXRDataset(good.path, good.y.to_numpy(), size=32)   # cache=True: a small set is held whole
    xs = [whole[i][0] for i in range(len(good))]
    assert len(whole._cache) == len(good)
    assert all(torch.equal(x, bounded[i][0]) for i, x in enumerate(xs))   # the bound changes speed, never values


def test_header_check_leaves_the_cut_film_to_the_dataset(films):
    with pytest.raises(DataError, match='00000005_000.png: unreadable image'): data.readable_images(films)  # 'auto': full decode
    kept, bad = data.readable_images(films, check='header')
    assert len(kept) == 12 and bad == {}


@pytest.mark.parametrize('workers', [0, 2])
def test_fail_names_the_file(films, workers):
    ds = CXRDataset(films.path, films.y.to_numpy(), size=32, on_bad='fail')
    with pytest.raises(DataError) as e: list(loader(ds, workers))
    assert str(films.path[5]) in str(e.value)
    if workers == 0: assert '\n' not in str(e.value)             # in a worker, torch adds the worker's traceback


@pytest.mark.parametrize('workers', [0, 2])
def test_skip_replaces_and_reports(films, workers):
    ds = CXRDataset(films.path, films.y.to_numpy(), size=32, on_bad='skip')
    ys = torch.cat([y for _, y in loader(ds, workers)]).tolist()
    assert ys == [0, 1, 2, 3, 4, 6, 6, 7, 8, 9, 10, 11]         # film 6 stands in for the cut film 5
    assert list(ds.skipped) == [str(films.path[5])]              # found in a worker, seen by the parent
    assert ds.skipped[str(films.path[5])].startswith('unreadable image')
