"""Picture quality (issue 14): cut-outs against ground truth, the cover gate on labelled covers, and its cost.

The labelled set is generated (``demo.labelled_pictures``): the demo's 3D renders with their true
object mask — on the demo's sets (brick, loft, workshop, grey studio sweep) and pasted on a digitally white
backdrop — and scikit-image photographs cut along a known outline, composited on white or on textured photographs.
Bad covers are derived from good ones (text banner, diagonal watermark, badge, truncated object, two products);
damaged cut-outs come from a remover that returns the true mask damaged the way u2netp fails (a part left as a
faint ghost, fragments, a hollow outline).

1. **Cut-out quality**, today's path (u2netp's raw mask composited as is, the model on every picture) against
   the new one (studio flood fill on white backdrops, mask clean-up), without and with the colour refinement of
   model cut-outs: IoU of the final object mask (alpha >= 50 % on the working copy) against the truth — what is
   visible (``visible_truth``; the source's alpha as pasted is reported beside it) — mean and worst; and the
   share of covers with no non-white pixel outside the true object (canvas pixels under 250 in some channel,
   farther than 1.5 % of the canvas side from the true object, where JPEG ringing cannot reach). A cover without
   a cut-out counts as hazy.
2. **The gate**: precision and recall of its refusals. A cover is bad when its picture has a defect that is still
   visible on the cover (an overlay the cut-out removed entirely leaves a clean cover), when the remover damaged
   it, or when its cut-out is poor (IoU < 0.9 against the truth: what a seller would see as a broken cover).
3. **Cost** per cover candidate, on a quiet machine when possible: mask clean-up, studio flood fill, the gate
   without text, text detection + recognition; the model run for reference.

Run: ``python -m benchmarks.picture_quality`` (appends to ``RESULTS.md``; ``--no-append`` prints only).
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from benchmarks.processing_costs import Samples, _sample
from demo import labelled_pictures as lp
from ml_images.download.results import DownloadedImage
from ml_images.processing.background import BackgroundRemover, get_shared_remover
from ml_images.processing.colour_refine import DEFAULT_COLOUR_REFINE, ColourRefine, refine_mask
from ml_images.processing.cover_gate import CoverGate, CutoutView
from ml_images.processing.cutout import bool_image, place_mask
from ml_images.processing.mask_cleanup import HARD, clean_mask
from ml_images.processing.processor import JUDGE_SIDE, CoverTrial, ImageProcessorService
from ml_images.processing.studio_cutout import detect_backdrop, studio_alpha
from ml_images.processing.text_detection import get_shared_text_detector
from ml_images.search.candidates import ImageCandidate

GOOD_IOU = 0.9  # below this a cut-out is a damaged cover
WHITE_LEVEL = 250
EDGE_TOLERANCE = 0.015  # of the canvas side
IOU_GOAL, HAZE_FREE_GOAL, GATE_GOAL, TEXT_MS_GOAL = 0.95, 0.95, 0.9, 150.0


def download(image: Image.Image, index: int) -> DownloadedImage:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    url = f"https://127.0.0.1/labelled/{index}.jpg"
    return DownloadedImage(
        candidate=ImageCandidate(image_url=url, rank=index), final_url=url, data=out.getvalue(), format="jpeg"
    )


# -- measuring one cover --------------------------------------------------------------------------------------------


def work_truth(truth: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(truth.resize(size, Image.Resampling.BILINEAR)) >= 128


def cut_iou(trial: CoverTrial, truth: Image.Image) -> float:
    """IoU of the composited object (alpha >= 50 % on the working copy) with the true mask; 0 without a cut-out."""
    if trial.cutout is None:
        return 0.0
    t = work_truth(truth, trial.work_size)
    m = trial.cutout.alpha >= 128
    union = int((t | m).sum())
    return float((t & m).sum()) / union if union else 0.0


def hazy(trial: CoverTrial, truth: Image.Image, canvas_size: int, fill_ratio: float) -> int:
    """Non-white pixels on the stored cover away from the true object (JPEG ringing stays within the margin);
    -1 when there is no cut-out (the picture's own background is all there)."""
    if trial.cutout is None or trial.object_box is None:
        return -1
    canvas = np.asarray(Image.open(io.BytesIO(trial.image.jpeg)).convert("RGB"))
    on_canvas = place_mask(
        truth.resize(trial.work_size, Image.Resampling.BILINEAR), trial.object_box, canvas_size, fill_ratio
    )
    near = ndi.binary_dilation(np.asarray(on_canvas) > 0, iterations=max(1, round(EDGE_TOLERANCE * canvas_size)))
    outside = canvas[~near]
    return int((outside.min(axis=1) < WHITE_LEVEL).sum())


def defect_visible(picture: lp.LabelledPicture, trial: CoverTrial) -> bool:
    """Whether the added graphics survive on the cover (a cut-out may remove a banner or badge entirely)."""
    if picture.overlay is None:
        return picture.defect != lp.GOOD
    if trial.cutout is None:
        return True
    overlay = np.asarray(picture.overlay.resize(trial.work_size, Image.Resampling.BILINEAR)) >= 128
    kept = overlay & (trial.cutout.alpha >= 128)
    return bool(kept.sum() >= 0.05 * max(1, overlay.sum()) or kept.sum() >= 0.005 * max(1, trial.cutout.alpha.size))


# -- a remover that fails the way u2netp does -------------------------------------------------------------------


class DamagedRemover(BackgroundRemover):
    """Returns the true mask damaged: ``ghost`` (the lower part and a side of the object left at faint alpha, as
    when u2netp drops a monitor's bezel and stand), ``fragments`` (broken into three pieces), ``hollow`` (an
    outline only)."""

    def __init__(self, truth: Image.Image, damage: str) -> None:
        super().__init__("u2netp")
        self.model_name = f"damaged-{damage}"
        self.truth, self.damage = truth, damage

    def remove(self, image: Image.Image) -> Image.Image:
        t = work_truth(self.truth, image.size)
        alpha = np.where(t, 255, 0).astype(np.uint8)
        ys, xs = np.nonzero(t)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        height, width = y1 - y0 + 1, x1 - x0 + 1
        if self.damage == "ghost":  # the lower 40 % and a side band dropped to a faint ghost
            lost = t.copy()
            lost[: y0 + round(0.6 * height)] = False
            lost[:, x0 + round(0.15 * width) :] &= np.arange(t.shape[0])[:, None] >= y0 + round(0.6 * height)
            lost |= t & (np.arange(t.shape[1])[None, :] < x0 + round(0.15 * width))
            alpha[lost] = 60
        elif self.damage == "fragments":  # broken into three pieces across its longer side
            gap = max(3, round(0.04 * max(width, height)))
            for third in (1, 2):
                if height >= width:
                    cut = y0 + third * height // 3
                    alpha[cut : cut + gap] = 0
                else:
                    cut = x0 + third * width // 3
                    alpha[:, cut : cut + gap] = 0
        elif self.damage == "hollow":  # the outline only
            core = ndi.distance_transform_edt(t) > max(2, round(0.08 * min(width, height)))
            alpha[core] = 0
        out = image.convert("RGBA")
        out.putalpha(Image.fromarray(alpha, "L"))
        return out


# -- the run ------------------------------------------------------------------------------------------------------


@dataclass
class Judged:
    picture: lp.LabelledPicture
    bad: bool
    why: str  # what makes it bad (or "good")
    refused: bool
    codes: tuple[str, ...]


@dataclass
class Figures:
    iou_today: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    iou_new: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    iou_new_pasted: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # against the old label
    hazy_today: dict[str, list[bool]] = field(default_factory=dict)
    hazy_new: dict[str, list[bool]] = field(default_factory=dict)
    hazy_new_pasted: dict[str, list[bool]] = field(default_factory=dict)
    relabelled: list[str] = field(default_factory=list)  # pictures whose visible truth differs from the pasted alpha
    methods: dict[str, int] = field(default_factory=dict)
    hazy_names: list[str] = field(default_factory=list)  # new covers with non-white pixels away from the object
    judged: list[Judged] = field(default_factory=list)
    trial_seconds: list[float] = field(default_factory=list)


GROUPS = {
    "3D render on white (studio)": (lp.STUDIO,),
    "photo on white (studio)": (lp.PHOTO_WHITE,),
    "3D render on a set (textured)": (lp.SCENE,),
    "photo on a texture (textured)": (lp.PHOTO_TEXTURED,),
    "all studio (white backdrop)": (lp.STUDIO, lp.PHOTO_WHITE),
    "all textured": (lp.SCENE, lp.PHOTO_TEXTURED),
}


def measure(progress: Callable[[str], None], *, quick: bool, refine: ColourRefine | None) -> Figures:
    """The set through today's path and the new one (``refine``: the colour refinement of model cut-outs)."""
    remover = get_shared_remover("u2netp")
    detector = get_shared_text_detector()
    remover.load()
    detector.load()
    today = ImageProcessorService(remover, clean_masks=False, studio_cutouts=False, detect_text=False)
    new = ImageProcessorService(remover, text_detector=detector, colour_refine=refine)
    canvas, fill = new.canvas_size, new.fill_ratio
    figures = Figures()
    good = list(lp.good_pictures())
    bad = list(lp.bad_pictures())
    if quick:
        good, bad = good[::4], bad[::3]
    progress(f"{len(good)} good and {len(bad)} bad pictures generated")
    damaged_sources = [p for p in good if p.kind in (lp.SCENE, lp.PHOTO_TEXTURED)][:: max(1, len(good) // 12)][:12]

    for index, picture in enumerate(good):
        data = download(picture.image, index)
        old_trial = today.trial_cover(data)
        started = time.perf_counter()
        new_trial = new.trial_cover(data)
        figures.trial_seconds.append(time.perf_counter() - started)
        iou_old, iou_new = cut_iou(old_trial, picture.truth), cut_iou(new_trial, picture.truth)
        figures.iou_today.setdefault(picture.kind, []).append((iou_old, picture.name))
        figures.iou_new.setdefault(picture.kind, []).append((iou_new, picture.name))
        haze_old = hazy(old_trial, picture.truth, canvas, fill)
        haze_new = hazy(new_trial, picture.truth, canvas, fill)
        figures.hazy_today.setdefault(picture.kind, []).append(haze_old != 0)
        figures.hazy_new.setdefault(picture.kind, []).append(haze_new != 0)
        pasted = picture.pasted if picture.pasted is not None else picture.truth
        iou_pasted = cut_iou(new_trial, pasted)
        figures.iou_new_pasted.setdefault(picture.kind, []).append((iou_pasted, picture.name))
        figures.hazy_new_pasted.setdefault(picture.kind, []).append(hazy(new_trial, pasted, canvas, fill) != 0)
        if picture.pasted is not None:
            truth_area = int((np.asarray(picture.truth) >= 128).sum())
            pasted_area = int((np.asarray(picture.pasted) >= 128).sum())
            figures.relabelled.append(
                f"{picture.name} (visible {100 * truth_area / max(1, pasted_area):.0f} % of the pasted alpha; "
                f"IoU {iou_pasted:.3f} → {iou_new:.3f})"
            )
        if haze_new:
            figures.hazy_names.append(f"{picture.name} ({haze_new} px)" if haze_new > 0 else f"{picture.name} (no cut)")
        method = new_trial.image.background_method or "none"
        figures.methods[method] = figures.methods.get(method, 0) + 1
        poor = iou_new < GOOD_IOU
        figures.judged.append(
            Judged(
                picture,
                poor,
                f"cut-out IoU {iou_new:.2f}" if poor else "good",
                not new_trial.checks.passed,
                new_trial.checks.failed_codes,
            )
        )
    progress("good pictures measured")
    for index, picture in enumerate(bad, start=len(good)):
        trial = new.trial_cover(download(picture.image, index))
        visible = defect_visible(picture, trial)
        why = picture.defect if visible else f"{picture.defect} removed by the cut-out"
        figures.judged.append(Judged(picture, visible, why, not trial.checks.passed, trial.checks.failed_codes))
    progress("bad pictures judged")
    for index, picture in enumerate(damaged_sources):
        damage = ("ghost", "fragments", "hollow")[index % 3]
        service = ImageProcessorService(
            DamagedRemover(picture.truth, damage), text_detector=detector, studio_cutouts=False, colour_refine=refine
        )
        trial = service.trial_cover(download(picture.image, 1000 + index))
        renamed = lp.LabelledPicture(
            f"{picture.name}~{damage}", picture.kind, picture.image, picture.truth, defect=f"damaged_{damage}"
        )
        figures.judged.append(
            Judged(renamed, True, f"damaged cut-out ({damage})", not trial.checks.passed, trial.checks.failed_codes)
        )
    progress("damaged cut-outs judged")
    return figures


def cutout_rows(before: Figures, after: Figures) -> list[dict[str, str]]:
    """Per group: today's path, the new path without the colour refinement (against the old label and the visible
    truth), and with it."""
    rows = []

    def pick(source: dict[str, list[Any]], kinds: tuple[str, ...]) -> list[Any]:
        return [v for k in kinds for v in source.get(k, [])]

    def free(flags: list[bool]) -> float:
        return 1 - sum(flags) / len(flags)

    for label, kinds in GROUPS.items():
        old, base, new = pick(before.iou_today, kinds), pick(before.iou_new, kinds), pick(after.iou_new, kinds)
        if not new:
            continue
        pasted, haze_pasted = pick(before.iou_new_pasted, kinds), pick(before.hazy_new_pasted, kinds)
        haze_base, haze_new = pick(before.hazy_new, kinds), pick(after.hazy_new, kinds)
        worst_base, worst_new = min(base), min(new)
        mean_new, free_new = statistics.mean(v for v, _ in new), free(haze_new)
        goal = mean_new >= IOU_GOAL and free_new >= HAZE_FREE_GOAL
        rows.append(
            {
                "pictures": f"{label}, n={len(new)}",
                "raw u2netp mean IoU": f"{statistics.mean(v for v, _ in old):.3f}",
                "no refinement, old label (pasted alpha): mean IoU": f"{statistics.mean(v for v, _ in pasted):.3f}",
                "haze-free (old label)": f"{100 * free(haze_pasted):.0f} %",
                "no refinement, visible truth: mean IoU": f"{statistics.mean(v for v, _ in base):.3f}",
                "worst IoU (no refinement)": f"{worst_base[0]:.3f} ({worst_base[1]})",
                "haze-free (no refinement)": f"{100 * free(haze_base):.0f} %",
                "colour refinement, visible truth: mean IoU": f"{mean_new:.3f}",
                "worst IoU (refined)": f"{worst_new[0]:.3f} ({worst_new[1]})",
                "haze-free (refined)": f"{100 * free_new:.0f} %",
                "goal (IoU ≥ 0.95, ≥ 95 % haze-free)": "met" if goal else "MISSED",
            }
        )
    return rows


def gate_rows(f: Figures) -> tuple[list[dict[str, str]], dict[str, float]]:
    judged = f.judged
    tp = sum(1 for j in judged if j.bad and j.refused)
    fp = sum(1 for j in judged if not j.bad and j.refused)
    fn = sum(1 for j in judged if j.bad and not j.refused)
    tn = sum(1 for j in judged if not j.bad and not j.refused)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    rows = []
    categories: dict[str, list[Judged]] = {}
    for j in judged:
        key = j.why if not j.why.startswith("cut-out IoU") else "poor cut-out (IoU < 0.9)"
        categories.setdefault(key, []).append(j)
    for key in sorted(categories):
        items = categories[key]
        refused = sum(j.refused for j in items)
        codes: dict[str, int] = {}
        for j in items:
            for code in j.codes:
                codes[code] = codes.get(code, 0) + 1
        rows.append(
            {
                "covers": key,
                "label": "bad" if items[0].bad else "good",
                "n": str(len(items)),
                "refused": str(refused),
                "reason codes given": ", ".join(f"{c}×{n}" for c, n in sorted(codes.items(), key=lambda x: -x[1])),
            }
        )
    rows.append(
        {
            "covers": "all",
            "label": f"{tp + fn} bad / {fp + tn} good",
            "n": str(len(judged)),
            "refused": str(tp + fp),
            "reason codes given": f"precision {precision:.3f}, recall {recall:.3f} (goal both ≥ {GATE_GOAL}: "
            + ("met" if precision >= GATE_GOAL and recall >= GATE_GOAL else "MISSED")
            + ")",
        }
    )
    return rows, {"precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def cost_rows(samples: int) -> list[dict[str, str]]:
    """ms per cover candidate of each added step, on a rotation of real covers (quiet samples preferred)."""
    remover = get_shared_remover("u2netp")
    detector = get_shared_text_detector()
    pictures = [p for p in lp.good_pictures() if p.kind in (lp.SCENE, lp.STUDIO)][:8]
    works, alphas, canvases, views = [], [], [], []
    service = ImageProcessorService(remover, text_detector=detector)
    for index, picture in enumerate(pictures):
        work = picture.image.copy()
        work.thumbnail((512, 512), Image.Resampling.BILINEAR)
        works.append(work)
        alphas.append(np.asarray(remover.remove(work).getchannel("A")))
        trial = service.trial_cover(download(picture.image, index))
        canvases.append(Image.open(io.BytesIO(trial.image.jpeg)).convert("RGB"))
        if trial.cutout is not None and trial.object_box is not None:
            box = trial.object_box
            views.append(
                CutoutView(
                    trial.cutout.figures,
                    trial.cutout.object_mask,
                    np.asarray(place_mask(bool_image(trial.cutout.object_mask), box, JUDGE_SIDE, 0.9)) >= 128,
                    np.asarray(place_mask(bool_image(trial.cutout.main), box, JUDGE_SIDE, 0.9)) >= 128,
                )
            )
        else:
            views.append(CutoutView(None, None, None, None))
    objects = [clean_mask(a).alpha >= HARD for a in alphas]
    white = [p.image.copy() for p in lp.good_pictures() if p.kind == lp.STUDIO][:4]
    for w in white:
        w.thumbnail((512, 512), Image.Resampling.BILINEAR)
    no_text_gate = CoverGate(text_detector=None)
    steps: list[tuple[str, Callable[[int], object], float | None]] = [
        ("model run (u2netp on the 512 px copy), for reference", lambda i: remover.remove(works[i % len(works)]), None),
        (
            "mask clean-up (threshold, islands, holes, soft edge, figures)",
            lambda i: clean_mask(alphas[i % len(alphas)]),
            None,
        ),
        (
            "colour refinement of the model's cut-out (histograms, flood from the outline)",
            lambda i: refine_mask(works[i % len(works)], objects[i % len(objects)]),
            None,
        ),
        (
            "studio flood fill (backdrop check + cut-out, no model)",
            lambda i: studio_alpha(
                white[i % len(white)],
                detect_backdrop(white[i % len(white)]),  # type: ignore[arg-type]
            ),
            None,
        ),
        (
            "cover gate without text (white, truncation, objects, mask)",
            lambda i: no_text_gate.judge(canvases[i % len(canvases)], views[i % len(views)]),
            None,
        ),
        (
            "text detection + recognition (384 px copy of the canvas)",
            lambda i: detector.read(canvases[i % len(canvases)]),
            TEXT_MS_GOAL,
        ),
    ]
    rows = []
    for label, fn, goal in steps:
        fn(0)  # warm
        collected = Samples(samples)
        i = 0
        while not collected.done:
            collected.add(*_sample(functools.partial(fn, i), time.perf_counter))
            i += 1
        row = {"step, per cover candidate": label, "ms, median (min–max)": collected.fmt(), "goal": "", "met": ""}
        if goal is not None:
            row["goal"] = f"< {goal:.0f} ms"
            row["met"] = "yes" if collected.median < goal else "NO"
        rows.append(row)
    return rows


def _worst_list(items: Sequence[Judged], *, bad: bool, refused: bool) -> str:
    names = [
        f"{j.picture.name} ({', '.join(j.codes) or 'passed'})" for j in items if j.bad is bad and j.refused is refused
    ]
    return "; ".join(names) if names else "none"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.picture_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="a quarter of the set, 5 cost samples (smoke check)")
    args = parser.parse_args(argv)
    run(append=not args.no_append, quick=args.quick)
    return 0


def run(*, append: bool, quick: bool = False) -> dict[str, float]:
    from benchmarks.__main__ import emit

    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"  [{time.perf_counter() - started:5.0f} s] {message}", flush=True)

    before = measure(progress, quick=quick, refine=None)
    figures = measure(progress, quick=quick, refine=DEFAULT_COLOUR_REFINE)
    cut_rows = cutout_rows(before, figures)
    methods = ", ".join(f"{m} {n}" for m, n in sorted(figures.methods.items()))
    emit(
        "Picture quality — cut-outs against the true object mask, today's path vs the new one",
        cut_rows,
        append=append,
        notes=(
            "IoU: the composited object (alpha ≥ 50 % on the 512 px working copy) against the renderer's or the "
            "compositor's true mask. Haze-free: no pixel under 250 in any channel on the stored 1200² JPEG farther "
            "than 1.5 % of the side from the true object (JPEG ringing stays closer); a cover without a cut-out "
            "counts as hazy. Raw u2netp = the model's mask composited as is, the model on every picture; new = studio "
            f"flood fill on white backdrops, u2netp elsewhere, mask clean-up. Methods used by the new path: {methods}. "
            "Truth = what is visible (`demo.labelled_pictures.visible_truth`: pixels of the backdrop's colour under "
            "the source's alpha and reaching its outline are not the object); old label = the source's alpha as "
            f"pasted. Relabelled by that rule: {', '.join(before.relabelled) or 'none'}. Colour refinement = "
            "`ml_images.processing.colour_refine` on model cut-outs. Covers with non-white pixels away from the "
            f"object, no refinement: {', '.join(before.hazy_names) or 'none'}; refined: "
            f"{', '.join(figures.hazy_names) or 'none'}."
        ),
    )
    rows, gate = gate_rows(figures)
    unrefined_rows, _ = gate_rows(before)
    rows.append({**unrefined_rows[-1], "covers": "all, without the colour refinement"})
    emit(
        "Picture quality — the cover gate on labelled covers",
        rows,
        append=append,
        notes=(
            "A cover is bad when its picture's defect is still visible on it (an overlay the cut-out removed "
            "entirely leaves a clean cover, labelled good), when the remover damaged it, or when its cut-out is poor "
            f"(IoU < {GOOD_IOU} against the truth). Refused = any failed rule. Good covers refused: "
            f"{_worst_list(figures.judged, bad=False, refused=True)}. Bad covers accepted: "
            f"{_worst_list(figures.judged, bad=True, refused=False)}. Without the colour refinement: good covers "
            f"refused: {_worst_list(before.judged, bad=False, refused=True)}; bad covers accepted: "
            f"{_worst_list(before.judged, bad=True, refused=False)}."
        ),
    )
    trial_ms = 1000 * statistics.median(figures.trial_seconds) if figures.trial_seconds else 0.0
    emit(
        "Picture quality — cost per cover candidate",
        cost_rows(5 if quick else 9),
        append=append,
        notes=(
            "Medians over samples taken after waiting for other processes to go quiet (the bracket says how many "
            "were quiet). Text detection runs on cover candidates with a cut-out (at most `cover_attempts` model "
            "runs per product, plus studio candidates); recognition only on the text-shaped lines found. A whole "
            "cover trial (decode, shrink, cut-out, clean-up, canvas, JPEG, gate) "
            f"took {trial_ms:.0f} ms in the median during the quality run above (not quiet-gated)."
        ),
    )
    return gate


if __name__ == "__main__":
    sys.exit(main())
