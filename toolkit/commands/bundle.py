"""``python -m toolkit bundle …``: set up the real ``atm-things-eeg`` bundle and check what a bundle lacks.

``bundle init atm-things-eeg`` writes the bundle's ``bundle.json``, naming where each part comes from on this machine
(the converted store, encoder checkpoints or training runs, the diffusion prior, CLIP embeddings of the test images,
and the SDXL / IP-Adapter / GIT sources), after checking that the local parts exist and fit together.
``bundle check NAME`` says whether ``load_pipeline(NAME)`` would open, and lists what is missing otherwise.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``bundle`` command group (``init``, ``check``)."""
    from ..cli import add_json_flag

    parser = sub.add_parser("bundle", help="set up the atm-things-eeg bundle and check bundles")
    bundle_sub = parser.add_subparsers(dest="bundle_command", metavar="SUBCOMMAND")
    bundle_sub.required = True

    init = bundle_sub.add_parser(
        "init",
        help="write the atm-things-eeg bundle's manifest (where each of its parts is on this machine)",
        description=(
            "Name the parts of the atm-things-eeg bundle and write BUNDLE_DIR/bundle.json (BUNDLE_DIR is "
            "$EEG_TOOLKIT_HOME/bundles/atm-things-eeg). Local parts must exist; the store, encoders, prior and "
            "embeddings are loaded once to check that their shapes fit. Hub ids (owner/name) are only recorded: "
            "they load on first use from the Hugging Face cache (HF_HUB_OFFLINE=1 forbids downloads). Parts not "
            "given are looked for in BUNDLE_DIR (store/, encoders/NAME/, prior/, embeddings/test_images.safetensors)."
        ),
    )
    init.add_argument("name", metavar="NAME", choices=("atm-things-eeg",), help="the bundle: atm-things-eeg")
    init.add_argument("--store", metavar="STORE", help="converted store (python -m toolkit data convert ROOT STORE)")
    init.add_argument(
        "--images-root",
        metavar="DIR",
        help="folder holding training_images/ and test_images/ (default: $EEG_TOOLKIT_DATA/things-eeg at run time, "
        "else the folder recorded in the store)",
    )
    init.add_argument(
        "--encoder",
        action="append",
        metavar="NAME=DIR",
        help="an encoder: a save_pretrained folder or a python -m toolkit train run directory (repeat for several; "
        "the first is the default)",
    )
    init.add_argument("--default-encoder", metavar="NAME", help="the pipeline's default encoder")
    init.add_argument(
        "--training-setting",
        choices=("intra-subject", "leave-one-subject-out", "joint"),
        help="how bare checkpoints were trained, for their protocol cards (training runs record it themselves)",
    )
    init.add_argument(
        "--prior",
        metavar="DIR",
        help="diffusion prior: a PriorPipeline.save_pretrained folder or a python -m toolkit train --task prior run",
    )
    init.add_argument(
        "--prior-condition",
        choices=("raw", "normalized", "normalized-scaled"),
        default="raw",
        help="what the prior was trained on: the encoder's raw output (ATM, default), its L2-normalised output, or "
        "that times sqrt(embed_dim)",
    )
    init.add_argument(
        "--embeddings",
        metavar="FILE",
        help="CLIP embeddings of the test images (python -m toolkit embed ROOT/test_images --no-normalize "
        "--concepts --out FILE)",
    )
    init.add_argument("--train-embeddings", metavar="FILE", help="CLIP embeddings of the training images (optional)")
    init.add_argument("--generator", metavar="ID|DIR", help="SDXL pipeline (default: stabilityai/sdxl-turbo)")
    init.add_argument("--generator-revision", metavar="REV", help="Hub revision of the generator (pin a commit)")
    init.add_argument("--generator-steps", type=int, default=4, metavar="N", help="denoising steps (default: 4)")
    init.add_argument(
        "--generator-guidance", type=float, default=0.0, metavar="W", help="guidance scale (default: 0, SDXL-Turbo)"
    )
    init.add_argument(
        "--ip-adapter",
        metavar="ID|DIR|FILE",
        help="IP-Adapter repository, folder or weights file (default: h94/IP-Adapter)",
    )
    init.add_argument("--ip-adapter-subfolder", metavar="DIR", help="folder inside it (default: sdxl_models)")
    init.add_argument(
        "--ip-adapter-weight",
        metavar="FILE",
        help="weights file inside it (default: ip-adapter_sdxl_vit-h.safetensors)",
    )
    init.add_argument("--ip-adapter-revision", metavar="REV", help="Hub revision of the IP-Adapter")
    init.add_argument("--captioner", metavar="ID|DIR", help="GIT model (default: microsoft/git-large-coco)")
    init.add_argument("--captioner-revision", metavar="REV", help="Hub revision of the captioner")
    init.add_argument(
        "--projector",
        metavar="ID|DIR",
        help="GIT token projector (a PixelProjector folder or a --task projector run); without one, captions are of "
        "the decoded images",
    )
    init.add_argument("--projector-revision", metavar="REV", help="Hub revision of the projector")
    init.add_argument("--clip-model", metavar="NAME", help="OpenCLIP model (default: ViT-H-14)")
    init.add_argument(
        "--clip-pretrained", metavar="TAG|FILE", help="OpenCLIP tag or checkpoint file (default: laion2b_s32b_b79k)"
    )
    init.add_argument(
        "--no-check", action="store_true", help="do not load the store, encoders, prior and embeddings to check them"
    )
    add_json_flag(init)
    init.set_defaults(func=run_init)

    check = bundle_sub.add_parser(
        "check", help="whether a bundle opens as a pipeline; lists what is missing (exit 2) otherwise"
    )
    check.add_argument("name", metavar="NAME", help="demo or atm-things-eeg")
    add_json_flag(check)
    check.set_defaults(func=run_check)


