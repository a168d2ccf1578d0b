"""The `milestones` command line. Thin: it parses arguments and calls the modules that do the work.

    milestones list [--json]              every paper, in history order, with its computed status
    milestones show ID                    one paper: facts, idea, status, claim, config per scale
    milestones run ID [options]           run one paper's experiment; writes result.json in --out
    milestones reproduce [ID ...]         run every implemented paper's experiment; writes summary.json
    milestones cite ID                    BibTeX
    milestones book [--out DIR]           the static HTML book: notes, code, plots and verdicts
    milestones bench [ID ...]             our implementations' speed against their references
    milestones generate RUN_DIR [options] samples from a trained generative run: text, or a PNG of images;
                                          `generate gpt2` samples the pretrained Shakespeare GPT
    milestones cache list|prune|clear     the tokenizers, corpora and models that papers build once and share

A mistake the user can fix prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from milestones import catalog, papers
from milestones.core.errors import UserError
from milestones.core.experiment import SCALES, default_out
from milestones.core.run import make_output_folder


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def cmd_list(args) -> int:
    results = papers.latest_results(Path(args.runs))
    rows = [(p, papers.status(p, results)) for p in catalog.PAPERS]
    if args.json:
        fields = [dataclasses.asdict(p) | {"status": s} for p, s in rows]
        print(json.dumps(fields, indent=2))
        return 0
    if args.markdown:
        print(markdown_table())
        return 0
    mark = {True: "x", False: "."}
    print(f"{'id':24} {'year':4}  {'era':13} N M E X  {'title':60}  verdict")
    for p, s in rows:
        flags = " ".join(mark[s[k]] for k in ("notes", "model", "equivalence_test", "experiment"))
        verdict = s["verdict"] or ("not run" if s["experiment"] else "")
        print(f"{p.id:24} {p.year}  {p.era:13} {flags}  {p.title[:60]:60}  {verdict}".rstrip())
    done = sum(s["implemented"] for _, s in rows)
    print(f"\n{done} of {len(rows)} papers implemented (N notes, M model, E equivalence test, X experiment)")
    return 0


def markdown_table() -> str:
    """The catalog as the README's paper table (tests/test_readme.py keeps the README in step)."""
    lines = ["| # | paper | year | authors | era | constraint lifted |", "|---|---|---|---|---|---|"]
    for i, p in enumerate(catalog.PAPERS, 1):
        lines.append(f"| {i} | [{p.title}]({p.url}) (`{p.id}`) | {p.year} | {p.short_authors} | "
                     f"{catalog.ERAS[p.era]} | {p.constraint} |")
    return "\n".join(lines)


def cmd_show(args) -> int:
    p = papers.lookup(args.paper)
    s = papers.status(p, papers.latest_results(Path(args.runs)))
    print(f"{p.title}\n{', '.join(p.authors)}\n{p.venue}, {p.year}  {p.url}\n")
    print(f"era: {catalog.ERAS[p.era]}; lifted the constraint of {p.constraint}")
    print(f"builds on: {', '.join(p.builds_on) or 'nothing earlier in the catalog'}")
    built_upon = [q.id for q in catalog.PAPERS if p.id in q.builds_on]
    print(f"built upon by: {', '.join(built_upon) or 'nothing yet'}")
    print(f"idea: {p.idea}\n")
    print("status: " + ", ".join(f"{k.replace('_', ' ')} {'yes' if s[k] else 'no'}"
                                 for k in ("notes", "model", "equivalence_test", "experiment")))
    if s["experiment"]:
        run = papers.load_experiment(p)
        print(f"claim: {run.claim}")
        print(f"last verdict: {s['verdict'] or 'not run yet'}")
        print("config (smoke / quick / full):")
        for field in dataclasses.fields(run.config_type):
            values = " / ".join(str(getattr(run.scales[scale], field.name)) for scale in SCALES)
            print(f"  {field.name:24} {values}")
    print(f"\nfiles: {papers.folder(p)}")
    return 0


