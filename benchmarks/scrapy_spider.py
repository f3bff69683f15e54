"""The Scrapy peer of ``crawl.py``: a spider over the generated site, FilesPipeline for requisites.

Run by ``crawl.py`` with a Python that has Scrapy (it is no dependency of the project)::

    python benchmarks/scrapy_spider.py URL DIR --per-host 6

The spider follows every ``<a href>`` of the site's host and yields, for each page, an
item whose ``file_urls`` are the page's ``img``/``audio`` sources: the requisites are
fed to it rather than discovered as a browser would (``loader`` and wget discover
them).  robots.txt is obeyed, and at most ``--per-host`` requests run at once.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess


class SiteSpider(scrapy.Spider):
    name = "site"

    def __init__(self, start: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start]
        self.allowed_domains = [urlsplit(start).hostname or ""]

    def parse(self, response):  # type: ignore[no-untyped-def]
        files = response.css("img::attr(src), audio::attr(src)").getall()
        yield {"url": response.url, "file_urls": [response.urljoin(u) for u in files]}
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("dir")
    parser.add_argument("--per-host", type=int, default=6)
    args = parser.parse_args()
    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 32,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.per_host,
        "DEPTH_LIMIT": 0,
        "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 1},
        "FILES_STORE": args.dir,
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    })
    process.crawl(SiteSpider, start=args.url)
    process.start()


if __name__ == "__main__":
    main()
