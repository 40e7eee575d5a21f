// Walks the simulator with confluence.js (npm), unmodified, through its v2
// client: spaces, every page of every space through cursor pagination,
// bodies, children, ancestors, attachments, labels and footer comments.
// confluence.js validates every response against its own Zod schemas, so a
// response shaped unlike Cloud's fails here too. Compares what it got with
// the simulator's ground truth; prints one JSON line; exits 1 on a mismatch.
//
// Environment: SIM_BASE_URL, SIM_EMAIL, SIM_API_TOKEN.

import { createHash } from 'node:crypto';
import { createV2Client } from 'confluence.js';

const base = process.env.SIM_BASE_URL.replace(/\/$/, '');
const email = process.env.SIM_EMAIL;
const apiToken = process.env.SIM_API_TOKEN;

function fail(message) {
  console.log(JSON.stringify({ ok: false, error: message }));
  process.exit(1);
}
function check(condition, message) {
  if (!condition) fail(message);
}
const sha = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

// Follows `_links.next` by its cursor, as the client's callers do.
async function all(fetchPage, parameters) {
  const items = [];
  let cursor;
  for (let round = 0; round < 100000; round += 1) {
    const page = await fetchPage({ ...parameters, ...(cursor ? { cursor } : {}) });
    items.push(...page.results);
    const next = page._links?.next;
    if (!next) return items;
    cursor = new URL(next, base).searchParams.get('cursor');
    check(cursor, `next link without a cursor: ${next}`);
  }
  fail('pagination did not end');
}

const response = await fetch(`${base}/_sim/truth?account=${encodeURIComponent(email)}`);
const truth = (await response.json()).content;
const truthPages = new Map(truth.filter((t) => t.type === 'page').map((t) => [t.id, t]));
const truthBlogs = new Map(truth.filter((t) => t.type === 'blogpost').map((t) => [t.id, t]));

const confluence = createV2Client({ host: base, auth: { type: 'basic', email, apiToken } });
const summary = { ok: true, account: email };

const spaces = await all((p) => confluence.space.getSpaces(p), { limit: 2 });
summary.spaces = spaces.length;

const seen = new Map();
for (const space of spaces) {
  const pages = await all((p) => confluence.page.getPagesInSpace(p), {
    id: Number(space.id),
    bodyFormat: 'storage',
    limit: 250,
  });
  for (const page of pages) {
    check(!seen.has(page.id), `page ${page.id} returned twice`);
    seen.set(page.id, { space, page });
  }
}
check(seen.size === truthPages.size, `pages: ${seen.size} vs truth ${truthPages.size}`);
for (const [id, { space, page }] of seen) {
  const expected = truthPages.get(id);
  check(expected, `page ${id} is not in the truth`);
  check(page.title === expected.title, `title of ${id}`);
  check(page.version.number === expected.version, `version of ${id}`);
  check((page.parentId ?? null) === expected.parent_id, `parent of ${id}`);
  check(space.key === expected.space_key, `space of ${id}`);
  check(sha(page.body.storage.value) === expected.body_sha256, `body of ${id}`);
}
summary.pages = seen.size;

const blogs = await all((p) => confluence.blogPost.getBlogPosts(p), { bodyFormat: 'storage', limit: 100 });
check(blogs.length === truthBlogs.size, `blog posts: ${blogs.length} vs truth ${truthBlogs.size}`);
for (const blog of blogs) {
  check(sha(blog.body.storage.value) === truthBlogs.get(blog.id)?.body_sha256, `body of blog post ${blog.id}`);
}
summary.blogposts = blogs.length;

// One page in full, its ancestors and its children.
const deep = [...truthPages.values()].find((t) => t.parent_id && truthPages.get(t.parent_id)?.parent_id);
if (deep) {
  const page = await confluence.page.getPageById({ id: Number(deep.id), bodyFormat: 'storage' });
  check(sha(page.body.storage.value) === deep.body_sha256, 'getPageById body');
  const ancestors = await confluence.ancestors.getPageAncestors({ id: Number(deep.id) });
  check(ancestors.results.at(-1).id === deep.parent_id, 'nearest ancestor is the parent');
  const children = await all((p) => confluence.children.getPageDirectChildren(p), { id: Number(deep.parent_id), limit: 3 });
  const expectedChildren = [...truthPages.values()].filter((t) => t.parent_id === deep.parent_id).map((t) => t.id).sort();
  check(JSON.stringify(children.map((c) => c.id).sort()) === JSON.stringify(expectedChildren), 'direct children');
}

// Attachments (v2 listing and download link), labels and footer comments.
const attachments = await all((p) => confluence.attachment.getAttachments(p), { limit: 100 });
check(attachments.length > 0, 'no attachments');
for (const attachment of attachments) {
  check(seen.has(attachment.pageId) || truthBlogs.has(attachment.blogPostId), `attachment ${attachment.id} of a page the account cannot read`);
}
const sample = attachments[0];
const download = await fetch(`${base}/wiki${sample.downloadLink}`, {
  headers: { authorization: `Basic ${Buffer.from(`${email}:${apiToken}`).toString('base64')}` },
});
check(download.ok, `download ${sample.downloadLink}: ${download.status}`);
check((await download.arrayBuffer()).byteLength === sample.fileSize, 'downloaded size equals fileSize');
summary.attachments = attachments.length;

let labels = 0;
let comments = 0;
for (const id of [...seen.keys()].slice(0, 100)) {
  labels += (await confluence.label.getPageLabels({ id: Number(id) })).results.length;
  comments += (await confluence.comment.getPageFooterComments({ id: Number(id), bodyFormat: 'storage' })).results.length;
}
check(labels > 0 && comments > 0, 'no labels or no comments found');
summary.labels = labels;
summary.comments = comments;

console.log(JSON.stringify(summary));
