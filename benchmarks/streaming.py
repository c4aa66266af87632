"""Streaming benchmark (issue 17 item 4): peak memory and img/s of the NIH ChestX-ray14 loader as the set grows.

    nice -n 10 python -m benchmarks.streaming --root /tmp/stream/nih-1024        # make the set once (minutes), measure
    python -m benchmarks.streaming --root /tmp/stream/nih-1024 --make-only       # only make the set

The set is in the real on-disk format (Data_Entry_2017.csv + images/*.png, 1024 x 1024 grey films), under `--root`
(outside the repository; delete it afterwards). For each N the first N films go through `readable_images` and one
shuffled epoch of `CXRDataset(size=224)` in a `DataLoader` with 2 workers and a trivial step, each in a fresh process.
Figures: the up-front check's seconds, epoch img/s, the share of the epoch spent waiting in `next(loader)` (also
without the first batch, which waits for the workers to start: `wait_share_after_first`), and the
peak memory of the parent and its workers together (sum of PSS, which counts pages shared after the fork once; sum of
RSS beside it), sampled every 50 ms with psutil. Configurations:
- `before`: the cache as it was before streaming, unbounded (a film kept per item served, in each worker); the up-front
  full decode that came with it is timed apart (`full check`, films/s on `--check-n` films) to keep the run short;
- `stream`: `check='header'` and `cache=False` (what `check='auto'` and the multiscale notebook's
  `cache=len(df) <= 20000` give on the full release);
- `bounded`: `check='header'` and a bounded cache of `--cache` films per process;
- `fed`: `stream` on `--fed-n` films with a step that sleeps (an accelerator step, which leaves the CPU to the workers)
  25 % longer than a batch takes the pipeline at the `stream` rate of that N: is the step kept fed?
Results go to `benchmarks/results/streaming.json`."""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, threading, time
from pathlib import Path
import pandas as pd, psutil, torch

RESULTS = Path(__file__).resolve().parent/'results'
CONFIGS = dict(before=('header', 10**9), stream=('header', False))


