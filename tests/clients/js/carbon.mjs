// Carbon Connect, Carbon's own file picker (npm carbon-connect, unmodified),
// embedded in a developer's page on one origin and pointed at confsync on
// another, driven in Debian's Chromium by Playwright through the whole
// Confluence flow. Run by crates/server/tests/api/carbon_connect.rs.
//
// The host page (carbon-host/) is bundled here with esbuild from the pinned
// packages and served by this script, as a developer's site would serve it;
// its back end mints customer tokens with the organisation's API key
// (GET /auth/v1/access_token), as a developer's back end would. No request
// of the page is stubbed or rewritten.
//
// Protocol: "ASK origin <url>" is answered with the plan (JSON, one line);
// other questions ("slow-on", "slow-off") with "ok".
import { chromium } from "playwright-core";
import * as esbuild from "esbuild";
import http from "node:http";
import { readFileSync } from "node:fs";
import readline from "node:readline";

const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(`ASK ${what}`);
  const { value } = await answers.next();
  return value;
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}

// The host page, bundled.
const hostDir = new URL("./carbon-host/", import.meta.url);
const built = await esbuild.build({
  entryPoints: [new URL("host.jsx", hostDir).pathname],
  bundle: true,
  write: false,
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "error",
});
const bundle = built.outputFiles[0].contents;

let plan = null;
const host = http.createServer(async (request, response) => {
  const send = (type, body) => {
    response.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    response.end(body);
  };
  switch (new URL(request.url, "http://host").pathname) {
    case "/":
      return send("text/html; charset=utf-8", readFileSync(new URL("index.html", hostDir)));
    case "/host.js":
      return send("text/javascript", bundle);
    case "/logo.svg":
    case "/favicon.ico":
      return send("image/svg+xml", readFileSync(new URL("logo.svg", hostDir)));
    case "/config.json":
      return send("application/json", JSON.stringify({ apiURL: plan.api }));
    case "/token": {
      // The developer's back end: a customer token for the signed-in user.
      const minted = await fetch(`${plan.api}/auth/v1/access_token`, {
        headers: { authorization: `Bearer ${plan.key}`, "customer-id": plan.customer },
      });
      const body = await minted.json();
      return send("application/json", JSON.stringify({ access_token: body.access_token }));
    }
    default:
      response.writeHead(404);
      response.end();
  }
});
await new Promise((resolve) => host.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${host.address().port}`;
plan = JSON.parse(await ask(`origin ${origin}`));

const browser = await chromium.launch({ executablePath: plan.chromium, args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const scriptErrors = [];
page.on("pageerror", (error) => scriptErrors.push(String(error)));
// Every answer of confsync's that is not a success is a finding, save the
// ones a step provokes on purpose. The component also asks Google for a
// font, which this machine cannot reach: its failure is not confsync's.
const refusals = [];
page.on("response", (response) => {
  if (response.status() >= 400 && response.url().startsWith(plan.api)) {
    refusals.push(`${response.request().method()} ${response.url()} ${response.status()}`);
  }
});
const failed = [];
page.on("requestfailed", (request) => {
  if (!request.url().startsWith("https://fonts.")) {
    failed.push(`${request.method()} ${request.url()} ${request.failure()?.errorText}`);
  }
});
page.setDefaultTimeout(20_000);

// The synced files' row for a title, found through the component's own
// search box (the list is long: comments and child pages come with a page).
// The component may reset the box while it refreshes its list, so it is
// filled again until the row shows.
async function syncedRow(dialog, title) {
  const row = dialog.locator(`tr:has(p:text-is("${title}"))`);
  for (let attempt = 0; attempt < 10; attempt++) {
    await dialog.locator("input[placeholder=Search]").fill(title);
    try {
      await row.first().waitFor({ timeout: 2000 });
      return row;
    } catch {}
  }
  throw new Error(`no synced file named ${title}`);
}

// Waits until the synced files hold nothing named `title`: the search box
// filled again on each attempt, for the same reason as in syncedRow.
async function noSyncedRow(dialog, title) {
  for (let attempt = 0; attempt < 15; attempt++) {
    await dialog.locator("input[placeholder=Search]").fill(title);
    try {
      await dialog.getByText("No matching results").waitFor({ timeout: 2000 });
      return;
    } catch {}
  }
  throw new Error(`a synced file named ${title} is still listed`);
}

let shot = 0;
async function step(name) {
  shot += 1;
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${plan.shots}/${String(shot).padStart(2, "0")}-${name}.png` });
  console.log(`step ${shot}: ${name}`);
}

