"""Walks the simulator with atlassian-python-api, unmodified, through both
its Cloud v2 client and its v1 client, and checks that what it gets equals
the simulator's ground truth (GET /_sim/truth).

Environment: SIM_BASE_URL, SIM_EMAIL, SIM_API_TOKEN. Prints one JSON
summary line; exits non-zero on the first mismatch.
"""

import hashlib
import json
import os
import sys
import warnings

import requests
from atlassian import Confluence, ConfluenceV2

warnings.simplefilter("ignore")

BASE = os.environ["SIM_BASE_URL"].rstrip("/")
EMAIL = os.environ["SIM_EMAIL"]
TOKEN = os.environ["SIM_API_TOKEN"]


def fail(message):
    print(json.dumps({"ok": False, "error": message}))
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


truth = requests.get(f"{BASE}/_sim/truth", params={"account": EMAIL}, timeout=60).json()["content"]
truth_pages = {t["id"]: t for t in truth if t["type"] == "page"}
truth_blogs = {t["id"]: t for t in truth if t["type"] == "blogpost"}
summary = {"ok": True, "account": EMAIL}

# --- Cloud v2 client -------------------------------------------------------
v2 = ConfluenceV2(url=BASE + "/wiki", username=EMAIL, password=TOKEN)
spaces = v2.get_spaces(limit=3)
space_keys = {s["key"] for s in spaces}
check(space_keys == {t["space_key"] for t in truth} | space_keys, "v2 spaces miss a space that has content")
summary["v2_spaces"] = len(spaces)

seen = {}
for space in spaces:
    # The client follows its own pagination (limit 250, Link/_links.next).
    for page in v2.get_pages(space_id=space["id"], body_format="storage", limit=250):
        check(page["id"] not in seen, f"v2 returned page {page['id']} twice")
        seen[page["id"]] = (space["key"], page)
check(set(seen) == set(truth_pages), f"v2 pages differ from truth: {len(seen)} vs {len(truth_pages)}, "
      f"missing {sorted(set(truth_pages) - set(seen))[:5]}, extra {sorted(set(seen) - set(truth_pages))[:5]}")
for page_id, (space_key, page) in seen.items():
    expected = truth_pages[page_id]
    check(page["title"] == expected["title"], f"title of {page_id}")
    check(page["version"]["number"] == expected["version"], f"version of {page_id}")
    check(page.get("parentId") == expected["parent_id"], f"parent of {page_id}: {page.get('parentId')} vs {expected['parent_id']}")
    check(space_key == expected["space_key"], f"space of {page_id}")
    check(sha(page["body"]["storage"]["value"]) == expected["body_sha256"], f"body of {page_id}")
summary["v2_pages"] = len(seen)

one = next(iter(seen))
single = v2.get_page_by_id(one, body_format="storage")
check(sha(single["body"]["storage"]["value"]) == truth_pages[one]["body_sha256"], "v2 get_page_by_id body")

# Children, labels and footer comments for a few pages through v2.
children_of = {}
for page_id, expected in truth_pages.items():
    if expected["parent_id"]:
        children_of.setdefault(expected["parent_id"], set()).add(page_id)
checked_children = 0
for page_id in sorted(children_of, key=lambda p: -len(children_of[p]))[:20]:
    got = {c["id"] for c in v2.get_child_pages(page_id, limit=5)}
    check(got == children_of[page_id], f"v2 children of {page_id}: {len(got)} vs {len(children_of[page_id])}")
    checked_children += len(got)
summary["v2_children"] = checked_children
labels = comments = 0
for page_id in sorted(truth_pages)[:200]:
    labels += len(v2.get_page_labels(page_id))
    comments += len(v2.get_page_footer_comments(page_id, body_format="storage"))
check(labels > 0 and comments > 0, "v2 found no labels or no comments")
summary["v2_labels"] = labels
summary["v2_comments"] = comments

# --- v1 client ---------------------------------------------------------------
v1 = Confluence(url=BASE + "/wiki", username=EMAIL, password=TOKEN, cloud=False)
v1_spaces = v1.get_all_spaces(start=0, limit=500)
v1_space_list = v1_spaces["results"] if isinstance(v1_spaces, dict) else v1_spaces
check({s["key"] for s in v1_space_list} == space_keys, "v1 spaces differ from v2 spaces")

v1_seen = {}
for space in v1_space_list:
    for page in v1.get_all_pages_from_space(space["key"], expand="body.storage,version,ancestors", limit=100):
        check(page["id"] not in v1_seen, f"v1 returned page {page['id']} twice")
        v1_seen[page["id"]] = page
check(set(v1_seen) == set(truth_pages), f"v1 pages differ from truth: {len(v1_seen)} vs {len(truth_pages)}")
for page_id, page in v1_seen.items():
    expected = truth_pages[page_id]
    check(page["version"]["number"] == expected["version"], f"v1 version of {page_id}")
    check(sha(page["body"]["storage"]["value"]) == expected["body_sha256"], f"v1 body of {page_id}")
    parent = page["ancestors"][-1]["id"] if page["ancestors"] else None
    check(parent == expected["parent_id"], f"v1 parent of {page_id}")
summary["v1_pages"] = len(v1_seen)

# CQL through v1, following its own pagination.
first_space = sorted(t["space_key"] for t in truth_pages.values())[0]
cql_ids = set()
for result in v1.iter_cql(f'type = page AND space = "{first_space}"', limit=50):
    cql_ids.add(result["content"]["id"])
expected_ids = {i for i, t in truth_pages.items() if t["space_key"] == first_space}
check(cql_ids == expected_ids, f"v1 CQL results differ: {len(cql_ids)} vs {len(expected_ids)}")
blog_ids = {r["content"]["id"] for r in v1.iter_cql("type = blogpost", limit=100)}
check(blog_ids == set(truth_blogs), "v1 CQL blog posts differ from truth")
summary["cql_results"] = len(cql_ids) + len(blog_ids)

# Attachments: list and download through v1, and check they are real files.
downloaded = 0
for page_id in sorted(truth_pages)[:400]:
    listing = v1.get_attachments_from_content(page_id, limit=50)
    if not listing["results"]:
        continue
    files = v1.download_attachments_from_page(page_id, to_memory=True)
    for attachment in listing["results"]:
        data = files[attachment["title"]].getvalue()
        check(len(data) == attachment["extensions"]["fileSize"], f"size of {attachment['title']}")
        if attachment["title"].endswith(".pdf"):
            check(data.startswith(b"%PDF-"), "a PDF attachment is a PDF")
        if attachment["title"].endswith(".docx"):
            check(data.startswith(b"PK"), "a DOCX attachment is a zip")
        downloaded += 1
check(downloaded > 0, "no attachment was downloaded")
summary["attachments_downloaded"] = downloaded

# Restrictions through v1.
restricted = 0
for page_id in sorted(truth_pages)[:400]:
    by_operation = v1.get_all_restrictions_for_content(page_id)
    users = by_operation["read"]["restrictions"]["user"]["results"]
    groups = by_operation["read"]["restrictions"]["group"]["results"]
    if users or groups:
        restricted += 1
summary["restricted_pages_seen"] = restricted

print(json.dumps(summary))