def make_set(root:Path, n:int, pool_patients:int=200, size:int=1024)->Path:
    """A synthetic NIH-format set of at least `n` films under `root`, made once and reused.

    `make_synthetic_cxr14` renders a pool (`pool_patients` patients, about 2.5 films each; a 1024 px film takes
    0.5-1.5 s on a loaded 2-core machine); each pool film is then written again under new patient ids until there are
    `n` files: each a separate file of the real format and size, decoded at the cost of a distinct film."""
    from medrepro.data_cxr import make_synthetic_cxr14, CXR_CSV
    pool = root.parent/f'{root.name}-pool'
    if not (pool/CXR_CSV).exists(): make_synthetic_cxr14(pool, n_patients=pool_patients, size=size, seed=0)
    if (root/CXR_CSV).exists(): return root
    src, parts = pd.read_csv(pool/CXR_CSV), []
    (root/'images').mkdir(parents=True, exist_ok=True)
    for r in range(-(-n // len(src))):
        part = src.assign(**{'Patient ID': src['Patient ID'] + r * pool_patients})
        part['Image Index'] = [f'{p:08d}_{f:03d}.png' for p, f in zip(part['Patient ID'], part['Follow-up #'])]
        for a, b in zip(src['Image Index'], part['Image Index']): shutil.copyfile(pool/'images'/a, root/'images'/b)
        parts.append(part)
    pd.concat(parts).to_csv(root/CXR_CSV, index=False)
    return root


class PeakMemory(threading.Thread):
    """Peaks of the summed PSS and RSS (MB) of this process and its children, sampled every `every` seconds; also the
    peak PSS of the parent alone and of the workers together, and the summed PSS of every sample (`series`)."""
    def __init__(self, every:float=0.05):
        super().__init__(daemon=True); self.every, self.done, self.series = every, threading.Event(), []
        self.rss = self.parent = self.workers = 0.
    @property
    def pss(self)->float: return max(self.series, default=0.)
    def sample(self):
        me = psutil.Process(); parent, kids = self._info(me), [self._info(p) for p in me.children(recursive=True)]
        kids = [m for m in kids if m is not None]
        mb = lambda ms, k: sum(getattr(m, k) for m in ms) / 2**20
        self.series.append(mb([parent, *kids], 'pss')); self.rss = max(self.rss, mb([parent, *kids], 'rss'))
        self.parent, self.workers = max(self.parent, parent.pss / 2**20), max(self.workers, mb(kids, 'pss'))
    def quarters(self, since:int=0)->list:
        "Peak summed PSS (MB) in each quarter of the samples from `since`: rising quarters mean memory grows as films are served."
        s = self.series[since:]; q = len(s) / 4
        return [round(max(s[int(i*q):max(int((i+1)*q), int(i*q)+1)])) for i in range(4)]
    @staticmethod
    def _info(p):
        try: return p.memory_full_info()
        except psutil.Error: return None  # a worker that just exited
    def run(self):
        while not self.done.wait(self.every): self.sample()


def one(root:Path, n:int, check:str, cache, workers:int, batch:int, size:int, step_ms:float)->dict:
    "Check and stream the first `n` films for one epoch in this process; the figures."
    from medrepro.data import readable_images
    from medrepro.data_cxr import read_cxr14, cxr_labels, frame_targets, CXRDataset
    mem = PeakMemory(); mem.start()
    df = read_cxr14(root).iloc[:n].reset_index(drop=True)
    t = time.perf_counter(); df, _ = readable_images(df, 'fail', check=check); check_s = time.perf_counter() - t
    ds = CXRDataset(df.path, frame_targets(df[cxr_labels()].to_numpy(), 'multilabel', cxr_labels())[0], size=size, cache=cache)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, prefetch_factor=4)
    it, wait, seen, t0, first, since = iter(dl), 0., 0, time.perf_counter(), None, len(mem.series)
    while True:
        t = time.perf_counter(); x = next(it, None); wait += time.perf_counter() - t
        first = wait if first is None else first  # the first batch waits for the workers to start
        if x is None: break
        seen += len(x[0]); x[0].float().mean().item(); time.sleep(step_ms / 1000)  # the step
    epoch = time.perf_counter() - t0; mem.done.set(); mem.join(); mem.sample()
    return dict(n=n, check=check, cache=cache, workers=workers, step_ms=round(step_ms, 1), images=seen,
                check_s=round(check_s, 1), img_s=round(seen / epoch, 1), wait_share=round(wait / epoch, 3),
                first_batch_s=round(first, 1), wait_share_after_first=round((wait - first) / (epoch - first), 3),
                peak_pss_mb=round(mem.pss), peak_rss_mb=round(mem.rss), peak_parent_pss_mb=round(mem.parent),
                peak_workers_pss_mb=round(mem.workers), pss_mb_by_quarter=mem.quarters(since))


def full_check(root:Path, n:int)->dict:
    "Films per second of the up-front full decode (`readable_images(check='full')`) on the first `n` films."
    from medrepro.data import readable_images
    from medrepro.data_cxr import read_cxr14
    df = read_cxr14(root).iloc[:n]; t = time.perf_counter(); readable_images(df, 'fail', check='full')
    return dict(config='full check', n=n, films_s=round(n / (time.perf_counter() - t), 1))


def run_one(args, n, check, cache, step_ms=0.)->dict:
    "`one` in a fresh process (nothing kept from the previous measurement)."
    cmd = [sys.executable, '-m', 'benchmarks.streaming', '--root', str(args.root), '--one', json.dumps([n, check, cache, step_ms]),
           '--workers', str(args.workers), '--batch', str(args.batch), '--size', str(args.size)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    print(out, flush=True); return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', type=Path, required=True, help='folder for the synthetic set (outside the repository)')
    p.add_argument('--make-only', action='store_true', help='make the set and stop')
    p.add_argument('--sizes', type=int, nargs='+', default=[1000, 2000, 5000], help='N: films streamed')
    p.add_argument('--before-sizes', type=int, nargs='+', default=[1000, 2000], help='N for the `before` configuration')
    p.add_argument('--check-n', type=int, default=200, help='films the `full check` row decodes')
    p.add_argument('--fed-n', type=int, default=500, help='films the `fed` row streams')
    p.add_argument('--cache', type=int, default=0, help='films kept per process in the `bounded` configuration (0: skip it)')
    p.add_argument('--workers', type=int, default=2); p.add_argument('--batch', type=int, default=32)
    p.add_argument('--size', type=int, default=224, help='side the films are served at')
    p.add_argument('--one', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one: return print(json.dumps(one(args.root, *json.loads(args.one)[:3], args.workers, args.batch, args.size, json.loads(args.one)[3])))
    make_set(args.root, max(args.sizes))
    if args.make_only: return
    from benchmarks.run import record
    t0, load0 = time.time(), os.getloadavg()
    rows = [full_check(args.root, args.check_n)]
    rows += [dict(config='before', **run_one(args, n, *CONFIGS['before'])) for n in args.before_sizes]
    rows += [dict(config='stream', **run_one(args, n, *CONFIGS['stream'])) for n in args.sizes]
    if args.cache: rows += [dict(config='bounded', **run_one(args, n, 'header', args.cache)) for n in args.sizes]
    rate = next(r['img_s'] for r in rows if r['config'] == 'stream')
    rows += [dict(config='fed', **run_one(args, args.fed_n, *CONFIGS['stream'], step_ms=1.25 * 1000 * args.batch / rate))]
    record('streaming', rows, f"synthetic NIH-format set at {args.root} ({args.size} px served from 1024 px PNGs), "
           f"batch {args.batch}, {args.workers} workers, prefetch_factor 4; memory = parent + workers",
           argparse.Namespace(quick=False, device=torch.device('cpu')), t0, load0)


if __name__ == '__main__': main()
