import sys
import time

import requests
from bs4 import BeautifulSoup

url = sys.argv[1]
resp = requests.get(url, headers={"User-Agent": "skill-scraper/1.0"}, timeout=20)
resp.raise_for_status()
soup = BeautifulSoup(resp.text, "html.parser")
for a in soup.select("article a[href]"):
    print(a.get_text(strip=True), a["href"])
    time.sleep(0.1)
