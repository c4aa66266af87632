"""Run the medrepro benchmarks and write `benchmarks/results/<name>.json`.

    python -m benchmarks.run                      # everything (make bench); long: paper quick runs included
    python -m benchmarks.run --quick              # short versions (a few minutes on 2 cores)
    python -m benchmarks.run overhead roofline    # a subset, by name (see BENCHMARKS)
    python -m benchmarks.run --device cuda overhead bf16   # on a GPU

Each benchmark is a function `(args) -> (rows, notes)`; `record` prints the rows as a table and stores them with the
machine, threads, torch version and the load average before and after (the machine may be shared: a load above the
thread count means other work competed with the measurement)."""
from __future__ import annotations
import argparse, datetime, json, os, platform, statistics, sys, tempfile, time, warnings
from pathlib import Path
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
import timm
from medrepro import core, engine

RESULTS = Path(__file__).resolve().parent/'results'
SHARED = Path(os.environ.get('MEDREPRO_SHARED_DATA') or core.project_root().parent/'shared'/'data')


# ---------------------------------------------------------------- bookkeeping

def machine(device:torch.device)->dict:
    "CPU model, cores, load average, GPU."
    info = Path('/proc/cpuinfo')
    cpu = next((l.split(':', 1)[1].strip() for l in info.read_text().splitlines() if l.startswith('model name')),
               platform.processor()) if info.exists() else platform.processor()
    return dict(platform=platform.platform(), cpu=cpu, cpu_count=os.cpu_count(), python=platform.python_version(),
                gpu=torch.cuda.get_device_name(0) if device.type == 'cuda' else None)


def record(name:str, rows:list, notes:str, args, t0:float, load0:tuple)->dict:
    "Print `rows` as a table and write `results/<name>.json` atomically."
    out = dict(name=name, time=datetime.datetime.now().isoformat(timespec='seconds'), quick=args.quick,
               device=str(args.device), threads=torch.get_num_threads(), torch=torch.__version__, timm=timm.__version__,
               git_commit=core.git_commit(), machine=machine(args.device), load_avg_before=load0,
               load_avg_after=os.getloadavg(), seconds=round(time.time() - t0, 1), notes=notes, figures=rows)
    print(f"\n## {name}  ({out['seconds']} s, {out['threads']} threads, load {load0[0]:.1f} -> {out['load_avg_after'][0]:.1f})")
    if rows: print(pd.DataFrame(rows).to_markdown(index=False, floatfmt='.3g'))
    if notes: print(notes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS/f'{name}.json.tmp'; tmp.write_text(json.dumps(out, indent=2, default=str)); os.replace(tmp, RESULTS/f'{name}.json')
    return out


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def timed2(fn, device)->tuple:
    """Wall seconds and CPU-busy seconds (process CPU time / torch threads) of `fn()`.

    On a shared CPU the second is what the run would take with the cores to itself (OpenMP spin-waits included);
    on a GPU it is the wall time."""
    sync(device); t, c = time.perf_counter(), time.process_time(); fn(); sync(device)
    wall, cpu = time.perf_counter() - t, (time.process_time() - c) / torch.get_num_threads()
    return wall, (cpu if device.type == 'cpu' else wall)


# ---------------------------------------------------------------- training steps: bare PyTorch and medrepro

def batches(n:int, bs:int, size:int, n_classes:int, device)->list:
    "`n` random (x, y) batches, already on `device`."
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(bs, 3, size, size, generator=g).to(device), torch.randint(0, n_classes, (bs,), generator=g).to(device))
            for _ in range(n)]


def bare_loop(model, data, opt, device, bf16=False):
    "The reference: a plain PyTorch training loop over in-memory batches."
    model.train()
    for x, y in data:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()


def engine_loop(model, data, opt, device, bf16=False, step=engine.classification_step):
    "medrepro's training loop (`engine.train_epoch`, progress bar on, as the papers run it) over the same batches."
    engine.train_epoch(model, data, opt, device, engine.TrainConfig(bf16=bf16), step)


def side_by_side(loops:dict, model, data, device, rounds:int)->dict:
    "Images/s of each loop in `loops` (name -> fn(model, data, opt, device)), alternating order each round."
    opts = {k: torch.optim.Adam(model.parameters(), lr=1e-5) for k in loops}
    for k, fn in loops.items(): fn(model, data[:1], opts[k], device)  # warm-up (allocator, kernels, autotuning)
    n, rates = sum(len(b[1]) for b in data), {k: [] for k in loops}
    for r in range(rounds):
        for k in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
            rates[k].append(tuple(n / s for s in timed2(lambda: loops[k](model, data, opts[k], device), device)))
    return rates


