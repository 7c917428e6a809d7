// GraphiQL at the edge in a real browser: Debian's Chromium, headless, driven by playwright-core
// (tests/edge/test_graphiql_browser.py runs it through tests/support/node_clients.py).
//
// Input (argv[2], JSON): {pageUrl, chromium, userDataDir, token, kind?, query, subscription, screenshot,
// ignoreHTTPSErrors?, timeoutMs?}; `token` is an API key when `kind` is "api-key".
// The script opens the page with no credential (the edge's unauthorized role, whose plan refuses
// introspection) and runs `query`; pastes a token that does not verify; then pastes `token` (a JWT whose plan allows introspection), opens the
// documentation explorer, runs `query` again and then `subscription`, and screenshots the page to
// `screenshot`. It prints one JSON object: what the page showed at each step (the notice, the explorer's
// text, the response pane), the page's response headers, and every CSP violation and page error seen.
import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2] ?? "{}");
const timeout = input.timeoutMs ?? 30000;
const outcome = { violations: [], pageErrors: [], consoleErrors: [], steps: {} };

const context = await chromium.launchPersistentContext(input.userDataDir, {
  executablePath: input.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 760 },
  // An https edge's certificate comes from a test CA the browser does not know (what is tested is the page).
  ignoreHTTPSErrors: Boolean(input.ignoreHTTPSErrors),
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  // Runs before the page's own scripts (through the DevTools protocol, which the page's CSP does not govern).
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__violations.push({ directive: event.effectiveDirective, blocked: event.blockedURI, sample: event.sample });
    });
  });
  page.on("pageerror", (error) => outcome.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") outcome.consoleErrors.push(message.text());
  });

  const response = await page.goto(input.pageUrl);
  outcome.page = { status: response.status(), headers: await response.allHeaders() };

  const notice = page.locator("#edge-notice");
  const responsePane = page.locator(".graphiql-response .CodeMirror");

  async function run(text, waitFor) {
    await page.waitForSelector(".graphiql-query-editor .CodeMirror");
    await page.evaluate((value) => {
      document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.setValue(value);
    }, text);
    // GraphiQL reads the operation (is it a subscription?) from the editor 100 ms after a change, and
    // stores the query when it has: run only then, as a person typing would.
    await page.waitForFunction((value) => window.localStorage.getItem("graphiql:query") === value, text);
    await page.click(".graphiql-execute-button");
    await page.waitForFunction(
      (expected) => {
        const pane = document.querySelector(".graphiql-response .CodeMirror");
        return pane !== null && pane.CodeMirror.getValue().includes(expected);
      },
      waitFor,
    );
    return JSON.parse(await responsePane.evaluate((pane) => pane.CodeMirror.getValue()));
  }

  // 1. No credential: the unauthorized role's plan refuses introspection.
  await notice.waitFor({ state: "visible" });
  await page.click('button[aria-label="Show Documentation Explorer"]');
  const explorer = page.locator(".graphiql-doc-explorer");
  outcome.steps.anonymous = {
    notice: await notice.textContent(),
    state: await page.locator("#edge-credential-state").textContent(),
    explorer: await explorer.textContent(),
    query: await run(input.query, '"data"'),
  };
  if (input.refusedScreenshot) await page.screenshot({ path: input.refusedScreenshot });

  // 2. A token that does not verify: the notice says why the schema did not load.
  await page.fill("#edge-credential", "not-a-jwt");
  await page.click("#edge-credential-apply");
  await page.waitForFunction(() => document.querySelector("#edge-notice").getAttribute("data-level") === "error");
  outcome.steps.badToken = { notice: await notice.textContent() };

  // 3. A credential whose plan allows introspection (a token, or an API key with kind "api-key"): the
  // explorer shows the schema.
  await page.selectOption("#edge-credential-kind", input.kind ?? "bearer");
  await page.fill("#edge-credential", input.token);
  await page.click("#edge-credential-apply");
  await page.click('button[aria-label="Show Documentation Explorer"]'); // a new credential, a new GraphiQL
  await explorer.getByText("query_root").waitFor();
  outcome.steps.token = {
    noticeHidden: await notice.isHidden(),
    state: await page.locator("#edge-credential-state").textContent(),
    explorer: await explorer.textContent(),
    query: await run(input.query, '"data"'),
  };

  // 4. A subscription over graphql-ws on the same origin: the pane shows its latest result.
  outcome.steps.subscription = await run(input.subscription, '"data"');
  await page.waitForFunction(() =>
    document.querySelector(".graphiql-execute-button")?.getAttribute("aria-label")?.includes("Stop"),
  );
  outcome.steps.subscriptionRunning = true;
  await page.screenshot({ path: input.screenshot });
  await page.click(".graphiql-execute-button"); // stop it: the socket completes the subscription

  outcome.violations = await page.evaluate(() => window.__violations);
} catch (error) {
  outcome.error = String(error?.stack ?? error);
  outcome.responsePane = await context
    .pages()[0]
    ?.evaluate(() => document.querySelector(".graphiql-response .CodeMirror")?.CodeMirror.getValue())
    .catch(() => null);
} finally {
  await context.close();
}
console.log(JSON.stringify(outcome));