def cmd_run(args) -> int:
    p = papers.lookup(args.paper)
    run = papers.load_experiment(p)
    out = Path(args.out) if args.out else default_out(p.id, args.scale)
    if args.resume and not out.is_dir():
        raise UserError(f"--resume needs an existing run folder; {out} does not exist")
    result = run(args.scale, out, seed=args.seed, device=args.device, overrides=_overrides(args.set),
                 resume=args.resume, quiet=args.quiet)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, the first process reports for all
        return 0
    print(result.report())
    print(f"result: {out / 'result.json'}")
    for name in result.artifacts:
        print(f"artifact: {out / name}")
    return 0


def cmd_reproduce(args) -> int:
    chosen = [papers.lookup(i) for i in args.papers] if args.papers else papers.implemented()
    runs = [(p, papers.load_experiment(p)) for p in chosen]
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    root = Path(args.out) if args.out else default_out("reproduce", args.scale)
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} already holds a run; choose another --out")
    make_output_folder(root)
    summary, started = [], time.perf_counter()
    jobs = [(p, run, seed) for p, run in runs for seed in seeds]
    for k, (p, run, seed) in enumerate(jobs, 1):
        on_seed = f" (seed {seed})" if len(seeds) > 1 else ""
        print(f"[{k}/{len(jobs)}] {p.id}{on_seed}: {run.claim[:90]}...", flush=True)
        out = root / p.id / f"seed-{seed}" if len(seeds) > 1 else root / p.id
        try:
            result = run(args.scale, out, seed=seed, device=args.device, quiet=args.quiet)
            row = {"paper": p.id, "seed": seed, "holds": result.holds, "verdict": result.verdict,
                   "wall_s": round(result.wall_s, 2), "checks": result.to_dict()["checks"], "claim": result.claim,
                   "overrides": result.overrides}
        except UserError:
            raise
        except Exception as e:  # one broken paper must not hide the others' verdicts
            traceback.print_exc()
            row = {"paper": p.id, "seed": seed, "holds": False, "verdict": "error",
                   "error": f"{type(e).__name__}: {e}", "wall_s": None, "checks": [], "claim": run.claim}
        summary.append(row)
        print(f"    {row['verdict']}" + (f" in {row['wall_s']:.1f} s" if row["wall_s"] is not None else ""), flush=True)
    total = time.perf_counter() - started
    record = {"scale": args.scale, "seed": seeds[0], "seeds": seeds,
              "created": datetime.now().isoformat(timespec="seconds"), "wall_s": round(total, 2), "papers": summary}
    if len(seeds) > 1:
        record["over_seeds"] = [{"paper": p.id} | papers.over_seeds([r for r in summary if r["paper"] == p.id])
                                for p, _ in runs]
    (root / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\n{'paper':24} {'time':>8}  {'smallest margin':>15}  verdict")
    for row in summary:
        margin = min((c["margin"] for c in row["checks"] if not c.get("control")), default=float("nan"))
        wall = f"{row['wall_s']:.1f} s" if row["wall_s"] is not None else "-"
        name = f"{row['paper']} (seed {row['seed']})" if len(seeds) > 1 else row["paper"]
        print(f"{name:24} {wall:>8}  {margin:>+15.4g}  {papers.verdict_text(row)}")
    if len(seeds) > 1:
        print(f"\nOver seeds {', '.join(map(str, seeds))}: on how many seeds each check holds")
        for folded in record["over_seeds"]:
            print(f"{folded['paper']:24} {folded['verdict']}")
            for c in folded["checks"]:
                print(f"    {c['holds_on']}/{len(seeds)}  {c['check']}" + ("  (control)" if c["control"] else ""))
        stable = sum(f["stable"] for f in record["over_seeds"])
        print(f"\n{stable} of {len(runs)} papers give every check the same outcome on every seed")
    held = sum(r["holds"] for r in summary)
    print(f"\n{held} of {len(summary)} runs hold their claim; {total:.0f} s in all; everything is under {root}")
    return 1 if any(r["verdict"] == "error" for r in summary) else 0


def parse_seeds(text: str) -> list[int]:
    """--seeds 0,1,2 -> [0, 1, 2]: distinct integers."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--seeds {text}: expected integers separated by commas, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text}: expected distinct integers separated by commas, e.g. --seeds 0,1,2")
    return seeds


def cmd_cite(args) -> int:
    print(catalog.bibtex(papers.lookup(args.paper)))
    return 0


def cmd_book(args) -> int:
    from milestones.book import build_book  # markdown, latex2mathml and pygments load only here

    if args.book_runs and not Path(args.book_runs).is_dir():
        raise UserError(f"--runs {args.book_runs} is not a folder; pass runs/ or a reproduce folder")
    built = build_book(Path(args.out), Path(args.book_runs or args.runs))
    print(f"book: {len(built.pages)} pages in {built.seconds:.1f} s")
    print(built.index.resolve())
    return 0


def cmd_bench(args) -> int:
    import importlib

    import torch

    from milestones.core.bench import matmul_peak_flops

    chosen = [papers.lookup(i) for i in args.papers] if args.papers else list(catalog.PAPERS)
    benched = [p for p in chosen if (papers.folder(p) / "bench.py").is_file()]
    if not benched:
        raise UserError(f"no benchmark among {', '.join(p.id for p in chosen)}; "
                        "papers with one have a bench.py beside their model")
    print(f"this machine's fp32 matmul peak: {matmul_peak_flops() / 1e9:.1f} GFLOP/s "
          f"({torch.get_num_threads()} threads)\n")
    print(f"{'paper':10} {'case':64} {'ours':>18} {'reference':>30} {'slowdown':>9}")
    for p in benched:
        for row in importlib.import_module(f"{p.module}.bench").benchmark(quick=args.quick):
            ours = f"{row['ours']:.4g} {row['unit']}"
            reference = f"{row['reference']:.4g} {row['unit']} ({row['reference_name']})"
            print(f"{p.id:10} {row['case'][:64]:64} {ours:>18} {reference:>30} {row['slowdown']:>8.2f}x", flush=True)
    return 0


def cmd_generate(args) -> int:
    import importlib

    run_dir = Path(args.run_dir)
    if not run_dir.exists() and args.run_dir in {p.id for p in catalog.PAPERS}:
        paper_id = args.run_dir  # a paper's pretrained model: the cache entry is laid out as a run folder
    else:
        try:
            paper_id = json.loads((run_dir / "result.json").read_text())["paper"]
        except (OSError, ValueError, KeyError):
            raise UserError(f"{run_dir} is not a run folder (no readable result.json); pass a folder `milestones run` "
                            "wrote, or gpt2 for the pretrained Shakespeare GPT") from None
    paper = papers.lookup(paper_id)
    try:
        module = importlib.import_module(f"{paper.module}.generate")
    except ModuleNotFoundError:
        raise UserError(f"{paper_id} runs make no samples; generate works on runs of generative papers") from None
    if paper_id == args.run_dir:
        if not hasattr(module, "pretrained_run"):
            raise UserError(f"{paper_id} has no pretrained model; pass a run folder that `milestones run {paper_id}` "
                            "wrote")
        run_dir = module.pretrained_run()
    if hasattr(module, "sample_images"):
        return write_image_samples(module, run_dir, args)
    print(args.prompt, end="", flush=True)
    for piece in module.generate(run_dir, args.prompt, tokens=args.tokens, temperature=args.temperature,
                                 top_k=args.top_k, top_p=args.top_p, seed=args.seed, device=args.device):
        print(piece, end="", flush=True)
    print()
    return 0


def write_image_samples(module, run_dir: Path, args) -> int:
    """An image paper's samples as a PNG grid, each captioned with the digits judge's reading."""
    import torch

    from milestones.core import generative
    from milestones.core.run import pick_device

    if args.prompt or args.top_k is not None or args.top_p is not None:
        raise UserError("--prompt, --top-k and --top-p are for text models; an image model takes --count, --seed, "
                        "--out and --device")
    if args.count < 1:
        raise UserError(f"--count must be at least 1, not {args.count}")
    out = Path(args.out) if args.out else run_dir / "generated.png"
    images = module.sample_images(run_dir, args.count, torch.Generator().manual_seed(args.seed),
                                  pick_device(args.device)).cpu()
    readings = generative.judge_predictions(images)
    generative.sample_grid(out, images, [f"judge: {int(c)}" for c in readings],
                           title=f"{args.count} samples (seed {args.seed}) from {run_dir}")
    print(f"wrote {out}")
    return 0


def cmd_cache(args) -> int:
    from milestones.core import cache

    if args.action == "clear":
        print(f"removed {cache.clear()} entries from {cache.root()}")
        return 0
    if args.action == "prune":
        removed = cache.prune()
        print(f"removed {len(removed)} superseded entries from {cache.root()}: {', '.join(removed) or 'none'}")
        return 0
    found = cache.entries()
    print(f"{len(found)} entries in {cache.root()}")
    for entry in found:
        print(f"  {entry['name']:40} {entry['bytes'] / 1e6:8.1f} MB  built {entry['created']} "
              f"in {entry['build_s']:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milestones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs", help="where earlier runs are looked up for verdicts (default runs/)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="every paper with its status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--markdown", action="store_true", help="the catalog as a markdown table (for the README)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one paper in detail")
    p.add_argument("paper")
    p.set_defaults(func=cmd_show)

    def experiment_options(p, out_help):
        p.add_argument("--scale", default="quick", choices=SCALES)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
        p.add_argument("--out", help=out_help)
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("run", help="run one paper's experiment")
    p.add_argument("paper")
    experiment_options(p, "the run folder (default: a new folder under runs/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("reproduce", help="run every implemented paper's experiment")
    p.add_argument("papers", nargs="*", help="only these papers (default: all implemented)")
    experiment_options(p, "the folder for all runs (default: a new folder under runs/)")
    p.add_argument("--seeds", help="run each paper on each of these seeds (e.g. 0,1,2) and fold the verdicts: "
                                   "on how many seeds each check holds")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("cite", help="BibTeX for a paper")
    p.add_argument("paper")
    p.set_defaults(func=cmd_cite)

    p = sub.add_parser("book", help="build the static HTML book")
    p.add_argument("--out", default="build/book", help="the folder to write (default build/book; replaced)")
    p.add_argument("--runs", dest="book_runs", metavar="DIR",
                   help="where results are looked up: runs/ (the default) or one reproduce folder")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("bench", help="time our implementations against their references")
    p.add_argument("papers", nargs="*", help="only these papers (default: every paper with a bench.py)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the benchmarks run")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("generate", help="samples from a trained run: streamed text, or a PNG grid of images")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder that `milestones run` wrote, or gpt2 for the "
                   "pretrained Shakespeare GPT (built on first use, about 5 minutes)")
    p.add_argument("--prompt", default="", help="the text to continue (default: start a new document)")
    p.add_argument("--tokens", type=int, default=200, help="how many tokens to add (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy; higher is more varied (default 0.8)")
    p.add_argument("--top-k", type=int, help="sample only among the K likeliest tokens")
    p.add_argument("--top-p", type=float, help="sample only among the likeliest tokens that make up probability P")
    p.add_argument("--count", type=int, default=40, help="image models: how many samples to draw (default 40)")
    p.add_argument("--out", help="image models: the PNG to write (default RUN_DIR/generated.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("cache", help="show, prune or empty the cache of shared tokenizers, corpora and models")
    p.add_argument("action", choices=("list", "prune", "clear"))
    p.set_defaults(func=cmd_cache)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"milestones: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader (e.g. `| head`) stopped listening
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("milestones: interrupted; the last checkpoint is kept (continue with --resume --out DIR)",
              file=sys.stderr)
        return 130