def ratio_row(rates:dict, a:str, b:str)->dict:
    """Median img/s of `a` and `b`, the median of the per-round ratios a/b, the ratio of the best rounds, and the
    same two on CPU-busy time (`timed2`)."""
    row = {}
    for j, sfx in ((0, ''), (1, '_cpu')):
        ra, rb = [r[j] for r in rates[a]], [r[j] for r in rates[b]]
        row.update({f'{a}_img_s{sfx}': statistics.median(ra), f'{b}_img_s{sfx}': statistics.median(rb),
                    f'ratio{sfx}': statistics.median(x / y for x, y in zip(ra, rb)), f'ratio_best{sfx}': max(ra) / max(rb)})
    return row


# ---------------------------------------------------------------- 1. engine overhead

def fixed_cost(device, steps:int=200, rounds:int=5)->float:
    """Seconds per step that the engine adds to a bare loop, whatever the model: measured on a tiny linear model,
    where the step itself costs microseconds, as the difference of the best rounds."""
    torch.manual_seed(0)
    model, data = torch.nn.Linear(8, 4).to(device), [(torch.randn(4, 8, device=device), torch.randint(0, 4, (4,), device=device))] * steps
    rates = side_by_side(dict(engine=engine_loop, bare=bare_loop), model, data, device, rounds)
    return max(0., 4 * steps / max(r[0] for r in rates['engine']) - 4 * steps / max(r[0] for r in rates['bare'])) / steps


