// The admin console, driven in Debian's Chromium by Playwright, through
// every flow a knowledge admin has. Run by crates/server/tests/api/console.rs,
// which passes the plan (CONSOLE_PLAN, JSON) and answers "ASK ..." lines
// (make Confluence fail, let sessions expire) on standard input.
// Every page visited is checked by axe-core: no serious or critical
// violation; each is also saved as a screenshot.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import readline from "node:readline";

const plan = JSON.parse(process.env.CONSOLE_PLAN);
const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const axe = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

async function ask(what) {
  console.log(`ASK ${what}`);
  const { value } = await answers.next();
  if (value !== "ok") throw new Error(`the harness answered ${value} to ${what}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({ executablePath: plan.chromium, args: ["--no-sandbox"] });
// bypassCSP: axe is injected into the page; the console's own policy
// allows only its own scripts.
const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
const scriptErrors = [];
page.on("pageerror", (error) => scriptErrors.push(String(error)));
page.setDefaultTimeout(20_000);

let shot = 0;
async function audit(name) {
  await page.waitForLoadState("load");
  shot += 1;
  await page.screenshot({ path: `${plan.shots}/${String(shot).padStart(2, "0")}-${name}.png`, fullPage: true });
  await page.addScriptTag({ content: axe });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(
    bad.length === 0,
    `${name}: accessibility: ${bad.map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join(" | ")}`,
  );
  console.log(`page ok: ${name}`);
}

const row = (key) => page.locator(`tr.space[data-space="${key}"]`);
async function statusOf(key) {
  return (await row(key).locator(".status").textContent()).trim();
}
async function results(audience, query) {
  await page.goto(`${plan.base}/admin/preview`);
  await page.selectOption("select[name=audience]", audience);
  await page.fill("input[name=q]", query);
  await page.click("button:has-text('Search')");
  await page.waitForSelector("h2:has-text('results')");
  return page.locator("ol.results li .hint").allTextContents();
}
async function menu(name, item) {
  await page.click(`summary[aria-label="Options for ${name}"]`);
  await page.click(`details[open] >> text=${item}`);
}

try {
  // Sign in with the one-time link.
  await page.goto(plan.link);
  await audit("signin-link");
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(`${plan.base}/admin`);
  await audit("connections-empty");
  check(await page.isVisible("text=No Confluence site is connected yet"), "the empty console says so");

  // Create connection: a wrong token is refused with Confluence's reason.
  await page.click("text=Create connection");
  await audit("create-connection");
  await page.fill("input[name=site]", "acme");
  await page.fill("input[name=email]", plan.account);
  await page.fill("input[name=token]", "not-the-token");
  await page.click("button:has-text('Connect'):not(:has-text('Atlassian'))");
  await page.waitForSelector(".notice.error");
  check((await page.textContent(".notice.error")).includes("refused"), "a wrong token is refused");

  // OAuth: Atlassian's consent, then the site, then the spaces.
  await page.click("button:has-text('Connect with Atlassian')");
  await page.waitForSelector("select[name=account]");
  await page.selectOption("select[name=account]", plan.account);
  await page.click("button[value=accept]");
  await page.waitForURL(/\/admin\/connect\/site/);
  await audit("choose-site");
  await page.click("button:has-text('Continue')");
  await page.waitForURL(/\/admin\/connections\/\d+\/spaces/);
  const dataSource = page.url().match(/connections\/(\d+)\//)[1];

  // The picker: the first 20 spaces in alphabetical order, type-ahead over
  // all of them, no personal space, chosen spaces as tags with an X.
  const search = page.locator("#space-search");
  await search.focus();
  await page.waitForSelector("#space-list [role=option]");
  const first = await page.locator("#space-list [role=option]").allTextContents();
  check(first.length === 20, `the drop-down shows 20 spaces, not ${first.length}`);
  const names = first.map((t) => t.replace(/ \([^)]*\)$/, ""));
  check(JSON.stringify(names) === JSON.stringify(plan.first20), `first 20 in order: ${names} vs ${plan.first20}`);
  await audit("spaces-picker");
  await search.fill(plan.personal);
  await page.waitForSelector("#space-list >> text=No matching spaces");
  await search.fill(plan.far.name);
  await page.waitForSelector(`#space-list [data-key="${plan.far.key}"]`);
  await search.press("ArrowDown");
  await search.press("Enter");
  await page.waitForSelector(`#chosen-spaces input[value="${plan.far.key}"]`, { state: "attached" });
  for (const space of [plan.a, plan.b]) {
    await search.fill(space.name);
    await page.click(`#space-list [data-key="${space.key}"]`);
    await page.waitForSelector(`#chosen-spaces input[value="${space.key}"]`, { state: "attached" });
  }
  await page.click(`button[aria-label="Remove ${plan.far.name}"]`);
  check((await page.locator(`#chosen-spaces input[value="${plan.far.key}"]`).count()) === 0, "X removes a chosen space");
  await audit("spaces-chosen");
  await page.click("button:has-text('Sync')");
  await page.waitForURL(`${plan.base}/admin`);

  // Progress until each space is Synced, in place.
  await page.waitForFunction(
    (keys) => keys.every((k) => document.querySelector(`tr.space[data-space="${k}"] .status`)?.textContent === "Synced"),
    [plan.a.key, plan.b.key],
    { timeout: 120_000 },
  );
  const items = Number((await row(plan.a.key).locator("td").nth(1).textContent()).trim());
  check(items > 0, `space A holds items (${items})`);
  check((await page.locator("tr.space").count()) === 2, "two spaces are connected");
  await audit("connections-synced");

  // Manage: details, then only agents and admins may see space A.
  await page.click(`tr.space[data-space="${plan.a.key}"] td a`);
  await page.waitForSelector("h2#permissions");
  check(await page.isVisible("dt:has-text('Connected by') + dd:has-text('Kim Admin')"), "Connected by names the admin");
  await audit("manage-space");
  await page.check("input[name=visibility][value=segments]");
  await page.check("label:has-text('Agents and admins') input[name=segment]");
  await page.click("button:has-text('Save')");
  await page.waitForSelector("text=Viewing permissions saved.");
  // A custom segment, made here.
  await page.click("summary:has-text('Create a user segment')");
  await page.fill("form[action='/admin/segments'] input[name=name]", "Engineering");
  await page.fill("form[action='/admin/segments'] input[name=tags]", "eng");
  await page.click("button:has-text('Create segment')");
  await page.waitForSelector("label:has-text('Engineering')");

  // Preview as: anonymous users no longer find space A; agents do; space B
  // is everyone's.
  const anonymousA = await results("anonymous", plan.a.title);
  check(!anonymousA.some((t) => t.startsWith(plan.a.key)), `anonymous finds A: ${anonymousA}`);
  const agentA = await results("agent", plan.a.title);
  check(agentA.some((t) => t.startsWith(plan.a.key)), `agents find A: ${agentA}`);
  const engineeringA = await results(await page.locator("option:has-text('Segment: Engineering')").getAttribute("value"), plan.a.title);
  check(!engineeringA.some((t) => t.startsWith(plan.a.key)), `the Engineering segment finds A: ${engineeringA}`);
  const anonymousB = await results("anonymous", plan.b.title);
  check(anonymousB.some((t) => t.startsWith(plan.b.key)), `anonymous finds B: ${anonymousB}`);
  await audit("preview-as");

  // Remove one space: gone from search at once; the other stays.
  await page.goto(`${plan.base}/admin`);
  await menu(plan.b.name, "Remove connection");
  await page.waitForSelector("h1:has-text('from search?')");
  await audit("remove-space");
  await page.click("button:has-text('Remove space')");
  await page.waitForURL(`${plan.base}/admin`);
  check((await row(plan.b.key).count()) === 0, "space B is gone from the list");
  const agentB = await results("agent", plan.b.title);
  check(!agentB.some((t) => t.startsWith(plan.b.key)), `B still found after removal: ${agentB}`);
  const agentAgain = await results("agent", plan.a.title);
  check(agentAgain.some((t) => t.startsWith(plan.a.key)), "A stays searchable");

  // A failing Confluence: the sync shows Error with the reason.
  await ask("fail-on");
  await page.goto(`${plan.base}/admin`);
  await menu(plan.a.name, "Sync again");
  await page.waitForURL(`${plan.base}/admin`);
  await page.waitForFunction(
    (key) => document.querySelector(`tr.space[data-space="${key}"] .status`)?.textContent === "Error",
    plan.a.key,
    { timeout: 120_000 },
  );
  const reason = await row(plan.a.key).locator(".reason").textContent();
  check(reason.length > 10, `an error says why: ${reason}`);
  await audit("sync-error");
  await ask("fail-off");
  await page.goto(`${plan.base}/admin`);
  await menu(plan.a.name, "Sync again");
  await page.waitForFunction(
    (key) => document.querySelector(`tr.space[data-space="${key}"] .status`)?.textContent === "Synced",
    plan.a.key,
    { timeout: 120_000 },
  );

  // Add content later: the site row's menu.
  const site = await page.locator("tr.site").getAttribute("data-site");
  await menu(site, "Add content");
  await page.waitForURL(/\/spaces$/);
  check(await page.isVisible(`text=Already synced: ${plan.a.key}`), "Add content knows what is synced");

  // The operator's view of API customers.
  await page.goto(`${plan.base}/admin/customers`);
  check(await page.isVisible(`td:has-text("${plan.customer}")`), "the API customer is listed");
  await audit("api-customers");
  await page.click("button:has-text('Sync again')");
  await page.waitForURL(`${plan.base}/admin/customers`);

  // A password, for signing in after the session ends.
  await page.goto(`${plan.base}/admin/account`);
  await audit("account");
  await page.fill("input[name=password]", plan.password);
  await page.fill("input[name=confirm]", plan.password);
  await page.click("button:has-text('Set password')");
  await page.waitForSelector("text=Password set.");

  // CSRF: the session's cookie without its form token is refused.
  for (const form of [{}, { csrf: "0".repeat(64) }]) {
    const forged = await page.request.post(`${plan.base}/admin/connections/${dataSource}/sync`, { form, maxRedirects: 0 });
    check(forged.status() === 403, `a forged form is refused, not ${forged.status()}`);
  }

  // Session expiry: the console sends the admin to sign in again.
  await ask("expire");
  await page.goto(`${plan.base}/admin`);
  await page.waitForURL(/\/admin\/signin\?/);
  check(await page.isVisible("text=Your session has expired"), "expiry is explained");
  await audit("signin-expired");
  await page.fill("input[name=email]", "kim@example.com");
  await page.fill("input[name=password]", plan.password);
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(`${plan.base}/admin`);

  // Remove the whole site: every space leaves search at once.
  await menu(site, "Remove connection");
  await page.waitForSelector("h1:has-text('Remove the connection')");
  await audit("remove-site");
  await page.click("button:has-text('Remove connection')");
  await page.waitForURL(`${plan.base}/admin`);
  check(await page.isVisible("text=No Confluence site is connected yet"), "the site is gone");
  const afterRemoval = await results("agent", plan.a.title);
  check(afterRemoval.length === 0, `nothing of the site is found after its removal: ${afterRemoval}`);

  // Sign out: the console is closed again.
  await page.click("button:has-text('Sign out')");
  await page.waitForURL(/\/admin\/signin/);
  await page.goto(`${plan.base}/admin`);
  await page.waitForURL(/\/admin\/signin\?/);

  check(scriptErrors.length === 0, `script errors: ${scriptErrors}`);
  console.log("DONE");
} catch (error) {
  console.log(`FAILED at ${page.url()}: ${error.stack || error}`);
  await page.screenshot({ path: `${plan.shots}/failure.png`, fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
  process.exit();
}
