#!/usr/bin/python3
"""PyTorch side of `deno task bench`: the same SiameseRuCLIP (random weights) on the CPU.

Run by scripts/bench.ts with Debian's python3 (torch 1.13); by hand:

    /usr/bin/python3 scripts/bench/torch_bench.py --threads 2 --batch 32 --image-size 224 --tokens 77

The modules are not copied: they are imported from scripts/fixtures/make_model_fixtures.py
(timm / HF parameter names, the same architecture as lib/model/*). Prints one JSON object:
embedding throughput (products/s, eval mode, no_grad) and training throughput (pairs/s) in
full mode (everything trained) and head mode (the head on precomputed tower features), with
contrastive loss and AdamW as lib/train/trainer.ts.
"""
import argparse
import importlib.util
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_model_module():
    path = os.path.join(ROOT, "scripts", "fixtures", "make_model_fixtures.py")
    spec = importlib.util.spec_from_file_location("make_model_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def product_batch(n, cfg, image_size, tokens, gen):
    vocab = cfg["nameBert"]["vocabSize"]
    images = torch.randn(n, 3, image_size, image_size, generator=gen)
    ids = lambda: torch.randint(1, vocab, (n, tokens), generator=gen)
    mask = torch.ones(n, tokens, dtype=torch.long)
    return images, ids(), mask, ids(), mask.clone()


def timed(fn, repeats):
    """Median-free simple timing: total seconds of `repeats` calls after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def contrastive(d, y, margin=1.0):
    return torch.mean(y * d.pow(2) + (1 - y) * torch.clamp(margin - d, min=0).pow(2))


def pair_indices(pairs, products, gen):
    left = torch.randint(0, products, (pairs,), generator=gen)
    right = (left + 1 + torch.randint(0, products - 1, (pairs,), generator=gen)) % products
    labels = (torch.rand(pairs, generator=gen) < 0.5).float()
    return left, right, labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--tokens", type=int, default=77)
    parser.add_argument("--embed-batches", type=int, default=1)
    parser.add_argument("--train-pairs", type=int, default=8, help="pairs per full-mode step")
    parser.add_argument("--train-steps", type=int, default=1)
    parser.add_argument("--head-pairs", type=int, default=60)
    parser.add_argument("--head-steps", type=int, default=50)
    parser.add_argument("--preset", choices=["real", "tiny"], default="real")
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--export-onnx", default=None, help="also export the image tower to this ONNX file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mm = load_model_module()
    cfg = dict(mm.REAL if args.preset == "real" else mm.TINY)
    model = mm.SiameseRuCLIP(cfg)
    gen = torch.Generator().manual_seed(1)
    result = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "preset": args.preset,
        "batchSize": args.batch,
        "imageSize": args.image_size,
        "tokens": args.tokens,
        "parameters": sum(p.numel() for p in model.parameters()),
    }

    # (a) embedding throughput, inference
    model.eval()
    batch = product_batch(args.batch, cfg, args.image_size, args.tokens, gen)
    with torch.no_grad():
        seconds = timed(lambda: model.embed(*batch), args.embed_batches)
    result["embed"] = {"productsPerSecond": args.batch / seconds, "secondsPerBatch": seconds, "batches": args.embed_batches}
    with torch.no_grad():
        t0 = time.perf_counter()
        model.ruclip.encode_image(batch[0])
        image_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.ruclip.encode_text(batch[1], batch[2])
        model.description_transformer(batch[3], batch[4])
        text_s = time.perf_counter() - t0
    result["embedSplit"] = {"imageTowerSeconds": image_s, "textTowersSeconds": text_s}

    # (b) training throughput: full mode (each distinct product of a step encoded once)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=1e-2)
    model.train()
    if not args.skip_full:
        products = max(2, min(args.batch, 2 * args.train_pairs))
        pbatch = product_batch(products, cfg, args.image_size, args.tokens, gen)
        left, right, labels = pair_indices(args.train_pairs, products, gen)

        def full_step():
            opt.zero_grad()
            emb = model.embed(*pbatch)
            loss = contrastive(F.pairwise_distance(emb[left], emb[right]), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        seconds = timed(full_step, args.train_steps)
        result["trainFull"] = {
            "pairsPerSecond": args.train_pairs / seconds,
            "secondsPerStep": seconds,
            "pairsPerStep": args.train_pairs,
            "productsPerStep": products,
        }

    # (b) head mode: towers frozen, features precomputed
    features = torch.randn(2 * args.head_pairs, model.hidden_dim, generator=gen)
    left, right, labels = pair_indices(args.head_pairs, 2 * args.head_pairs, gen)
    head_opt = torch.optim.AdamW(model.head.parameters(), lr=5e-5, weight_decay=1e-2)

    def head_step():
        head_opt.zero_grad()
        emb = model.head(features)
        loss = contrastive(F.pairwise_distance(emb[left], emb[right]), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.head.parameters(), 1.0)
        head_opt.step()

    seconds = timed(head_step, args.head_steps)
    result["trainHead"] = {"pairsPerSecond": args.head_pairs / seconds, "secondsPerStep": seconds, "pairsPerStep": args.head_pairs}
    if args.export_onnx:
        # The image tower as ONNX (for the bench's onnxruntime comparison; never committed).
        try:
            model.eval()
            t0 = time.perf_counter()
            torch.onnx.export(
                model.ruclip.visual, torch.randn(1, 3, args.image_size, args.image_size), args.export_onnx,
                input_names=["images"], output_names=["features"], dynamic_axes={"images": {0: "n"}}, opset_version=14,
            )
            result["onnx"] = {"path": args.export_onnx, "exportSeconds": time.perf_counter() - t0}
        except Exception as error:  # noqa: BLE001 - reported, not fatal
            result["onnx"] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
