import argparse
from pathlib import Path

from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--width", type=int, default=1600)
args = ap.parse_args()
for path in sorted(Path(args.folder).glob("*.jpg")):
    with Image.open(path) as im:
        if im.width > args.width:
            ratio = args.width / im.width
            im.resize((args.width, round(im.height * ratio))).save(path, quality=85)
