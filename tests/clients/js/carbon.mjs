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

let shot = 0;
async function step(name) {
  shot += 1;
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${plan.shots}/${String(shot).padStart(2, "0")}-${name}.png` });
  console.log(`step ${shot}: ${name}`);
}

try {
  await page.goto(origin);
  await page.waitForSelector("text=Connect");
  await step("opened");
  console.log(`errors so far: ${scriptErrors.join(" | ")}`);
  const dialog = page.getByRole("dialog");
  await dialog.locator("button:has-text('Connect')").click();
  await page.waitForTimeout(1500);
  await step("after-connect");
  await dialog.locator("button:has-text('Connect Account')").click();
  await page.waitForTimeout(1000);
  await step("subdomain");
  await dialog.locator("input[placeholder=your-subdomain]").fill(plan.subdomain);
  const popupOpens = context.waitForEvent("page");
  await dialog.locator("button:has-text('Submit')").click();
  const popup = await popupOpens;
  await popup.waitForSelector("select[name=account]");
  await popup.screenshot({ path: `${plan.shots}/04-consent.png` });
  await popup.selectOption("select[name=account]", plan.account);
  await popup.click("button[value=accept]");
  await popup.waitForLoadState("load").catch(() => {});
  await page.waitForTimeout(1000);
  console.log(`popup at ${popup.isClosed() ? "closed" : popup.url()}`);
  if (!popup.isClosed()) {
    await popup.screenshot({ path: `${plan.shots}/05-callback.png` });
    console.log((await popup.locator("body").innerText()).slice(0, 500));
  }
  await page.waitForTimeout(4000);
  await step("connected");
  console.log(await dialog.locator("button, input, [role=checkbox]").evaluateAll((all) => all.map((i) => `${i.tagName} ${i.outerText || i.placeholder || ""} ${i.getAttribute("aria-label") || ""}`)));
  console.log((await page.locator("body").innerText()).slice(0, 1500));
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
