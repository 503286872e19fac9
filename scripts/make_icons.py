"""Draw the web UI's app icons (PNG) with Pillow: a green square with a white
speech bubble holding an open box. Run from the repository root:

    .venv/bin/python scripts/make_icons.py

The PNGs are committed; rerun only when the design changes.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "src" / "boxless" / "web" / "icons"
GREEN = (7, 193, 96, 255)
WHITE = (255, 255, 255, 255)


def draw(size: int, maskable: bool) -> Image.Image:
    """One icon of ``size`` px; a maskable icon keeps its drawing in the central 80 %."""
    scale = 4  # draw large, then downsample for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if maskable:
        d.rectangle((0, 0, s, s), fill=GREEN)
    else:
        d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=GREEN)
    inset = 0.2 if maskable else 0.14
    left, top, right = s * inset, s * (inset + 0.06), s * (1 - inset)
    bottom = s * (1 - inset - 0.12)
    d.rounded_rectangle((left, top, right, bottom), radius=s // 8, fill=WHITE)
    tail_x = left + (right - left) * 0.28
    d.polygon(
        [
            (tail_x, bottom - 2),
            (tail_x - s * 0.08, bottom + s * 0.12),
            (tail_x + s * 0.14, bottom - 2),
        ],
        fill=WHITE,
    )
    # an open box in the bubble: no box in the middle
    cx, cy = (left + right) / 2, (top + bottom) / 2 + s * 0.02
    w, hgt = (right - left) * 0.42, (bottom - top) * 0.34
    line = max(2, s // 40)
    d.rectangle((cx - w / 2, cy - hgt / 2, cx + w / 2, cy + hgt / 2), outline=GREEN, width=line)
    flap = hgt * 0.55
    d.line(
        [(cx - w / 2, cy - hgt / 2), (cx - w / 2 - flap * 0.6, cy - hgt / 2 - flap)], GREEN, line
    )
    d.line(
        [(cx + w / 2, cy - hgt / 2), (cx + w / 2 + flap * 0.6, cy - hgt / 2 - flap)], GREEN, line
    )
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("maskable-512.png", 512, True),
    ):
        draw(size, maskable).save(OUT / name, optimize=True)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