// A toast of the component's: its message, then dismissed. It follows a
// request to confsync, which on a machine loaded by the rest of the suite
// once took longer than the default 20 s (CI, 2026-12-01).
async function toast(dialog, text, dismiss = true) {
  await dialog.getByText(text).waitFor({ timeout: 60_000 });
  if (dismiss) await dialog.getByText("Got It", { exact: true }).click();
}

// Waits until every row named `title` in the synced files shows `status`.
async function syncedStatus(dialog, title, status) {
  for (let attempt = 0; attempt < 60; attempt++) {
    const row = await syncedRow(dialog, title);
    // The component re-renders its list as it polls: a row found a moment
    // ago can be gone when it is read (CI, 2026-12-01: 20 s waiting on a
    // row replaced under it). Then it is looked for again.
    let shown = null;
    try {
      shown = (await row.first().locator("td").first().textContent({ timeout: 2000 })).trim();
    } catch {}
    if (shown === status) return;
    await page.waitForTimeout(1000);
  }
  throw new Error(`${title} never showed ${status}`);
}

// Ticks the checkbox of the item named `name` in the picker's list, once.
// The list re-renders as the component polls: under a loaded machine (the
// whole suite on PostgreSQL, 2026-12-01) a row's checkbox was detached again
// at each attempt for 20 s. Each try finds the row again and reads its state
// first, so a click that landed is never undone by the next.
async function choose(dialog, name) {
  for (let attempt = 0; attempt < 30; attempt++) {
    const box = dialog
      .locator(`li:has(p:text-is(${JSON.stringify(name)}))`)
      .first()
      .locator("button[role=checkbox]");
    try {
      if ((await box.getAttribute("aria-checked", { timeout: 2000 })) === "true") return;
      await box.click({ timeout: 2000 });
    } catch {}
  }
  throw new Error(`${name} could not be chosen`);
}