def overhead(args):
    """medrepro `engine.train_epoch` vs a bare PyTorch loop: same timm model, batch, threads, data in memory.

    Besides the measured ratios, `ratio_bound` = bare step / (bare step + the engine's fixed cost per step): the ratio
    the engine's bookkeeping allows, which a busy shared machine cannot blur."""
    images, rounds = (16, 2) if args.quick else (48, 3)
    extra = fixed_cost(args.device)
    print(f'engine fixed cost: {extra * 1e3:.3f} ms/step', flush=True)
    rows = []
    for name in ('convnext_tiny', 'resnet50'):
        for bs in (4, 16):
            steps = max(1, images // bs)
            torch.manual_seed(0)
            model = timm.create_model(name, num_classes=4).to(args.device)
            data = batches(steps, bs, 224, 4, args.device)
            rates = side_by_side(dict(engine=engine_loop, bare=bare_loop), model, data, args.device, rounds)
            r = ratio_row(rates, 'engine', 'bare'); bare_step = bs / r['bare_img_s_cpu']
            rows.append(dict(model=name, batch=bs, steps=steps, rounds=rounds, **r, engine_fixed_ms=extra * 1e3,
                             ratio_bound=bare_step / (bare_step + extra)))
            print(rows[-1], flush=True)
            del model, data
    return rows, ("ratio = medrepro img/s / bare img/s (median of per-round ratios, rounds alternate which loop runs "
                  "first); target >= 0.97. ratio_best compares the fastest round of each. *_cpu: the same on CPU-busy "
                  "time (process CPU time / threads). ratio_bound: bare step / (bare step + engine_fixed_ms), the engine's own "
                  "per-step cost measured on a tiny model (tqdm, .item() of loss and accuracy, logging).")


# ---------------------------------------------------------------- 2. data pipeline wait share

class TimedLoader:
    "A loader wrapper that adds up the seconds spent waiting for batches (iterator start-up included)."
    def __init__(self, dl): self.dl, self.wait = dl, 0.
    def __len__(self): return len(self.dl)
    def __iter__(self):
        t = time.perf_counter(); it = iter(self.dl); self.wait += time.perf_counter() - t
        while True:
            t = time.perf_counter()
            try: batch = next(it)
            except StopIteration: return
            finally: self.wait += time.perf_counter() - t
            yield batch


LOADERS = {'default': {}, 'worker': dict(num_workers=1, persistent_workers=True)}


def _mri_case(root, quick):
    from medrepro.data_mri import read_mri_folder, sample_subset, MRISlices
    from medrepro.models_iconvnext import create_mri_model
    from medrepro.steps import fs_step
    df = sample_subset(read_mri_folder(root/'alzheimer-mri-4class'), seed=0)
    return MRISlices(df, size=224), create_mri_model('ICN-T'), fs_step, 'IConvNeXt-T (fs_step), MRISlices(size=224)'


def _cxr_case(root, quick):
    from medrepro.data_cxr import read_cxr14, cxr_labels, CXRDataset
    df = read_cxr14(root/'nih-cxr14-sample')
    step = lambda m, b, d: F.binary_cross_entropy_with_logits(m(b[0].to(d)), b[1].to(d))
    return (CXRDataset(df.path, df[cxr_labels()].to_numpy(), size=224, augment=True), timm.create_model('resnet50', num_classes=14),
            step, 'resnet50 (BCE, 14 labels), CXRDataset(size=224, augment=True)')


def data_pipeline(args):
    "Share of the training-step time spent waiting for data, real samples, 224 px, DataLoader defaults (num_workers=0)."
    if not SHARED.is_dir(): return [], f'SKIPPED: no real data samples at {SHARED} (set MEDREPRO_SHARED_DATA)'
    steps, bs, rows = (2 if args.quick else 6), 16, []
    for case, make in (('alzheimer-mri-4class', _mri_case), ('nih-cxr14-sample', _cxr_case)):
        if not (SHARED/case).is_dir(): print(f'skip {case}: not in {SHARED}'); continue
        ds, model, step, what = make(SHARED, args.quick)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5); model.to(args.device)
        cfg = engine.TrainConfig(max_steps=steps, progress=False)
        for loader, kw in LOADERS.items():
            for phase in ('cold', 'warm'):  # cold: images decoded on first use; warm: the dataset's cache is full (epoch >= 2)
                if phase == 'cold': ds = make(SHARED, args.quick)[0]
                else: [ds.image(i) for i in range(len(ds))]  # workers fork after this and inherit the filled cache
                dl = TimedLoader(torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, **kw))
                torch.manual_seed(1)
                out = engine.train_epoch(model, dl, opt, args.device, cfg, step)
                rows.append(dict(dataset=case, loader=loader, phase=phase, images=len(ds), batch=bs, steps=steps,
                                 step_s=out['train_seconds'] / steps, wait_s=dl.wait / steps,
                                 wait_share=dl.wait / out['train_seconds'], setup=what))
                print(rows[-1], flush=True)
                del dl
    return rows, ("wait_share = time in next(loader) (iterator start included) / train_epoch time; target <= 0.05. "
                  "'default' = DataLoader defaults (num_workers=0: transforms run in the training process with its "
                  f"{torch.get_num_threads()} torch threads); 'worker' = num_workers=1, persistent_workers=True "
                  "(transforms in one single-threaded process).")


# ---------------------------------------------------------------- 3. roofline

def gemm_gflops(dtype, n:int, reps:int, device)->float:
    "Best-of-`reps` GFLOP/s of an n x n matrix product."
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    torch.mm(a, b)
    t = [timed2(lambda: torch.mm(a, b), device) for _ in range(reps)]
    return tuple(2 * n**3 / min(x[j] for x in t) / 1e9 for j in (0, 1))


def flops_per_image(model, size:int, device)->tuple:
    """Forward FLOPs per image by torch's flop counter (batch of 2), and the counter's raw forward + backward count.

    The training step is taken as 3 x forward: torch 2.x's counter ignores `groups` in `convolution_backward`, so it
    over-counts depthwise convolutions (convnext_tiny: 77 GFLOP/img counted vs ~27 real)."""
    x, y = torch.randn(2, 3, size, size, device=device), torch.zeros(2, dtype=torch.long, device=device)
    model.train()
    with FlopCounterMode(display=False) as fc: F.cross_entropy(model(x), y).backward()
    raw = fc.get_total_flops() / 2
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model(x)
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / 2, raw


