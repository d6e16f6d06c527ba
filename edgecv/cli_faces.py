"""`edgecv enroll`, `edgecv verify` and `edgecv gallery list|remove|rename|reembed|calibrate`: the face gallery's
commands (registered on the main group by ``edgecv.cli``). Everything they run lives in ``edgecv.runtime.faces``."""

from __future__ import annotations

import math
import sys

import click

from edgecv.runtime.faces import DEFAULT_DETECTOR as DEFAULT


@click.command("enroll")
@click.option("--gallery", type=click.Path(dir_okay=False), required=True, help="SQLite gallery (created if missing).")
@click.option("--model", type=click.Path(dir_okay=False, exists=True), required=True, help="The face embedder artifact.")
@click.option("--name", required=True, help="Who the photos show (new, or more shots for an enrolled person).")
@click.option("--face-detector", default=DEFAULT, show_default=True, help="As for `edgecv run`.")
@click.option("--min-face", type=click.IntRange(min=8), default=48, show_default=True, help="Smallest face side (px).")
@click.option(
    "--min-sharpness",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Least variance of the Laplacian on the 128 px face chip (lower: too blurry).",
)
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
def enroll_cmd(gallery, model, name, face_detector, min_face, min_sharpness, images) -> None:
    """Enrol NAME from one or more IMAGES (one face each); rejected photos are listed with the reason."""
    from edgecv.runtime.faces.enroll import enroll

    r = enroll(gallery, model, name, list(images), face_detector, min_face, min_sharpness)
    for f, why in r.rejected:
        click.echo(f"rejected {f}: {why}")
    click.echo(f"enrolled {name}: {len(r.accepted)} photo(s) accepted, {r.shots} shot(s) in {gallery}")


@click.command("verify")
@click.option("--model", type=click.Path(dir_okay=False, exists=True), required=True, help="The face embedder artifact.")
@click.option("--face-detector", default=DEFAULT, show_default=True, help="As for `edgecv run`.")
@click.option("--threshold", type=click.FloatRange(-1, 1), help="Default: the artifact's 1:1 `verify` threshold.")
@click.argument("photo_a", type=click.Path(dir_okay=False, exists=True))
@click.argument("photo_b", type=click.Path(dir_okay=False, exists=True))
def verify_cmd(model, face_detector, threshold, photo_a, photo_b) -> None:
    """1:1 verification: do PHOTO_A and PHOTO_B show the same person? Exit code 0 if so, 1 if not."""
    from edgecv.runtime.faces.enroll import verify_photos

    v = verify_photos(model, photo_a, photo_b, face_detector, threshold)
    click.echo(
        f"{'same person' if v.same else 'different people'}: similarity {v.similarity:.4f} "
        f"{'>=' if v.same else '<'} threshold {v.threshold:.4f}"
    )
    sys.exit(0 if v.same else 1)


@click.group("gallery")
def gallery_group() -> None:
    """Inspect and edit a face gallery."""


@gallery_group.command("list")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), required=True)
def gallery_list(gallery) -> None:
    """Enrolled identities and their shots."""
    import time

    from edgecv.runtime.faces.gallery import Gallery

    with Gallery(gallery) as g:
        info, people = g.info(), g.identities()
    click.echo(
        f"{gallery}: {len(people)} identities, embedder {info.get('embedder_id', '-')} "
        f"({info.get('embedder_name', '-')}), {info.get('dim', '?')}-d"
    )
    for p in people:
        click.echo(f"  {p.name:<24} {p.shots:>3} shot(s)  enrolled {time.strftime('%Y-%m-%d %H:%M', time.localtime(p.created))}")


@gallery_group.command("remove")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), required=True)
@click.argument("name")
def gallery_remove(gallery, name) -> None:
    """Delete NAME and every stored shot of them."""
    from edgecv.runtime.faces.gallery import Gallery

    with Gallery(gallery) as g:
        g.remove(name)
    click.echo(f"removed {name}")


@gallery_group.command("rename")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), required=True)
@click.argument("old")
@click.argument("new")
def gallery_rename(gallery, old, new) -> None:
    from edgecv.runtime.faces.gallery import Gallery

    with Gallery(gallery) as g:
        g.rename(old, new)
    click.echo(f"renamed {old} -> {new}")


@gallery_group.command("reembed")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--model", type=click.Path(dir_okay=False, exists=True), required=True, help="The new embedder artifact.")
def gallery_reembed(gallery, model) -> None:
    """Recompute every embedding with MODEL from the stored face chips (after retraining the embedder)."""
    from edgecv.runtime.faces.enroll import reembed

    click.echo(f"re-embedded {reembed(gallery, model)} shot(s) with {model}")


@gallery_group.command("calibrate")
@click.option("--gallery", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option(
    "--target-far",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=1e-3,
    show_default=True,
    help="False accept rate to set the match threshold to, on the enrolled people's impostor scores.",
)
def gallery_calibrate(gallery, target_far) -> None:
    """Set the match threshold from the enrolled people themselves: each shot against every other person's
    template is an impostor score. `edgecv run --gallery` then uses it (unless --match-threshold is given)."""
    from edgecv.runtime.faces.gallery import Gallery
    from edgecv.runtime.faces.match import calibrate_gallery

    with Gallery(gallery) as g:
        c = calibrate_gallery(g, target_far)
    click.echo(
        f"{gallery}: match threshold {c.threshold:.4f} at FAR {target_far:g} (measured {c.far:.2g} on "
        f"{c.impostors} impostor scores among {c.people} people)"
    )
    if c.genuine:
        click.echo(f"  enrolled shots recognised against their own template without them: {c.tar:.1%} of {c.genuine}")
    if not c.resolved:
        click.echo(
            f"warning: {c.impostors} impostor scores cannot measure FAR {target_far:g} (at least "
            f"{math.ceil(1 / target_far)} needed: enrol more people, or ask for a higher FAR); the threshold "
            "is just above the best impostor, and the true FAR may be higher",
            err=True,
        )


FACE_COMMANDS = (enroll_cmd, verify_cmd, gallery_group)