def _encoders(values: list[str] | None) -> dict | None:
    from ..errors import ToolkitError

    if not values:
        return None
    out: dict[str, str] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise ToolkitError(f"--encoder {value!r} must be NAME=DIR, e.g. --encoder atm-s=runs/atm-s-sub-08.")
        if name in out:
            raise ToolkitError(f"--encoder {name!r} is given twice; give each encoder once.")
        out[name] = folder
    return out


def run_init(args: argparse.Namespace) -> dict:
    """Write the manifest; return what it names."""
    from ..bundles._real import write_real_bundle_manifest

    path = write_real_bundle_manifest(
        validate=not args.no_check,
        store=args.store,
        images_root=args.images_root,
        encoders=_encoders(args.encoder),
        default_encoder=args.default_encoder,
        training_setting=args.training_setting,
        prior=args.prior,
        prior_condition=args.prior_condition,
        embeddings=args.embeddings,
        train_embeddings=args.train_embeddings,
        generator=args.generator,
        generator_revision=args.generator_revision,
        generator_steps=args.generator_steps,
        generator_guidance=args.generator_guidance,
        ip_adapter=args.ip_adapter,
        ip_adapter_subfolder=args.ip_adapter_subfolder,
        ip_adapter_weight=args.ip_adapter_weight,
        ip_adapter_revision=args.ip_adapter_revision,
        captioner=args.captioner,
        captioner_revision=args.captioner_revision,
        projector=args.projector,
        projector_revision=args.projector_revision,
        clip_model=args.clip_model,
        clip_pretrained=args.clip_pretrained,
    )
    import json

    manifest = json.loads(path.read_text(encoding="utf-8"))
    comps = manifest["components"]
    if not args.json:
        print(f"wrote {path}")
        print(f"  encoders: {', '.join(comps['encoders'])} (default {comps['models']['default_encoder']})")
        print(f"  subjects: {', '.join(comps['dataset'].get('subjects') or [])}")
        print("  open it with: python -m toolkit evaluate --bundle atm-things-eeg  |  python -m toolkit demo "
              "--bundle atm-things-eeg")
    return {"bundle": manifest["bundle"], "manifest": str(path), "components": comps}


def run_check(args: argparse.Namespace) -> dict:
    """Open the bundle's pipeline without loading models; a ToolkitError (exit 2) lists what is missing."""
    from ..bundles import bundle_dir, get_bundle
    from ..pipeline import load_pipeline

    get_bundle(args.name)
    pipe = load_pipeline(args.name, build=False)
    out = {
        "bundle": args.name,
        "path": str(bundle_dir(args.name)),
        "ready": True,
        "encoders": pipe.encoders,
        "subjects": pipe.subjects,
        "backend": pipe.backend.describe(),
    }
    if not args.json:
        print(f"bundle {args.name}: ready ({out['path']})")
        print(f"  encoders: {', '.join(out['encoders'])}; subjects: {', '.join(out['subjects'])}")
        for key, value in out["backend"].items():
            print(f"  {key}: {value}")
    return out