try {
  // The developer's page, the picker open on Confluence.
  // (Not waiting for "load": the component also asks Google for a font,
  // which this machine cannot reach.)
  await page.goto(origin, { waitUntil: "domcontentloaded" });
  const dialog = page.getByRole("dialog");
  await dialog.getByText("Connect", { exact: true }).waitFor();
  check((await dialog.innerText()).includes(`Acme Notes uses ${plan.brand} to`), "the white label's name is shown");
  await step("intro");
  await dialog.locator("button:has-text('Connect')").click();
  // The integrations the page enabled; Confluence chosen.
  await dialog.getByText("Confluence", { exact: true }).waitFor();
  await step("integrations");
  await dialog.getByText("Confluence", { exact: true }).click();
  await dialog.getByText("No account connected").waitFor();
  await step("no-account");

  // The subdomain, then Atlassian's consent in a popup (the simulator's).
  await dialog.locator("button:has-text('Connect Account')").click();
  await dialog.locator("input[placeholder=your-subdomain]").fill(plan.subdomain);
  await step("subdomain");
  const popupOpens = context.waitForEvent("page");
  await dialog.locator("button:has-text('Submit')").click();
  const popup = await popupOpens;
  await popup.waitForSelector("select[name=account]");
  await popup.selectOption("select[name=account]", plan.account);
  await popup.setViewportSize({ width: 900, height: 700 });
  await popup.screenshot({ path: `${plan.shots}/${String(++shot).padStart(2, "0")}-consent.png` });
  await popup.click("button[value=accept]");
  await popup.waitForSelector("text=Confluence is connected");
  await popup.close();

  // The spaces, listed by the job a connect queues: every one of the site's.
  await dialog.getByText("Select files to sync").waitFor();
  const spaceRows = dialog.locator('li:has(p:text-is("SPACE"))');
  await spaceRows.nth(plan.spaces.length - 1).waitFor();
  const listed = await spaceRows.locator("p:first-child").allTextContents();
  check(
    JSON.stringify(listed.map((t) => t.trim()).sort()) === JSON.stringify([...plan.spaces].sort()),
    `the spaces listed: ${listed} (expected ${plan.spaces})`,
  );
  check((await dialog.innerText()).includes(plan.account), "the account is shown");
  await step("spaces");

  // Type-ahead: the space and its pages whose names hold the text.
  const search = dialog.locator("input[placeholder=Search]");
  const typed = plan.space.slice(0, 6);
  await search.fill(typed);
  await dialog.locator('li:has(p:text-is("PAGE"))').first().waitFor();
  const names = await dialog.locator("li p:first-child").allTextContents();
  check(names.length > 1, "type-ahead finds the space and pages");
  check(
    names.every((name) => name.toLowerCase().includes(typed.toLowerCase())),
    `every item found holds ${typed}: ${names}`,
  );
  await step("type-ahead");
  await search.fill("");
  // The whole list back (no pages found by the search left) before a
  // space is opened: otherwise the cleared search's answer can arrive
  // after the space's and show the spaces again under its breadcrumb.
  await dialog.locator('li:has(p:text-is("PAGE"))').first().waitFor({ state: "detached" });

  // Open the space; choose two of its pages; sync them.
  await dialog.locator(`li:has(p:text-is("${plan.space}")) p:first-child`).click();
  const pageRows = dialog.locator('li:has(p:text-is("PAGE"))');
  await pageRows.nth(1).waitFor();
  // The names read at once, then each row found by its name: the list
  // re-renders as the component polls, and a row found by position can
  // be replaced between two reads (seen on a loaded machine).
  const chosen = await pageRows.evaluateAll((rows) =>
    rows.slice(0, 2).map((row) => row.querySelector("p").textContent.trim()),
  );
  for (const name of chosen) await choose(dialog, name);
  console.log(`CHOSEN ${JSON.stringify(chosen)}`);
  await step("pages-chosen");
  await dialog.locator("button:has-text('Upload 2 file(s)')").click();
  await toast(dialog, "Files successfully queued for sync");

  // The synced files: both pages Ready.
  await dialog.locator("button:has-text('View synced files')").click();
  await dialog.getByText("Synced Files").waitFor();
  for (const title of chosen) await syncedStatus(dialog, title, "Ready");
  // The whole list again (the pages with their comments and child pages).
  await search.fill("");
  await dialog.locator("tbody tr").nth(2).waitFor();
  await step("synced");

  // Resync the first: queued, then Ready again.
  await (await syncedRow(dialog, chosen[0])).locator("th button[role=checkbox]").click();
  await dialog.locator("button:has-text('Resync 1 file')").click();
  await toast(dialog, "Selected files queued successfully for resync");
  await syncedStatus(dialog, chosen[0], "Ready");
  await step("resynced");

  // Delete the second: gone, and still gone after the data source syncs
  // again (the page is still in the chosen scope).
  await (await syncedRow(dialog, chosen[1])).locator("th button[role=checkbox]").click();
  await dialog.locator("button:has-text('Delete 1 file')").click();
  await toast(dialog, "Your files have been queued for deletion");
  await noSyncedRow(dialog, chosen[1]);
  await step("deleted");
  check((await ask(`sync ${JSON.stringify(chosen)}`)) === "ok", "the data source synced again");
  await search.fill("");
  await page.waitForTimeout(1500);
  await noSyncedRow(dialog, chosen[1]);
  await syncedStatus(dialog, chosen[0], "Ready");

  // The accounts view (a developer's page without the files tab): re-sync
  // the account's items while Confluence is slow, and cancel it.
  await page.goto(`${origin}/?files_tab=no`, { waitUntil: "domcontentloaded" });
  await dialog.locator("button:has-text('Connect')").click();
  await dialog.getByText("Confluence", { exact: true }).click();
  await dialog.getByText("My Accounts").waitFor();
  check((await ask("slow-on")) === "ok", "Confluence slowed");
  const menu = page.locator("svg.addIconsvg").first();
  await menu.click();
  await page.getByRole("menuitem", { name: "Re-Sync" }).click();
  // (Its toasts here are not dismissed: "Got It" in this view is taken as a
  // click outside the dialog, which closes it.)
  await toast(dialog, "Your connection is being synced", false);
  // Once the listing runs, the component's next poll of the data sources
  // (every 3 s on this page) sees it SYNCING and offers to cancel it.
  check((await ask("listing")) === "ok", "the listing runs");
  await page.waitForTimeout(4000);
  await menu.click();
  await page.getByRole("menuitem", { name: "Re-Sync" }).waitFor();
  await step("cancel-offered");
  await page.getByRole("menuitem", { name: "Cancel Sync" }).click();
  await toast(dialog, "Your sync has been cancelled", false);
  check((await ask("slow-off")) === "ok", "Confluence fast again");
  await step("accounts");

  // Disconnect.
  await dialog.locator("label:has-text('Select all') button[role=checkbox]").click();
  await dialog.locator("button:has-text('Disconnect accounts')").click();
  await dialog.getByText("Finished revoking your data sources").waitFor();
  await step("disconnected");

  check(scriptErrors.length === 0, `errors on the page: ${scriptErrors.join(" | ")}`);
  check(failed.length === 0, `requests that failed: ${failed.join(" | ")}`);
  check(refusals.length === 0, `confsync refused: ${refusals.join(" | ")}`);
  console.log("DONE");
} catch (error) {
  console.log(`FAILED: ${error.stack || error}`);
  console.log(`page errors: ${scriptErrors.join(" | ")}`);
  console.log(`confsync refused: ${refusals.join(" | ")}`);
  console.log(`failed requests: ${failed.join(" | ")}`);
  await page.screenshot({ path: `${plan.shots}/failure.png` }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
  host.close();
  process.exit();
}
