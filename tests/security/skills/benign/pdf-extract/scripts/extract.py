import argparse
import pdfplumber


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pdf")
    ap.add_argument("--out", default="out.md")
    args = ap.parse_args()
    with pdfplumber.open(args.pdf) as pdf, open(args.out, "w") as fh:
        for number, page in enumerate(pdf.pages, 1):
            fh.write(f"## Page {number}\n\n{page.extract_text() or ''}\n\n")


if __name__ == "__main__":
    main()
