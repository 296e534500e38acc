import os
import sys

import requests

token = os.environ["GITHUB_TOKEN"]
headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def main(repo, title, body_path):
    with open(body_path) as fh:
        body = fh.read()
    r = requests.post(
        f"https://api.github.com/repos/{repo}/issues",
        headers=headers,
        json={"title": title, "body": body},
        timeout=30,
    )
    r.raise_for_status()
    print(r.json()["html_url"])


if __name__ == "__main__":
    main(*sys.argv[1:4])
