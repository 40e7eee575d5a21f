"""Loads the pages of some Confluence spaces with one peer loader and prints
one JSON line: how many documents it made, their page ids, and how long the
load took inside the process (imports apart).

    python load.py llamaindex|langchain BASE_URL EMAIL API_TOKEN KEY [KEY...]

BASE_URL is the site's root; both loaders are given BASE_URL/wiki and
cloud=True, as a user of Confluence Cloud would. Run by compare.py.
"""

import json
import sys
import time


def llamaindex(base, email, token, keys):
    from llama_index.readers.confluence import ConfluenceReader

    reader = ConfluenceReader(
        base_url=f"{base}/wiki", cloud=True, user_name=email, password=token
    )
    docs = []
    for key in keys:
        # Without max_num_results the reader stops at its default batch.
        docs += reader.load_data(
            space_key=key,
            include_attachments=False,
            page_status="current",
            max_num_results=1_000_000,
        )
    return [d.metadata.get("page_id") or d.doc_id for d in docs]


def langchain(base, email, token, keys):
    from langchain_community.document_loaders import ConfluenceLoader

    ids = []
    for key in keys:
        loader = ConfluenceLoader(
            url=f"{base}/wiki",
            username=email,
            api_key=token,
            cloud=True,
            space_key=key,
            include_attachments=False,
            # Its default stops at 1,000 pages a space.
            max_pages=1_000_000,
        )
        ids += [d.metadata.get("id") for d in loader.load()]
    return ids


def main():
    tool, base, email, token, *keys = sys.argv[1:]
    load = {"llamaindex": llamaindex, "langchain": langchain}[tool]
    started = time.monotonic()
    ids = load(base, email, token, keys)
    elapsed = time.monotonic() - started
    print(json.dumps({"documents": len(ids), "ids": [str(i) for i in ids], "load_s": elapsed}))


if __name__ == "__main__":
    main()
