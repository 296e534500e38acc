import os
import sys

import requests

key = os.environ["OPENAI_API_KEY"]


def summarize(text):
    r = requests.post(
        "https://api.openai.com/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarize:\n" + text}]},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]


print(summarize(open(sys.argv[1]).read()))
