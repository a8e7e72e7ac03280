"""Take docs/img/progress.png: a real terminal (tmux) running pardo's progress bars, rendered to PNG.

Usage: ``python docs/img/make_progress_screenshot.py`` (needs tmux and Pillow). It starts a detached
tmux session, runs this file's ``demo`` in it, waits until the tqdm bar is past half way,
captures the pane with ``tmux capture-pane`` and draws the captured text, unchanged, onto an image.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SESSION = "pardo-progress-shot"
COLUMNS, ROWS = 100, 14


def work(i: int) -> int:
    time.sleep(0.03)
    if i == 70:
        logging.getLogger("demo").warning("task %d: slow input, retrying once", i)
    if i == 40:
        print(f"task {i}: checkpoint written")
    return i


def demo() -> None:
    from pardo import Parallel, delayed

    logging.basicConfig(format="%(levelname)s %(name)s [worker %(worker_pid)s]: %(message)s")
    print("$ python demo.py")
    Parallel(n_jobs=2, backend="threading", progress="plain")(
        [delayed(time.sleep)(0.01) for _ in range(200)]
    )
    Parallel(n_jobs=2, progress=True)([delayed(work)(i) for i in range(160)])


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def capture() -> str:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} demo; sleep 30"
    tmux("new-session", "-d", "-s", SESSION, "-x", str(COLUMNS), "-y", str(ROWS), command)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = tmux("capture-pane", "-p", "-t", SESSION)
            if re.search(r"\b(5[5-9]|6\d)%\|", text):  # the tqdm bar, past half way
                return text
            time.sleep(0.05)
        raise RuntimeError(f"the demo never got half way:\n{text}")
    finally:
        tmux("kill-session", "-t", SESSION)


def render(text: str, path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype("DejaVuSansMono.ttf", 15)
    ascent, descent = font.getmetrics()
    cell_w, cell_h = round(font.getlength("M")), ascent + descent + 3
    lines = text.rstrip("\n").splitlines()
    pad = 14
    image = Image.new("RGB", (COLUMNS * cell_w + 2 * pad, len(lines) * cell_h + 2 * pad), "#1e1e1e")
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((pad, pad + row * cell_h), line, font=font, fill="#d4d4d4")
    image.save(path)


if __name__ == "__main__":
    if sys.argv[1:] == ["demo"]:
        demo()
    else:
        shot = capture()
        (HERE / "progress.txt").write_text(shot)
        render(shot, HERE / "progress.png")