def roofline(args):
    "GEMM peak (fp32, bf16), model FLOPs per image, and the fraction of the peak medrepro's train step reaches."
    n, reps = (1024, 5) if args.quick else (2048, 10)
    peak = {dt: gemm_gflops(getattr(torch, dt), n, reps, args.device) for dt in ('float32', 'bfloat16')}
    rows = [dict(what=f'GEMM {n}x{n}', dtype=dt, gflops=g[0], gflops_cpu=g[1]) for dt, g in peak.items()]
    print(rows, flush=True)
    (steps, rounds), bs = ((1, 1) if args.quick else (3, 2)), 16
    for name in (('convnext_tiny',) if args.quick else ('convnext_tiny', 'resnet50')):
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=4).to(args.device)
        fwd, raw = flops_per_image(model, 224, args.device); train = 3 * fwd
        data = batches(steps, bs, 224, 4, args.device)
        loops = dict(fp32=engine_loop, bf16=lambda m, d, o, dev: engine_loop(m, d, o, dev, bf16=True))
        rates = side_by_side(loops, model, data, args.device, rounds)
        for dt, key in (('float32', 'fp32'), ('bfloat16', 'bf16')):
            img_s, img_s_cpu = (max(r[j] for r in rates[key]) for j in (0, 1))
            rows.append(dict(what=f'{name} train step b{bs}', dtype=dt, gflops=img_s * train / 1e9, gflops_cpu=img_s_cpu * train / 1e9,
                             fwd_gflop_per_img=fwd / 1e9, train_gflop_per_img=train / 1e9, counter_train_gflop=raw / 1e9,
                             img_s=img_s, img_s_cpu=img_s_cpu, fraction_of_gemm=img_s * train / 1e9 / peak[dt][0],
                             fraction_of_gemm_cpu=img_s_cpu * train / 1e9 / peak[dt][1]))
            print(rows[-1], flush=True)
    return rows, ("FLOPs: torch.utils.flop_counter.FlopCounterMode forward (matmul/conv only); train = 3 x forward "
                  "(counter_train_gflop: the counter's own forward+backward, inflated for depthwise convs). fraction_of_gemm = achieved GFLOP/s "
                  "of medrepro's train step (best round) / GEMM GFLOP/s (best of reps) of the same dtype; *_cpu: on CPU-busy time.")


# ---------------------------------------------------------------- 4. bf16 autocast vs fp32

