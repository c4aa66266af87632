"""Training img/s of medrepro's loop beside a bare PyTorch loop and timm's own `train.py` step: same model, batch and
precision, on a GPU (the target is medrepro >= 0.9 of the bare loop).

    python -m benchmarks.gpu_throughput --device cuda                          # convnext_tiny and resnet50, 224 px, bf16, batch 64
    python -m benchmarks.gpu_throughput --device cuda --precision fp16 --batch 128
    python -m benchmarks.gpu_throughput --device cpu --size 64 --batch 8 --steps 3 --models resnet18   # exercises it anywhere

Each loop gets the same batches from pinned host memory (on CUDA) and copies them to the device without blocking, as a
loader with `pin_memory=True` would; the model is channels_last on CUDA in all three.
- `bare`: `x.to(dev, non_blocking)`, autocast, cross-entropy, `zero_grad`, backward (through `torch.amp.GradScaler`
  for fp16), `step`.
- `timm`: the body of `train_one_epoch` in timm's `train.py` (not in the timm wheel; read from
  github.com/huggingface/pytorch-image-models): input to the device, `contiguous(memory_format=channels_last)`,
  `with amp_autocast(): output = model(input); loss = loss_fn(output, target)`, `optimizer.zero_grad()`, then timm's
  own `timm.utils.NativeScaler` (fp16) or `loss.backward(); optimizer.step()`, and `torch.cuda.synchronize()` per step
  as train.py does.
- `medrepro`: `engine.train_epoch` with `engine.classification_step`, the grad scaler and channels_last that `engine.fit`
  chooses (`distributed.needs_scaler`, `distributed.use_channels_last`), progress bar on.
Rounds alternate which loop goes first; the figure is the median round. Results go to `benchmarks/results/gpu_throughput.json`."""
from __future__ import annotations
import argparse, os, statistics, time
from contextlib import suppress
from functools import partial
import torch
import pandas as pd
import torch.nn.functional as F
import timm
from timm.utils import NativeScaler
from medrepro import engine
from medrepro.distributed import autocast_dtype, needs_scaler, use_channels_last
from benchmarks.run import record, sync

PRECISIONS = dict(fp32=dict(), bf16=dict(bf16=True), fp16=dict(fp16=True))


def host_batches(n:int, bs:int, size:int, n_classes:int, pin:bool)->list:
    "`n` random (x, y) batches in host memory (pinned for CUDA), as a loader hands them over."
    g = torch.Generator().manual_seed(0)
    out = [(torch.randn(bs, 3, size, size, generator=g), torch.randint(0, n_classes, (bs,), generator=g)) for _ in range(n)]
    return [(x.pin_memory(), y.pin_memory()) for x, y in out] if pin else out


def bare_loop(model, data, opt, device, dtype, scaler):
    "A plain PyTorch training loop."
    model.train()
    for x, y in data:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); scaler.scale(loss).backward(); scaler.step(opt); scaler.update()


def timm_loop(model, data, opt, device, dtype, scaler):
    "timm train.py's train_one_epoch step (no mixup, no EMA, no clipping), with its NativeScaler for fp16."
    model.train(); loss_scaler = NativeScaler(device=device.type) if dtype is torch.float16 else None
    amp_autocast = partial(torch.autocast, device_type=device.type, dtype=dtype) if dtype else suppress
    for input, target in data:
        input, target = input.to(device), target.to(device)
        if device.type == 'cuda': input = input.contiguous(memory_format=torch.channels_last)
        with amp_autocast():
            output = model(input); loss = F.cross_entropy(output, target)
        opt.zero_grad()
        if loss_scaler is not None: loss_scaler(loss, opt)
        else: loss.backward(); opt.step()
        sync(device)


def medrepro_loop(model, data, opt, device, cfg, scaler):
    "medrepro's loop as `engine.fit` runs it for one epoch."
    engine.train_epoch(model, data, opt, device, cfg, engine.classification_step, 0, None, scaler)


def measure(name:str, args, device)->list:
    "img/s of the three loops on timm model `name`: median over rounds, and medrepro's and timm's ratio to the bare loop."
    cfg = engine.TrainConfig(progress=True, **PRECISIONS[args.precision])
    dtype = autocast_dtype(device.type, cfg.bf16, cfg.fp16)
    model = timm.create_model(name, pretrained=False, num_classes=10).to(device)
    if use_channels_last(model, device.type): model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_scaler(dtype))
    data = host_batches(args.steps, args.batch, args.size, 10, device.type == 'cuda')
    loops = dict(bare=lambda: bare_loop(model, data, opt, device, dtype, scaler),
                 timm=lambda: timm_loop(model, data, opt, device, dtype, scaler),
                 medrepro=lambda: medrepro_loop(model, data, opt, device, cfg, scaler))
    for fn in loops.values(): fn()   # warm-up: cuDNN autotuning, allocator, first-call costs
    secs = {k: [] for k in loops}
    for r in range(args.rounds):
        for k in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
            sync(device); t = time.perf_counter(); loops[k](); sync(device); secs[k].append(time.perf_counter() - t)
    ips = {k: args.steps * args.batch / statistics.median(v) for k, v in secs.items()}
    return [dict(model=name, batch=args.batch, size=args.size, precision=args.precision, loop=k, img_per_s=round(v, 1),
                 ratio_to_bare=round(v / ips['bare'], 3)) for k, v in ips.items()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cuda', help='cuda (the benchmark) or cpu (a tiny check that it runs)')
    ap.add_argument('--models', nargs='+', default=['convnext_tiny', 'resnet50'])
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--steps', type=int, default=20, help='steps per timed round')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--precision', default='bf16', choices=list(PRECISIONS))
    args = ap.parse_args(argv)
    args.device, args.quick = torch.device(args.device), False
    if args.device.type == 'cuda': torch.backends.cudnn.benchmark = True
    t0, load0 = time.time(), os.getloadavg()
    rows = [r for name in args.models for r in measure(name, args, args.device)]
    notes = (f"{args.steps} steps x {args.rounds} rounds (median), batch {args.batch}, {args.size} px, {args.precision}; "
             "target: medrepro >= 0.9 of bare")
    if args.device.type == 'cuda': return record('gpu_throughput', rows, notes, args, t0, load0)
    print(pd.DataFrame(rows).to_markdown(index=False), notes, '(CPU check: not recorded)', sep='\n')   # only shows it runs
    return rows


if __name__ == '__main__': main()
