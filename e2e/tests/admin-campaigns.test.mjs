// Campaigns in the console: an owner makes a campaign with the form in the browser, and a
// quote through the POS API then shows it applied; screenshots of the campaigns list and
// the campaign form (and of the rewards and card design screens).

import { test } from "node:test";
import assert from "node:assert/strict";
import { shared, kopilka, browser, newPage, shot } from "../lib.mjs";

test("an owner creates a campaign in the browser and the till applies it", async () => {
  const server = shared();
  const email = `campaigns-${Date.now()}@e2e.test`;
  const out = JSON.parse(kopilka(server, ["tenant", "create", "--name", "Campaign Shoes", "--template", "retail", "--owner-email", email, "--json"]));
  const api = async (method, path, body) => {
    const r = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${out.api_key}`, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: await r.json() };
  };
  const store = (await api("POST", "/stores", { code: "MAIN", name: "Main street 1" })).body;
  const receipt = {
    receipt_id: "E2E-CAMP-1", till_id: "T1", store_id: store.id,
    items: [
      { line_no: 1, sku: "BOOT", name: "Boots", category: "shoes", quantity: 1, unit_price_minor: 600000 },
      { line_no: 2, sku: "SOCK", name: "Socks", category: "textile", quantity: 2, unit_price_minor: 50000 },
    ],
  };
  const before = await api("POST", "/pos/quote", receipt);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  assert.equal(before.body.discount_minor, 0);

  const b = await browser();
  try {
    const page = await newPage(b);
    await page.goto(out.login_url);
    await page.getByTestId("link-login").click();
    await page.fill("#password", "campaign password 1");
    await page.fill("#password2", "campaign password 1");
    await page.click("button[type=submit]");
    await page.waitForURL((u) => u.pathname === "/admin");

    await page.click("nav.mainnav >> text=Campaigns");
    await page.waitForURL("**/admin/campaigns");
    await page.getByTestId("new-campaign").click();
    await page.waitForURL("**/admin/campaigns/new");
    await page.fill("#name", "Shoe week");
    await page.fill("#code", "SHOE-WEEK");
    await page.fill("#min_total", "1000");
    await page.fill("#categories", "shoes");
    await page.selectOption("#effect", "discount_percent");
    await page.fill("#effect_value", "15");
    await page.fill("#effect_categories", "shoes");
    await page.fill("[name='budget.uses']", "500");
    // First a mistake: the end before the start is shown next to the field.
    await page.fill("#starts_at", "2026-01-10T09:00");
    await page.fill("#ends_at", "2026-01-01T09:00");
    await page.getByTestId("save-campaign").click();
    await page.waitForSelector("[data-testid=campaign-error]");
    assert.match(await page.getByTestId("error-ends_at").innerText(), /after/);
    await shot(page, "admin-campaign-form-error");
    await page.fill("#starts_at", "2020-01-01T00:00");
    await page.fill("#ends_at", "");
    await page.getByTestId("save-campaign").click();
    await page.waitForURL(/\/admin\/campaigns\/[^/]+$/);
    await shot(page, "admin-campaign-form");

    // The till applies it: 15 % off the boots only.
    const after = await api("POST", "/pos/quote", receipt);
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.equal(after.body.discount_minor, 90000, JSON.stringify(after.body));
    assert.equal(after.body.applied[0].code, "SHOE-WEEK");

    await page.goto(`${server.url}/admin/campaigns`);
    const row = page.getByTestId("campaigns-active").locator("tr", { hasText: "Shoe week" });
    assert.match(await row.innerText(), /15/);
    assert.equal(await page.getByTestId("campaigns-archived").count(), 0);
    await shot(page, "admin-campaigns");

    // The neighbouring screens open from the menu too.
    await page.click("nav.mainnav >> text=Rewards");
    await page.waitForURL("**/admin/rewards");
    await page.getByTestId("new-reward").click();
    await page.fill("#name", "Canvas bag");
    await page.fill("#code", "BAG");
    await page.fill("#points_price", "300");
    await page.fill("#stock", "20");
    await page.getByTestId("save-reward").click();
    await page.waitForURL("**/admin/rewards");
    assert.match(await page.getByTestId("rewards").innerText(), /Canvas bag/);
    await shot(page, "admin-rewards");
    await page.click("nav.mainnav >> text=Card");
    await page.waitForURL("**/admin/card");
    await page.fill("#background_color", "#7a1f3d");
    await page.getByTestId("save-card").click();
    await page.waitForSelector(".notice");
    assert.match(await page.getByTestId("card-preview").getAttribute("style"), /#7a1f3d/);
    await shot(page, "admin-card");
  } finally {
    await b.close();
  }
});