def bf16(args):
    "Throughput of medrepro's train step with bf16 autocast vs fp32 (IConvNeXt-T + fs_step when available)."
    try:
        from medrepro.models_iconvnext import create_mri_model
        from medrepro.steps import fs_step
        make, step, what = lambda: create_mri_model('ICN-T'), fs_step, 'IConvNeXt-T (fs_step)'
    except ImportError:
        make, step, what = lambda: timm.create_model('convnext_tiny', num_classes=4), engine.classification_step, 'convnext_tiny'
    (images, rounds), rows = ((16, 2) if args.quick else (48, 3)), []
    for bs in (4, 16):
        steps = max(1, images // bs)
        torch.manual_seed(0); model = make().to(args.device)
        data = batches(steps, bs, 224, 4, args.device)
        loops = dict(bf16=lambda m, d, o, dev: engine_loop(m, d, o, dev, True, step),
                     fp32=lambda m, d, o, dev: engine_loop(m, d, o, dev, False, step))
        rows.append(dict(model=what, batch=bs, steps=steps, rounds=rounds, **ratio_row(side_by_side(loops, model, data, args.device, rounds), 'bf16', 'fp32')))
        print(rows[-1], flush=True)
    return rows, "ratio = bf16 img/s / fp32 img/s (median of per-round ratios); *_cpu: on CPU-busy time; target >= 1.8 at batch 16."


def _flat(d:dict, pre='')->dict:
    "Nested dict -> {'a.b': number}."
    out = {}
    for k, v in d.items():
        if isinstance(v, dict): out.update(_flat(v, f'{pre}{k}.'))
        elif isinstance(v, (int, float)) and not isinstance(v, bool): out[f'{pre}{k}'] = v
    return out


def _run(paper, profile, args, label, **kw)->dict:
    "One `run_paper` call, timed; never raises."
    from medrepro.cli import run_paper
    t0 = time.time()
    try:
        d = run_paper(paper, profile, args.device.type, runs_dir=args.runs_dir, run_id=f'bench-{label}-{profile}-{int(t0)}', **kw)
        m = d/'metrics.json'
        return dict(status='done', seconds=time.time() - t0, run_dir=str(d), metrics=json.loads(m.read_text()) if m.exists() else {})
    except Exception as e:
        return dict(status='failed', seconds=time.time() - t0, error=str(e).splitlines()[0][:300])


def bf16_accuracy(args):
    "Accuracy with and without bf16 on the iconvnext `quick` profile (through medrepro.cli.run_paper -p bf16=...)."
    import papermill as pm
    from medrepro.cli import available_papers, paper_notebook
    if args.quick: return [], 'SKIPPED in --quick (two iconvnext quick runs)'
    if 'iconvnext' not in available_papers(): return [], 'SKIPPED: nbs/papers/iconvnext.ipynb does not exist yet'
    if 'bf16' not in pm.inspect_notebook(str(paper_notebook('iconvnext'))): return [], 'SKIPPED: iconvnext declares no bf16 parameter'
    data = dict(data_root=SHARED, synthetic='no') if (SHARED/'alzheimer-mri-4class').is_dir() else dict(synthetic='yes')
    res = {b: _run('iconvnext', 'quick', args, f'bf16{b}', params=dict(bf16=b), **data) for b in (False, True)}
    m = {b: _flat(r.get('metrics', {})) for b, r in res.items()}
    rows = [dict(metric=k, fp32=m[False][k], bf16=m[True][k], diff=m[True][k] - m[False][k])
            for k in m[False] if 'acc' in k.lower() and k in m[True]]
    rows += [dict(metric='wall_seconds', fp32=res[False]['seconds'], bf16=res[True]['seconds'], diff=res[True]['seconds'] - res[False]['seconds'])]
    errs = '; '.join(f"bf16={b}: {r['error']}" for b, r in res.items() if r['status'] != 'done')
    return rows, f"target: accuracy within 0.01; data: {'real sample' if 'data_root' in data else 'synthetic'}. {errs}"


# ---------------------------------------------------------------- 5. paper wall times

def papers(args):
    "Wall time of each existing paper notebook's profiles through medrepro.cli.run_paper (papermill + kernel start)."
    from medrepro.cli import available_papers
    real = SHARED.is_dir()
    plan = [('smoke', 'real' if real else 'synthetic')] if args.quick else \
           [('smoke', 'synthetic'), *([('smoke', 'real')] if real else []), ('quick', 'real' if real else 'synthetic')]
    rows = []
    for paper in available_papers():
        for profile, data in plan + ([('paper', 'real' if real else 'synthetic')] if args.paper_profile and paper == 'iconvnext' else []):
            kw = dict(data_root=SHARED, synthetic='no') if data == 'real' else dict(synthetic='yes')
            r = _run(paper, profile, args, data, **kw)
            rows.append(dict(paper=paper, profile=profile, data=data, status=r['status'], seconds=r['seconds'],
                             limit_s={'smoke': 90, 'quick': 360, 'paper': 1200 if paper == 'iconvnext' else None}[profile],
                             error=r.get('error', '')))
            print(rows[-1], flush=True)
    if not rows: return [], 'SKIPPED: no paper notebook exists yet (nbs/papers/*.ipynb)'
    return rows, "limits: smoke < 90 s, quick <= ~6 min, iconvnext paper <= 20 min (2 cores)."


BENCHMARKS = dict(overhead=overhead, data_pipeline=data_pipeline, roofline=roofline, bf16=bf16,
                  bf16_accuracy=bf16_accuracy, papers=papers)


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m benchmarks.run', description=__doc__.splitlines()[0])
    ap.add_argument('names', nargs='*', help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    ap.add_argument('--quick', action='store_true', help='short versions')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2)')
    ap.add_argument('--device', default='cpu', help='cpu | cuda | mps | auto')
    ap.add_argument('--paper-profile', action='store_true', help='also time the iconvnext `paper` profile (long)')
    ap.add_argument('--runs-dir', default=None, help='where paper runs go (default: a temporary folder)')
    args = ap.parse_args(argv)
    bad = [n for n in args.names if n not in BENCHMARKS]
    if bad: ap.error(f"unknown benchmark(s) {bad}; choose from {', '.join(BENCHMARKS)}")
    args.device = core.get_device(args.device)
    core.set_threads(args.threads)
    warnings.filterwarnings('ignore', message='.*pretrained weights.*')
    with tempfile.TemporaryDirectory(prefix='medrepro-bench-') as tmp:
        args.runs_dir = args.runs_dir or tmp
        for name in args.names or BENCHMARKS:
            t0, load0 = time.time(), os.getloadavg()
            rows, notes = BENCHMARKS[name](args)
            record(name, rows, notes, args, t0, load0)
    return 0


if __name__ == '__main__':
    sys.exit(main())
